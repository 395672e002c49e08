/**
 * The device simulator, from the command line:
 *
 *   npm run simulate -- --devices 50 --rate 1000 --count 10000 --invalid 0.02 [--url mqtt://127.0.0.1:1883] [--prefix p] [--seed 1]
 *
 * `--rate 0` publishes as fast as the broker acknowledges; `--count 0` runs until Ctrl-C. The broker
 * is `--url`, else `MQTT_URL`, else `mqtt://127.0.0.1:1883`. Prints what it sent.
 */
import { parseArgs } from 'node:util';
import { redactUrl } from 'interchange-eip';
import { describeReport, simulate } from './simulator.ts';

const usage = 'usage: npm run simulate -- [--devices 50] [--rate 1000] [--count 10000] [--invalid 0.02] [--url mqtt://127.0.0.1:1883] [--prefix <topic prefix>] [--seed 1] [--mqtt-version 4|5]';

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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    console.log(usage);
    return;
  }
  const url = values.url ?? (process.env.MQTT_URL || 'mqtt://127.0.0.1:1883');
  const options = {
    url,
    devices: number(values.devices, 'devices', 50, { min: 1 }),
    rate: number(values.rate, 'rate', 1_000),
    count: number(values.count, 'count', 10_000),
    invalid: number(values.invalid, 'invalid', 0.02, { max: 1 }),
    topicPrefix: values.prefix ?? '',
    seed: number(values.seed, 'seed', 1),
    protocolVersion: number(values['mqtt-version'], 'mqtt-version', 4, { min: 4, max: 5 }) === 5 ? (5 as const) : (4 as const),
  };
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  console.log(
    `device simulator: ${options.devices} devices → ${redactUrl(url)}, ${options.rate === 0 ? 'as fast as acknowledged' : `${options.rate} msgs/s`}, ` +
      `${options.count === 0 ? 'until Ctrl-C' : `${options.count} messages`}, ${(options.invalid * 100).toFixed(1)} % invalid`,
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
