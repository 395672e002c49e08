import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';
import { sleep, until } from '../support/wait.ts';

// The ACL shipped with the flagship (examples/mqtt-to-amqp/mosquitto/acl) gives devices an identity:
// a device may publish its own telemetry only. Run on a Mosquitto of the test's own, with a password
// file made here and the shipped ACL file as it is.

const ACL = fileURLToPath(new URL('../../examples/mqtt-to-amqp/mosquitto/acl', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'ic-acl-'));
let broker: ChildProcess | undefined;
let url = '';

beforeAll(async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const passwords = join(directory, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', passwords, 'interchange-bridge', 'bridge-secret']);
  for (const device of ['dev-1', 'dev-2']) execFileSync('mosquitto_passwd', ['-b', passwords, device, `${device}-secret`]);
  const config = join(directory, 'mosquitto.conf');
  writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwords}`, `acl_file ${ACL}`, 'persistence false', ''].join('\n'));
  // Mosquitto started as root runs as the user `mosquitto`: it must be able to read the files
  chmodSync(directory, 0o755);
  chmodSync(passwords, 0o644);
  broker = await launchMosquitto(config, [port]);
  url = `mqtt://127.0.0.1:${port}`;
}, 30_000);

afterAll(async () => {
  await terminate(broker);
  rmSync(directory, { recursive: true, force: true });
});

it('the shipped ACL lets a device publish its own telemetry only; the bridge reads every device', async () => {
  const clientId = (label: string): string => `acl-${label}-${randomBytes(3).toString('hex')}`;
  const bridge = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: clientId('bridge'), username: 'interchange-bridge', password: 'bridge-secret' });
  const device = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: clientId('dev-1'), username: 'dev-1', password: 'dev-1-secret' });
  try {
    const received: string[] = [];
    bridge.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    await bridge.subscribeAsync('devices/+/telemetry', { qos: 1 });
    await device.publishAsync('devices/dev-1/telemetry', 'own', { qos: 1 });
    await device.publishAsync('devices/dev-2/telemetry', 'forged', { qos: 1 }).catch(() => undefined); // refused (0x87) or dropped
    await device.publishAsync('interchange/dead/x', 'forged', { qos: 1 }).catch(() => undefined);
    await until(() => received.length >= 1, () => 'the device could not publish its own telemetry', 5_000);
    await sleep(300);
    expect(received).toEqual(['devices/dev-1/telemetry own']);
  } finally {
    await device.endAsync();
    await bridge.endAsync();
  }
});
