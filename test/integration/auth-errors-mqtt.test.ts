import { randomBytes, randomUUID } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttConnectionRefusedError, MqttPublishRefusedError, MqttSubscribeError, TlsCertificateError, TlsHandshakeError, type MqttTransport, type MqttTransportOptions } from '../../adapters/mqtt/index.ts';
import { createMessage, NotConnectedError, parseEndpoint } from '../../src/core/index.ts';
import { runClientId, testTransport } from './mqtt-helpers.ts';
import { AuthMosquitto, capturingLogger, CountingProxy, createPki, textsOf, type TestPki } from './tls-proxy-fixture.ts';

// Issue #20: MQTT authorisation failures are typed, immediate (one connection attempt, no reconnect
// loop) and secret-free. A Mosquitto of this file's own (password + dynamic-security ACL: the user
// may publish and subscribe under ALLOWED/ only), reached through proxies of this file's own that
// count connections — plaintext, or TLS-terminating with a chosen certificate.

const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const USER = `ic-auth-${run}`;
const PASSWORD = `pw-${randomUUID()}`;
const ALLOWED = `ic-auth-${run}`;
const FORBIDDEN = `ic-forbidden-${run}`;

const lines: string[] = [];
const seen: string[] = [];
let broker: AuthMosquitto;
let pki: TestPki;
let plain: CountingProxy;
let tlsGood: CountingProxy;
let tlsWrongName: CountingProxy;
let tlsExpired: CountingProxy;
let open: MqttTransport[] = [];

/** A transport as the test user; a long connect timeout and a fast reconnect, so a retry loop would show in the counts. */
function transport(url: string, options: Partial<MqttTransportOptions> = {}): MqttTransport {
  const created = testTransport({ url, clientId: runClientId('auth'), username: USER, password: PASSWORD, connectTimeoutMs: 60_000, reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, ...options, logger: capturingLogger(lines) } as MqttTransportOptions);
  open.push(created);
  return created;
}

const tlsUrl = (proxy: CountingProxy): string => `mqtts://127.0.0.1:${proxy.port}`;
const plainUrl = (proxy: CountingProxy): string => `mqtt://127.0.0.1:${proxy.port}`;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'resolved although the broker must refuse it').toBeDefined();
  seen.push(...textsOf(error));
  return error;
}

beforeAll(async () => {
  [broker, pki] = await Promise.all([AuthMosquitto.start({ username: USER, password: PASSWORD, allowed: ALLOWED }), createPki()]);
  [plain, tlsGood, tlsWrongName, tlsExpired] = await Promise.all([
    CountingProxy.start(broker.port),
    CountingProxy.start(broker.port, pki.server),
    CountingProxy.start(broker.port, pki.wrongName),
    CountingProxy.start(broker.port, pki.expired),
  ]);
}, 60_000);

afterEach(async () => {
  for (const created of open) await created.close();
  open = [];
});

afterAll(async () => {
  await Promise.allSettled([plain?.close(), tlsGood?.close(), tlsWrongName?.close(), tlsExpired?.close()]);
  await broker?.dispose();
  pki?.dispose();
});

describe('mqtt: TLS failures reject connect() at once with a typed cause', () => {
  it('the right CA and host: mqtts:// through the TLS proxy connects (the proxy works)', async () => {
    await transport(tlsUrl(tlsGood), { tls: { ca: pki.ca.cert } }).connect();
  });

  it.each([
    { label: 'a CA not in tls.ca', proxy: () => tlsGood, ca: () => pki.otherCa.cert, reason: 'untrusted-ca' },
    { label: 'a certificate for another host name', proxy: () => tlsWrongName, ca: () => pki.ca.cert, reason: 'hostname-mismatch' },
    { label: 'an expired certificate', proxy: () => tlsExpired, ca: () => pki.ca.cert, reason: 'expired' },
  ])('$label: MqttConnectionRefusedError (tls-certificate) caused by TlsCertificateError $reason, one attempt', async ({ proxy, ca, reason }) => {
    const before = proxy().connections;
    const error = await rejection(transport(tlsUrl(proxy()), { tls: { ca: ca() } }).connect());
    expect(error).toBeInstanceOf(MqttConnectionRefusedError);
    expect(error).toMatchObject({ code: 'MQTT_REFUSED', reason: 'tls-certificate', permanent: true });
    expect((error as Error).cause).toBeInstanceOf(TlsCertificateError);
    expect((error as Error).cause).toMatchObject({ code: 'TLS_CERTIFICATE', reason });
    expect(proxy().connections - before).toBe(1);
  });

  it('mqtts:// to a plaintext port: MqttConnectionRefusedError (tls-handshake) caused by TlsHandshakeError interrupted (Mosquitto drops the handshake), one attempt', async () => {
    const before = plain.connections;
    const error = await rejection(transport(tlsUrl(plain), { tls: { ca: pki.ca.cert } }).connect());
    expect(error).toMatchObject({ name: 'MqttConnectionRefusedError', reason: 'tls-handshake' });
    expect((error as Error).cause).toBeInstanceOf(TlsHandshakeError);
    expect((error as Error).cause).toMatchObject({ code: 'TLS_HANDSHAKE', reason: 'interrupted' });
    expect(plain.connections - before).toBe(1);
  });

  it('mqtt:// (plaintext) to a TLS port: the server just closes — retried until connectTimeoutMs, then NotConnectedError (documented)', async () => {
    const before = tlsGood.connections;
    const error = await rejection(transport(plainUrl(tlsGood), { connectTimeoutMs: 1_500 }).connect());
    expect(error).toBeInstanceOf(NotConnectedError);
    expect(tlsGood.connections - before).toBeGreaterThan(1);
  });
});

