import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttConfigError, MqttConnectionRefusedError, validateMqttOptions, type MqttTransport, type MqttTransportOptions } from '../../adapters/mqtt/index.ts';
import { createMessage, parseEndpoint, type Logger, type Message } from '../../src/core/index.ts';
import { runClientId, testTransport, waitFor } from './mqtt-helpers.ts';
import { TlsMosquitto } from './mqtt-tls-fixture.ts';

// Issue requirement 8: `mqtts://` with CA/cert/key, username/password; secrets never logged.
// Against a Mosquitto of this file's own (TLS only, no anonymous access, a password file), on
// 127.0.0.1:18851 (server certificate) and :18852 (`require_certificate`).

const USERNAME = 'interchange-it';
const PASSWORD = `pw-${randomUUID()}`;
const run = `it-sec-${process.pid}-${Date.now().toString(36)}`;

/** Every line logged and every error seen, as text: what must never contain a secret. */
const seen: string[] = [];
const lines: { level: string; message: string; fields: string }[] = [];
const capture =
  (level: string) =>
  (message: string, fields?: Readonly<Record<string, unknown>>): void => {
    const text = fields === undefined ? '' : JSON.stringify(fields, (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack } : value));
    lines.push({ level, message, fields: text });
    seen.push(`${level} ${message} ${text}`);
  };
const logger: Logger = { info: capture('INFO'), warn: capture('WARN'), error: capture('ERROR') };

function record(error: unknown): unknown {
  if (error instanceof Error) {
    seen.push(String(error), error.message, error.stack ?? '', JSON.stringify(error), String(error.cause ?? ''));
  } else {
    seen.push(String(error));
  }
  return error;
}

let broker: TlsMosquitto;
let open: MqttTransport[] = [];

function transport(options: Partial<MqttTransportOptions>, label = 'sec'): MqttTransport {
  const created = testTransport({ clientId: runClientId(label), ...options, logger } as MqttTransportOptions);
  open.push(created);
  return created;
}

/** `connect()`'s rejection (recorded for the secrets check); fails the test if it connects. */
async function refused(created: MqttTransport): Promise<unknown> {
  const error = await created.connect().then(
    () => undefined,
    (caught: unknown) => record(caught),
  );
  expect(error, 'connect() resolved although the broker must refuse this client').toBeDefined();
  return error;
}

/** The "mqtt client error" warnings logged for one transport's publisher connection. */
function clientErrors(clientIdPrefix: string): string[] {
  return lines.filter((line) => line.message === 'mqtt client error' && line.fields.includes(clientIdPrefix)).map((line) => line.fields);
}

beforeAll(async () => {
  broker = await TlsMosquitto.start({ username: USERNAME, password: PASSWORD });
});

afterEach(async () => {
  for (const created of open) await created.close();
  open = [];
  assertNoSecrets();
});

afterAll(async () => {
  await broker?.dispose();
});

