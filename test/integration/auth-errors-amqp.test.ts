import { randomBytes, randomUUID } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpAccessRefusedError, AmqpTransport, TlsCertificateError, TlsHandshakeError, type AmqpTransportOptions } from '../../adapters/amqp/index.ts';
import { createMessage, NotConnectedError, parseEndpoint } from '../../src/core/index.ts';
import { rabbitmqctlAsync } from '../fault/rabbitmq-control.ts';
import { BrokerAdmin } from './amqp-support.ts';
import { capturingLogger, CountingProxy, createPki, textsOf, type TestPki } from './tls-proxy-fixture.ts';

// Issue #20: AMQP authorisation failures are typed, immediate (one connection attempt, no reconnect
// loop) and secret-free. TLS through a TLS-terminating proxy of this file's own in front of the
// shared RabbitMQ (which is never reconfigured); permissions with a user of this file's own.

const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const USER = `ic-auth-${run}`;
const PASSWORD = `pw-${randomUUID()}`;
const ALLOWED = `ic-auth-ok-${run}`;
const DENIED_QUEUE = `ic-auth-denied-${run}`;
const VHOST = `ic-auth-vh-${run}`;

const lines: string[] = [];
const seen: string[] = [];
const admin = new BrokerAdmin();
let pki: TestPki;
let plain: CountingProxy;
let tlsGood: CountingProxy;
let tlsWrongName: CountingProxy;
let tlsExpired: CountingProxy;
let open: AmqpTransport[] = [];

/** A transport as the restricted user (the password every test looks for), reconnecting fast: a retry loop would show in the counts. */
function transport(url: string, options: Omit<AmqpTransportOptions, 'url'> = {}): AmqpTransport {
  const created = new AmqpTransport({ url, connectTimeoutMs: 60_000, reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, ...options }, capturingLogger(lines));
  open.push(created);
  return created;
}

const userUrl = (scheme: 'amqp' | 'amqps', port: number, vhost = ''): string => `${scheme}://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/${vhost}`;

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
  await admin.channel(); // RabbitMQ is up: fails loudly if not
  pki = await createPki();
  [plain, tlsGood, tlsWrongName, tlsExpired] = await Promise.all([
    CountingProxy.start(5672),
    CountingProxy.start(5672, pki.server),
    CountingProxy.start(5672, pki.wrongName),
    CountingProxy.start(5672, pki.expired),
  ]);
  await rabbitmqctlAsync('add_user', USER, PASSWORD);
  const own = `^${ALLOWED}.*`;
  await rabbitmqctlAsync('set_permissions', '-p', '/', USER, own, `^(${ALLOWED}.*|amq\\.default)$`, own);
  await rabbitmqctlAsync('add_vhost', VHOST); // exists, but the user has no permission on it
  await (await admin.channel()).assertQueue(DENIED_QUEUE, { durable: false });
}, 120_000);

afterEach(async () => {
  for (const created of open) await created.close();
  open = [];
});

afterAll(async () => {
  await Promise.allSettled([plain?.close(), tlsGood?.close(), tlsWrongName?.close(), tlsExpired?.close()]);
  pki?.dispose();
  const channel = await admin.channel();
  for (const queue of [DENIED_QUEUE, `${ALLOWED}-q`]) await channel.deleteQueue(queue).catch(() => undefined);
  await rabbitmqctlAsync('delete_user', USER).catch(() => undefined);
  await rabbitmqctlAsync('delete_vhost', VHOST).catch(() => undefined);
}, 120_000);

