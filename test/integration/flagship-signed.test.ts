import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createIntegration, createMessage, silentLogger, type Message } from '../../facade/index.ts';
import { Keyring, signMessage, verifyMessage } from '../../facade/security/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { flowModules, flowNames } from '../../examples/mqtt-to-amqp/flow.ts';
import { deriveDeviceKey, derivedDeviceKeys, deviceKeyring, masterSecretFromEnvironment } from '../../examples/mqtt-to-amqp/signed-devices.ts';
import { signedFlowRoutes, VERIFY_STEP_ID } from '../../examples/mqtt-to-amqp/signed-flow.ts';
import { simulate, type PlannedMessage, type SimulatorReport } from '../../examples/device-simulator/simulator.ts';
import { FORGERY_KINDS, FORGERY_VERDICTS, type ForgeryKind } from '../../examples/device-simulator/signing.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from './mqtt-helpers.ts';
import { readingKey, uniquePrefix } from './flagship-support.ts';

// The signed flagship against the machine's Mosquitto and RabbitMQ: the device simulator signs as
// 12 devices would (`--sign`) and slips in forgeries of every kind (`--forge`); the bridge verifies each
// reading with its device's key. Every genuine reading reaches `telemetry.readings`/`alerts`, exactly
// once; every forgery is dead-lettered with its verdict and none of its values reaches the back end.
const admin = new BrokerAdmin();
afterAll(() => admin.close());

/** The error code the dead letter of each verdict carries. */
const CODES: Readonly<Record<string, string>> = {
  missing: 'SIGNATURE_MISSING',
  mismatch: 'SIGNATURE_INVALID',
  'signer-mismatch': 'SIGNATURE_SIGNER_MISMATCH',
  replayed: 'SIGNATURE_REPLAYED',
  expired: 'SIGNATURE_EXPIRED',
  'unknown-key': 'SIGNATURE_UNKNOWN_KEY',
};

const keyOfPayload = (payload: Buffer): string => {
  const telemetry = JSON.parse(payload.toString('utf8')) as { deviceId: string; ts: string };
  return readingKey({ deviceId: telemetry.deviceId, timestamp: Date.parse(telemetry.ts) });
};