describe('mqtt: refused credentials and topics', () => {
  // Mosquitto 2.0 answers a wrong password with "not authorized" (MQTT 5 0x87, 3.1.1 code 5), not 0x86
  it.each([
    { protocolVersion: 5 as const, reason: 'not-authorized' },
    { protocolVersion: 4 as const, reason: 'not-authorized' },
  ])('a wrong password (MQTT $protocolVersion): MqttConnectionRefusedError $reason, one attempt', async ({ protocolVersion, reason }) => {
    const before = plain.connections;
    const error = await rejection(transport(plainUrl(plain), { password: `${PASSWORD}-x`, protocolVersion }).connect());
    expect(error).toBeInstanceOf(MqttConnectionRefusedError);
    expect(error).toMatchObject({ reason, permanent: true });
    expect(plain.connections - before).toBe(1);
  });

  it.each([
    { protocolVersion: 5 as const, reasonCode: 0x87 },
    { protocolVersion: 4 as const, reasonCode: 0x80 },
  ])('subscribing to a topic the ACL refuses (MQTT $protocolVersion): the stream errors with MqttSubscribeError (SUBACK $reasonCode), logged once, the connection ended', async ({ protocolVersion, reasonCode }) => {
    const mqtt = transport(plainUrl(plain), { protocolVersion });
    await mqtt.connect();
    const before = plain.connections;
    const filter = `${FORBIDDEN}/v${protocolVersion}/+`;
    const error = await rejection(firstValueFrom(mqtt.consume(parseEndpoint(`mqtt:${filter}?qos=1`))));
    expect(error).toBeInstanceOf(MqttSubscribeError);
    expect(error).toMatchObject({ code: 'MQTT_SUBSCRIBE', filter, reasonCode, permanent: true });
    expect(plain.connections - before).toBe(1);
    expect(lines.filter((line) => line.includes('subscription refused') && line.includes(filter))).toHaveLength(1);
    expect(mqtt.status.connections).toBe(1); // the publisher's only: the refused consumer's connection is gone
  });

  it('publishing QoS 1 or 2 to a topic the ACL refuses (MQTT 5): MqttPublishRefusedError 0x87 (permanent); an allowed publish still works', async () => {
    const mqtt = transport(plainUrl(plain));
    await mqtt.connect();
    for (const qos of ['1', '2']) {
      const error = await rejection(mqtt.publish(parseEndpoint(`mqtt:${FORBIDDEN}/pub?qos=${qos}`), [createMessage({ qos })]));
      expect(error).toBeInstanceOf(MqttPublishRefusedError);
      expect(error).toMatchObject({ code: 'MQTT_PUBLISH_REFUSED', topic: `${FORBIDDEN}/pub`, reasonCode: 0x87, permanent: true });
    }
    await mqtt.publish(parseEndpoint(`mqtt:${ALLOWED}/pub?qos=1`), [createMessage({ ok: true })]);
  });

  it('MQTT 3.1.1 cannot tell: Mosquitto acknowledges a forbidden QoS 1 publish and drops it, so publish resolves (documented; QoS 0 the same on any version)', async () => {
    const mqtt = transport(plainUrl(plain), { protocolVersion: 4 });
    await mqtt.connect();
    await mqtt.publish(parseEndpoint(`mqtt:${FORBIDDEN}/v4?qos=1`), [createMessage({ dropped: true })]);
    await mqtt.publish(parseEndpoint(`mqtt:${FORBIDDEN}/v4?qos=0`), [createMessage({ dropped: true })]);
  });
});

// Last: everything thrown and logged above.
it('no error text (String, message, stack, JSON, causes) and no log line holds the password', () => {
  expect(seen.length).toBeGreaterThan(20);
  expect(lines.some((line) => line.startsWith('ERROR'))).toBe(true);
  for (const text of [...seen, ...lines]) {
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('PRIVATE KEY');
  }
});
