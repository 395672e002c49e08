/**
 * The device simulator, from the command line:
 *
 *   npm run simulate -- --devices 50 --rate 1000 --count 10000 --invalid 0.02 [--url mqtt://127.0.0.1:1883] [--prefix p] [--seed 1]
 *
 * `--rate 0` publishes as fast as the broker acknowledges; `--count 0` runs until Ctrl-C. The broker
 * is `--url`, else `MQTT_URL`, else `mqtt://127.0.0.1:1883`. Prints what it sent.
 *
 *   DEVICE_MASTER_SECRET=… npm run simulate -- --sign [--forge 0.05]
 *
 * `--sign`: every device signs what it sends (MQTT 5 user property `signature`), its key derived from
 * `DEVICE_MASTER_SECRET` (or the file `DEVICE_MASTER_SECRET_FILE`) — the secret the signed bridge
 * (`npm run example:signed-bridge`) holds. `--forge 0.05` replaces 5 % of the valid readings with
 * forgeries (unsigned, wrong key, impersonation, tampered, replayed, expired, unknown key, in turn),
 * which the signed bridge must dead-letter.
 */
import { parseArgs } from 'node:util';
import { redactUrl } from 'interchange-eip';
import { describeReport, simulate } from './simulator.ts';
import { masterSecretFromEnvironment } from '../mqtt-to-amqp/signed-devices.ts';

const usage = 'usage: npm run simulate -- [--devices 50] [--rate 1000] [--count 10000] [--invalid 0.02] [--url mqtt://127.0.0.1:1883] [--prefix <topic prefix>] [--seed 1] [--mqtt-version 4|5] [--sign [--forge 0.05]]  (--sign: DEVICE_MASTER_SECRET or DEVICE_MASTER_SECRET_FILE)';

function number(value: string | undefined, name: string, fallback: number, { min = 0, max = Number.POSITIVE_INFINITY } = {}): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be a number within [${min}, ${max}], got '${value}'\n${usage}`);
  return parsed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      rate: { type: 'string' },
      count: { type: 'string' },
      invalid: { type: 'string' },
      url: { type: 'string' },
      prefix: { type: 'string' },
      seed: { type: 'string' },
      'mqtt-version': { type: 'string' },
      sign: { type: 'boolean' },
      forge: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    console.log(usage);
    return;
  }
  const url = values.url ?? (process.env.MQTT_URL || 'mqtt://127.0.0.1:1883');
  const signingSecret = values.sign === true ? masterSecretFromEnvironment() : undefined;
  if (values.sign === true && signingSecret === undefined) throw new Error(`--sign needs the devices' master secret in DEVICE_MASTER_SECRET (or a file named by DEVICE_MASTER_SECRET_FILE), the bridge's\n${usage}`);
  if (values.forge !== undefined && values.sign !== true) throw new Error(`--forge needs --sign\n${usage}`);
  if (values.sign === true && values['mqtt-version'] === '4') throw new Error(`--sign needs MQTT 5 (the signature is a user property)\n${usage}`);
  const options = {
    url,
    devices: number(values.devices, 'devices', 50, { min: 1 }),
    rate: number(values.rate, 'rate', 1_000),
    count: number(values.count, 'count', 10_000),
    invalid: number(values.invalid, 'invalid', 0.02, { max: 1 }),
    topicPrefix: values.prefix ?? '',
    seed: number(values.seed, 'seed', 1),
    protocolVersion: number(values['mqtt-version'], 'mqtt-version', signingSecret === undefined ? 4 : 5, { min: 4, max: 5 }) === 5 ? (5 as const) : (4 as const),
    ...(signingSecret === undefined ? {} : { signingSecret, forge: number(values.forge, 'forge', 0, { max: 1 }) }),
  };
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  console.log(
    `device simulator: ${options.devices} devices → ${redactUrl(url)}, ${options.rate === 0 ? 'as fast as acknowledged' : `${options.rate} msgs/s`}, ` +
      `${options.count === 0 ? 'until Ctrl-C' : `${options.count} messages`}, ${(options.invalid * 100).toFixed(1)} % invalid` +
      (signingSecret === undefined ? '' : `, signed${options.forge === undefined || options.forge === 0 ? '' : `, ${(options.forge * 100).toFixed(1)} % of valid readings forged`}`),
  );
  let sent = 0;
  const progress = setInterval(() => console.log(`  … ${sent} acknowledged`), 1_000);
  try {
    const report = await simulate({ ...options, signal: stop.signal, onSent: () => (sent += 1) });
    console.log(describeReport(report));
  } finally {
    clearInterval(progress);
  }
}

main().catch((error: unknown) => {
  console.error(`device simulator failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