describe('amqp: TLS failures reject connect() at once with a typed error', () => {
  it('the right CA and host: amqps:// through the TLS proxy connects (the proxy works)', async () => {
    await transport(userUrl('amqps', tlsGood.port), { tls: { ca: pki.ca.cert } }).connect();
  });

  it('a server certificate from a CA not in tls.ca: TlsCertificateError untrusted-ca, one attempt', async () => {
    const before = tlsGood.connections;
    const error = await rejection(transport(userUrl('amqps', tlsGood.port), { tls: { ca: pki.otherCa.cert } }).connect());
    expect(error).toBeInstanceOf(TlsCertificateError);
    expect(error).toMatchObject({ code: 'TLS_CERTIFICATE', reason: 'untrusted-ca', permanent: true });
    expect(tlsGood.connections - before).toBe(1);
  });

  it('a certificate for another host name: TlsCertificateError hostname-mismatch, one attempt', async () => {
    const error = await rejection(transport(userUrl('amqps', tlsWrongName.port), { tls: { ca: pki.ca.cert } }).connect());
    expect(error).toMatchObject({ name: 'TlsCertificateError', reason: 'hostname-mismatch', tlsCode: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(tlsWrongName.connections).toBe(1);
  });

  it('an expired certificate: TlsCertificateError expired, one attempt', async () => {
    const error = await rejection(transport(userUrl('amqps', tlsExpired.port), { tls: { ca: pki.ca.cert } }).connect());
    expect(error).toMatchObject({ name: 'TlsCertificateError', reason: 'expired', tlsCode: 'CERT_HAS_EXPIRED' });
    expect(tlsExpired.connections).toBe(1);
  });

  it('amqps:// to a plaintext port: TlsHandshakeError not-tls (the broker answers in plaintext), one attempt', async () => {
    const before = plain.connections;
    const error = await rejection(transport(userUrl('amqps', plain.port), { tls: { ca: pki.ca.cert } }).connect());
    expect(error).toBeInstanceOf(TlsHandshakeError);
    expect(error).toMatchObject({ code: 'TLS_HANDSHAKE', reason: 'not-tls', permanent: true });
    expect((error as Error).message).toMatch(/plaintext/);
    expect(plain.connections - before).toBe(1);
  });

  it('amqp:// (plaintext) to a TLS port cannot be told from a broker closing early: retried until connectTimeoutMs, then NotConnectedError naming the symptom', async () => {
    const before = tlsGood.connections;
    const error = await rejection(transport(userUrl('amqp', tlsGood.port), { connectTimeoutMs: 1_500 }).connect());
    expect(error).toBeInstanceOf(NotConnectedError);
    expect((error as Error).message).toMatch(/closed abruptly during opening handshake/);
    expect(tlsGood.connections - before).toBeGreaterThan(1); // documented: this one is retried
  });
});

describe('amqp: refused credentials, virtual host and permissions', () => {
  it('a wrong password: AmqpAccessRefusedError 403, one attempt', async () => {
    const before = plain.connections;
    const wrong = `${USER}:${encodeURIComponent(`${PASSWORD}-x`)}`;
    const error = await rejection(transport(`amqp://${wrong}@127.0.0.1:${plain.port}/`).connect());
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect(error).toMatchObject({ code: 'AMQP_ACCESS_REFUSED', replyCode: 403, permanent: true });
    expect(plain.connections - before).toBe(1);
  });

  it('a virtual host the user has no permission on: AmqpAccessRefusedError 530, one attempt', async () => {
    const before = plain.connections;
    const error = await rejection(transport(userUrl('amqp', plain.port, VHOST)).connect());
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect(error).toMatchObject({ replyCode: 530, resource: undefined });
    expect(plain.connections - before).toBe(1);
  });

  it('a topology queue the user may not declare: connect() rejects with AmqpAccessRefusedError naming the queue and the configure permission, one attempt', async () => {
    const before = plain.connections;
    const forbidden = `ic-auth-forbidden-${run}`;
    const error = await rejection(transport(userUrl('amqp', plain.port), { topology: { queues: [{ name: forbidden }] } }).connect());
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect(error).toMatchObject({ replyCode: 403, resource: { kind: 'queue', name: forbidden, vhost: '/' }, permission: 'configure' });
    expect((error as Error).message).toContain(`user '${USER}'`);
    expect(plain.connections - before).toBe(1);
  });

  it('consuming a queue the user may not read: the stream errors with AmqpAccessRefusedError (read), logged once, not resubscribed', async () => {
    const amqp = transport(userUrl('amqp', plain.port));
    await amqp.connect();
    const error = await rejection(firstValueFrom(amqp.consume(parseEndpoint(`amqp:queue/${DENIED_QUEUE}`))));
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect(error).toMatchObject({ resource: { kind: 'queue', name: DENIED_QUEUE }, permission: 'read' });
    const logged = lines.filter((line) => line.includes('refused this consumer') && line.includes(DENIED_QUEUE));
    expect(logged).toHaveLength(1);
    expect(lines.some((line) => line.includes('cannot start consuming; retrying') && line.includes(DENIED_QUEUE))).toBe(false);
  });

  it('publishing to a queue the user may not declare: AmqpAccessRefusedError (configure)', async () => {
    const amqp = transport(userUrl('amqp', plain.port));
    await amqp.connect();
    const forbidden = `ic-auth-nope-${run}`;
    const error = await rejection(amqp.publish(parseEndpoint(`amqp:queue/${forbidden}`), [createMessage({ n: 1 })]));
    expect(error).toMatchObject({ name: 'AmqpAccessRefusedError', resource: { kind: 'queue', name: forbidden }, permission: 'configure' });
  });

  it('publishing to an exchange the user may not write to: AmqpAccessRefusedError (write) at once, not resent until publishTimeoutMs; the next allowed publish works', async () => {
    const amqp = transport(userUrl('amqp', plain.port), { publishTimeoutMs: 60_000 });
    await amqp.connect();
    const error = await rejection(amqp.publish(parseEndpoint('amqp:exchange/amq.topic?routingKey=x'), [createMessage({ n: 1 })]));
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect(error).toMatchObject({ resource: { kind: 'exchange', name: 'amq.topic' }, permission: 'write', permanent: true });
    expect(lines.filter((line) => line.includes('refused a publish') && line.includes('amq.topic'))).toHaveLength(1);
    // the publisher's channel is replaced: an allowed destination still works
    await amqp.publish(parseEndpoint(`amqp:queue/${ALLOWED}-q`), [createMessage({ n: 2 })]);
    const got = await (await admin.channel()).checkQueue(`${ALLOWED}-q`);
    expect(got.messageCount).toBe(1);
  });
});

// Last: everything thrown and logged above.
it('no error text (String, message, stack, JSON, causes) and no log line holds the password', () => {
  expect(seen.length).toBeGreaterThan(20);
  expect(lines.some((line) => line.startsWith('ERROR'))).toBe(true);
  for (const text of [...seen, ...lines]) {
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encodeURIComponent(PASSWORD));
    expect(text).not.toContain('PRIVATE KEY');
  }
});