it.each([
  ['direct', false],
  ['through the durable buffer', true],
])('signed devices (%s): genuine readings all arrive once; unsigned, wrong-key, impersonating, tampered, replayed, expired and unknown-key readings are dead-lettered with their verdict, none reaches the readings', async (_, buffered) => {
  await requireBroker(MOSQUITTO_URL);
  const prefix = uniquePrefix(buffered ? 'signedbuf' : 'signed');
  const names = flowNames(prefix);
  const masterSecret = randomBytes(32);
  const bufferDir = buffered ? await mkdtemp(join(tmpdir(), 'flagship-signed-')) : undefined;
  const flow = flowModules(names, { mqttUrl: MOSQUITTO_URL, amqpUrl: AMQP_URL, mqttClientId: `${prefix}flow`.slice(0, 40), bufferDir }, {
    mqtt: { sessionExpirySeconds: 600, connectTimeoutMs: 5_000, reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 } },
    amqp: { connectTimeoutMs: 5_000, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 } },
  });
  // a long idle timeout: no summary completes by time during the run (summaries are not what is under test here)
  const app = createIntegration({ logger: silentLogger, modules: flow.modules, routes: signedFlowRoutes({ names, deviceKeys: derivedDeviceKeys(masterSecret), summaryIdleMs: 60_000, buffered }) });
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const mqtt = app.transport<MqttTransport>('mqtt');
  await mqtt.connect();
  await mqtt.provision(parseEndpoint(`mqtt:${names.telemetryTopic}?qos=1`)); // the session subscribes before any device publishes
  await app.start();

  const sent: PlannedMessage[] = [];
  const telemetry = app.route('telemetry').metrics;
  // buffered, readings and alerts are sent by the `forward` route (the buffer in between), dead letters by `dead-letters`
  const backEnd = app.route(buffered ? 'forward' : 'telemetry').metrics;
  const deadLetters = app.route(buffered ? 'dead-letters' : 'telemetry').metrics;
  const delivered = (): number => (backEnd.sent.readings ?? 0) + (backEnd.sent.alerts ?? 0);
  let report: SimulatorReport | undefined;
  try {
    report = await simulate({ url: MOSQUITTO_URL, devices: 12, rate: 250, count: 1_500, invalid: 0, topicPrefix: prefix, seed: 7, signingSecret: masterSecret, forge: 0.06, onSent: (message) => sent.push(message) });
    await until(
      () => telemetry.received >= 1_500 && telemetry.inFlight === 0 && telemetry.deadLettered + delivered() >= 1_500 && (deadLetters.sent.invalid ?? 0) >= telemetry.deadLettered,
      () => `flow: ${JSON.stringify(app.metrics())}`,
      90_000,
    );
  } finally {
    await app.stop({ drainTimeoutMs: 30_000 });
    if (bufferDir !== undefined) await rm(bufferDir, { recursive: true, force: true });
  }
  if (report === undefined) throw new Error('the simulator reported nothing');

  const genuine = sent.filter((message) => message.kind === 'valid');
  const forged = sent.filter((message) => message.kind === 'forged');
  expect(report.sent).toBe(1_500);
  expect(genuine.length + forged.length).toBe(1_500);
  expect(genuine.every((message) => typeof message.signature === 'string')).toBe(true);
  const byKind = (kind: ForgeryKind): number => forged.filter((message) => message.forged === kind).length;
  for (const kind of FORGERY_KINDS) expect(byKind(kind), `forgeries of kind ${kind}`).toBeGreaterThanOrEqual(5);
  expect(report.forged).toEqual(Object.fromEntries(FORGERY_KINDS.map((kind) => [kind, byKind(kind)])));

  const [readings, alerts, invalid] = await Promise.all([
    readUntilQuiet(names.readingsQueue, 1, 30_000),
    readUntilQuiet(names.alertsQueue, 0, 30_000),
    readUntilQuiet(names.invalidQueue, forged.length, 30_000),
  ]);

  // every genuine reading, exactly once, with the values its device sent
  const expected = new Map(genuine.map((message) => [keyOfPayload(message.payload), JSON.parse(message.payload.toString('utf8')) as { temperature: number }]));
  const arrived = [...readings, ...alerts].map((message) => message.body as BackendReadingV1);
  expect(arrived).toHaveLength(genuine.length);
  expect(new Set(arrived.map(readingKey)).size).toBe(genuine.length); // no replayed copy arrived twice
  for (const reading of arrived) expect(reading.temperatureC, readingKey(reading)).toBe(expected.get(readingKey(reading))?.temperature);
  // no forged reading (but the replayed copies, whose originals are genuine) is among them
  const arrivedKeys = new Set(arrived.map(readingKey));
  for (const message of forged.filter((forgery) => forgery.forged !== 'replayed')) expect(arrivedKeys.has(keyOfPayload(message.payload)), `${message.forged} forgery of ${keyOfPayload(message.payload)} reached the back end`).toBe(false);

  // every forgery dead-lettered, as the device sent it, with its verdict
  const verdictOf = (message: Message): string => String(message.headers['x-interchange-signature-rejected']);
  const deadLettered = invalid.map((message) => {
    expect(Buffer.isBuffer(message.body), 'a dead letter carries the original payload bytes').toBe(true);
    expect(message.headers['x-interchange-error-code']).toBe(CODES[verdictOf(message)]);
    return `${message.headers['x-mqtt-topic'] as string} ${verdictOf(message)} ${(message.body as Buffer).toString('base64')}`;
  });
  const forgeries = forged.map((message) => `${message.topic} ${FORGERY_VERDICTS[message.forged as ForgeryKind]} ${message.payload.toString('base64')}`);
  expect(deadLettered.sort()).toEqual(forgeries.sort());

  // the bridge's counts agree
  expect(telemetry).toMatchObject({ received: 1_500, deadLettered: forged.length, rejected: 0, inFlight: 0 });
  expect(delivered()).toBe(genuine.length);
  expect(deadLetters.sent.invalid).toBe(forged.length);
  const verdicts: Record<string, number> = {};
  for (const message of forged) {
    const name = `rejected-${FORGERY_VERDICTS[message.forged as ForgeryKind]}`;
    verdicts[name] = (verdicts[name] ?? 0) + 1;
  }
  expect(telemetry.steps[VERIFY_STEP_ID]?.counts).toEqual(verdicts);
}, 180_000);

it('device keys: one per device from the master secret (HKDF), a short secret refused, the secret read from DEVICE_MASTER_SECRET or its file, only `device-<id>` key ids known', async () => {
  const secret = randomBytes(32);
  const keys = derivedDeviceKeys(secret);
  const a = createMessage(Buffer.from('{"t":1}'), { headers: { deviceId: 'dev-a' } });
  const signedByA = await signMessage(a, { keys: deviceKeyring(secret, 'dev-a'), headers: ['deviceId'] });
  await expect(verifyMessage(signedByA, { keys, headers: ['deviceId'] })).resolves.toMatchObject({ signature: { keyId: 'device-dev-a' } });
  // the same secret, another device: another key; another secret, the same device: another key
  const forged = await signMessage(a, { keys: new Keyring([{ id: 'device-dev-a', key: deriveDeviceKey(secret, 'dev-b') }]), headers: ['deviceId'] });
  await expect(verifyMessage(forged, { keys })).rejects.toMatchObject({ reason: 'mismatch' });
  await expect(verifyMessage(signedByA, { keys: derivedDeviceKeys(randomBytes(32)) })).rejects.toMatchObject({ reason: 'mismatch' });
  expect(keys('rogue-dev-a')).toBeUndefined();
  expect(keys('device-../x')).toBeUndefined();
  expect(() => derivedDeviceKeys(randomBytes(31))).toThrow(/at least 32 bytes/);
  expect(masterSecretFromEnvironment({})).toBeUndefined();
  expect(masterSecretFromEnvironment({ DEVICE_MASTER_SECRET: 'x'.repeat(32) })).toEqual(Buffer.from('x'.repeat(32)));
  expect(() => masterSecretFromEnvironment({ DEVICE_MASTER_SECRET: 'too short' })).toThrow(/has 9/);
  const directory = await mkdtemp(join(tmpdir(), 'device-secret-'));
  try {
    await writeFile(join(directory, 'secret'), `${'y'.repeat(40)}\n`);
    expect(masterSecretFromEnvironment({ DEVICE_MASTER_SECRET_FILE: join(directory, 'secret') })).toEqual(Buffer.from('y'.repeat(40)));
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