describe('mqtt adapter security (mqtts://, username/password, client certificates)', () => {
  it('mqtts:// with the CA and the right username/password: a QoS 1 message round-trips publish → consume', async () => {
    const consumer = transport({ url: broker.url, username: USERNAME, password: PASSWORD, tls: { ca: broker.ca.cert } }, 'sec-consumer');
    const producer = transport({ url: broker.url, username: USERNAME, password: PASSWORD, tls: { ca: broker.ca.cert } }, 'sec-producer');
    await Promise.all([consumer.connect(), producer.connect()]);
    const uri = `mqtt:${run}/secure/orders?qos=1&headers=all`; // Interchange ↔ Interchange: id and headers round-trip
    // the consumer's session (with its subscription) exists before the publish
    await consumer.provision(parseEndpoint(uri));
    const got: Message[] = [];
    const subscription = consumer.consume(parseEndpoint(uri)).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    try {
      const sent = createMessage({ order: 42 }, { headers: { 'x-tenant': 'acme' } });
      await producer.publish(parseEndpoint(uri), [sent]);
      await waitFor(() => got.length >= 1, () => 'nothing received over mqtts://');
      expect(got[0]?.id).toBe(sent.id);
      expect(got[0]?.body).toEqual({ order: 42 });
      expect(got[0]?.headers).toMatchObject({ 'x-tenant': 'acme', mqttTopic: `${run}/secure/orders` });
    } finally {
      subscription.unsubscribe();
    }
  });

  it('a server certificate from another CA, or no CA at all (system trust store): connect() rejects at once with MqttConnectionRefusedError', async () => {
    const otherCa = transport({ url: broker.url, username: USERNAME, password: PASSWORD, tls: { ca: broker.otherCa.cert }, connectTimeoutMs: 2_000 }, 'sec-other-ca');
    const noCa = transport({ url: broker.url, username: USERNAME, password: PASSWORD, connectTimeoutMs: 2_000 }, 'sec-no-ca');
    const [otherCaError, noCaError] = await Promise.all([refused(otherCa), refused(noCa)]);
    for (const error of [otherCaError, noCaError]) {
      expect(error).toBeInstanceOf(MqttConnectionRefusedError);
      expect(error).toMatchObject({ code: 'MQTT_REFUSED', permanent: true });
    }
    // and the cause is the certificate check, not an unreachable broker
    const logged = [...clientErrors('sec-other-ca'), ...clientErrors('sec-no-ca')];
    expect(logged.length).toBeGreaterThanOrEqual(2);
    for (const line of logged) expect(line).toMatch(/self[- ]signed certificate|unable to (verify|get local issuer)|certificate/i);
  });

  it('rejectUnauthorized: false is honoured (the TLS options reach mqtt.js): the same client without a CA then connects', async () => {
    const insecure = transport({ url: broker.url, username: USERNAME, password: PASSWORD, tls: { rejectUnauthorized: false } }, 'sec-insecure');
    await insecure.connect();
  });

  it('a wrong password, or no credentials at all: connect() rejects at once with MqttConnectionRefusedError carrying the broker\'s reason', async () => {
    const wrong = transport({ url: broker.url, username: USERNAME, password: `${PASSWORD}-wrong`, tls: { ca: broker.ca.cert }, connectTimeoutMs: 2_000 }, 'sec-wrong-pw');
    const anonymous = transport({ url: broker.url, tls: { ca: broker.ca.cert }, connectTimeoutMs: 2_000 }, 'sec-anonymous');
    const errors = await Promise.all([refused(wrong), refused(anonymous)]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(MqttConnectionRefusedError);
      expect(error).toMatchObject({ code: 'MQTT_REFUSED', permanent: true });
      expect((error as Error).message).toMatch(/not authori[sz]ed|bad user ?name or password/i);
      expect((error as Error).cause).toBeInstanceOf(Error);
    }
    for (const label of ['sec-wrong-pw', 'sec-anonymous']) {
      const logged = clientErrors(label);
      expect(logged.length, `no client error logged for ${label}`).toBeGreaterThanOrEqual(1);
      for (const line of logged) expect(line).toMatch(/not authori[sz]ed|bad user ?name or password/i);
    }
  });

  it('require_certificate listener: a client certificate signed by the CA connects and round-trips; none, or one from another CA, is refused', async () => {
    const mutualTls = { ca: broker.ca.cert, cert: broker.client.cert, key: broker.client.key };
    const withCert = transport({ url: broker.mutualUrl, username: USERNAME, password: PASSWORD, tls: mutualTls }, 'sec-mtls');
    const withoutCert = transport({ url: broker.mutualUrl, username: USERNAME, password: PASSWORD, tls: { ca: broker.ca.cert }, connectTimeoutMs: 2_000 }, 'sec-mtls-none');
    const stranger = transport(
      { url: broker.mutualUrl, username: USERNAME, password: PASSWORD, tls: { ca: broker.ca.cert, cert: broker.strangerClient.cert, key: broker.strangerClient.key }, connectTimeoutMs: 2_000 },
      'sec-mtls-stranger',
    );
    const [, noneError, strangerError] = await Promise.all([withCert.connect(), refused(withoutCert), refused(stranger)]);
    expect(noneError).toBeInstanceOf(MqttConnectionRefusedError);
    expect(strangerError).toBeInstanceOf(MqttConnectionRefusedError);
    expect(clientErrors('sec-mtls-none').join('\n')).toMatch(/certificate required|handshake|certificate/i);
    expect(clientErrors('sec-mtls-stranger').join('\n')).toMatch(/unknown ca|certificate/i);

    const uri = `mqtt:${run}/mtls?qos=1&headers=all`;
    await withCert.provision(parseEndpoint(uri));
    const got: Message[] = [];
    const subscription = withCert.consume(parseEndpoint(uri)).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    try {
      const sent = createMessage({ mtls: true });
      await withCert.publish(parseEndpoint(uri), [sent]);
      await waitFor(() => got.length >= 1, () => 'nothing received over mutual TLS');
      expect(got[0]?.id).toBe(sent.id);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('credentials in the URL (mqtts://user:password@host) connect, and the URL is logged redacted', async () => {
    const inUrl = transport({ url: broker.url.replace('//', `//${USERNAME}:${PASSWORD}@`), tls: { ca: broker.ca.cert } }, 'sec-url-creds');
    await inUrl.connect();
    const connected = lines.filter((line) => line.message === 'mqtt transport connected' && line.fields.includes('sec-url-creds'));
    expect(connected).toHaveLength(1);
    expect(connected[0]?.fields).toContain('***@127.0.0.1:18851');
    // and refused (wrong CA): the refusal names the URL redacted too
    const refusedInUrl = transport({ url: broker.url.replace('//', `//${USERNAME}:${PASSWORD}@`), tls: { ca: broker.otherCa.cert }, connectTimeoutMs: 1_000 }, 'sec-url-creds-refused');
    const error = await refused(refusedInUrl);
    expect(error).toBeInstanceOf(MqttConnectionRefusedError);
    expect((error as Error).message).toContain('***@127.0.0.1:18851');
  });

  it('invalid options: MqttConfigError names the problem, never the password or key', () => {
    const bad: { label: string; options: MqttTransportOptions; problem: RegExp }[] = [
      { label: 'username not a string', options: { url: broker.url, clientId: 'x', username: 42 as unknown as string, password: PASSWORD }, problem: /username must be string/ },
      { label: 'unknown option', options: { url: broker.url, clientId: 'x', password: PASSWORD, passwrd: PASSWORD } as MqttTransportOptions, problem: /unknown option 'passwrd'/ },
      { label: 'bad url with credentials', options: { url: `ftp://${USERNAME}:${PASSWORD}@127.0.0.1`, clientId: 'x', password: PASSWORD }, problem: /url must match pattern/ },
      { label: 'password not a string', options: { url: broker.url, clientId: 'x', password: { secret: PASSWORD } as unknown as string }, problem: /password must be string/ },
      { label: 'no stable clientId', options: { url: broker.url, password: PASSWORD, tls: { key: broker.client.key } }, problem: /clientId/ },
    ];
    for (const { label, options, problem } of bad) {
      let thrown: unknown;
      try {
        validateMqttOptions(options);
      } catch (error) {
        thrown = record(error);
      }
      expect(thrown, label).toBeInstanceOf(MqttConfigError);
      expect((thrown as Error).message, label).toMatch(problem);
      expect((thrown as Error).message, label).not.toContain(PASSWORD);
      expect((thrown as Error).message, label).not.toContain(broker.client.key.trim());
    }
  });

  it('invalid TLS options are refused too (the schema declares tls.rejectUnauthorized boolean, no other keys), without the key in the message', () => {
    let thrown: unknown;
    try {
      validateMqttOptions({ url: broker.url, clientId: 'x', password: PASSWORD, tls: { key: broker.client.key, rejectUnauthorized: 'no' as unknown as boolean, keyy: broker.client.key } as MqttTransportOptions['tls'] });
    } catch (error) {
      thrown = record(error);
    }
    expect(thrown, 'an invalid tls option passed validation').toBeInstanceOf(MqttConfigError);
    expect((thrown as Error).message).toMatch(/^(?=.*tls\.rejectUnauthorized must be boolean)(?=.*unknown option 'tls\.keyy')/);
    expect((thrown as Error).message).not.toContain(broker.client.key.trim());
    expect((thrown as Error).message).not.toContain(PASSWORD);
  });

  // Last in the file: checks everything the tests above logged and threw, failing connects included.
  it('secrets never logged: no log line or error message holds the password or a private key', () => {
    expect(lines.some((line) => line.message === 'mqtt client error'), 'the failing connects above logged nothing: the check would be vacuous').toBe(true);
    expect(lines.some((line) => line.message === 'mqtt transport connected')).toBe(true);
    assertNoSecrets();
  });
});

function assertNoSecrets(): void {
    const keyBodies = [broker.client.key, broker.strangerClient.key, broker.server.key].map((pem) =>
      pem
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('-----'))
        .join(''),
    );
    for (const text of seen) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('PRIVATE KEY');
      for (const body of keyBodies) {
        expect(text).not.toContain(body.slice(0, 40));
        expect(text).not.toContain(body.slice(-40));
      }
    }
}
