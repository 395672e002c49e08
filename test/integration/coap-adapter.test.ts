import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as coap from 'coap';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { CoapConfigurationError, CoapListenError, CoapResponseError, CoapTransport, coapModule, HEADERS_OPTION, ID_OPTION, type CoapTransportOptions } from '../../adapters/coap/index.ts';
import { createMessage, InterchangeError, parseEndpoint, PartialPublishError, silentLogger, TimeoutError, type Delivery } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { sleep, until } from '../support/wait.ts';

// The embedded CoAP server on loopback UDP (free ports), devices played by node-coap's client and by raw datagrams.
const transports: CoapTransport[] = [];
const subscriptions: Subscription[] = [];
const sockets: Socket[] = [];
const agent = new coap.Agent({ type: 'udp4' });

async function transport(options: CoapTransportOptions = {}): Promise<CoapTransport> {
  const created = new CoapTransport({ port: 0, ...options }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

function collect(via: CoapTransport, uri: string, settle: (delivery: Delivery) => void = () => undefined, prefetch = 100): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => {
      got.push(delivery);
      settle(delivery);
    }),
  );
  return got;
}

interface Answer {
  readonly code: string;
  readonly text: string;
  readonly maxAge: unknown;
}

/** A device's confirmable request with node-coap's client; resolves with the response. */
function device(port: number, path: string, payload: string | Buffer, options: { method?: 'POST' | 'PUT' | 'GET'; query?: string; contentFormat?: string; extra?: Record<string, Buffer> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = agent.request({ hostname: '127.0.0.1', port, method: options.method ?? 'POST', pathname: path, ...(options.query === undefined ? {} : { query: options.query }), agent });
    if (options.contentFormat !== undefined) request.setOption('Content-Format', options.contentFormat);
    for (const [name, value] of Object.entries(options.extra ?? {})) request.setOption(name, value);
    request.on('response', (response: coap.IncomingMessage) => resolve({ code: response.code, text: response.payload.toString(), maxAge: response.headers['Max-Age'] }));
    request.on('error', reject);
    request.end(payload);
  });
}

/** A raw confirmable POST datagram (RFC 7252 §3): fixed message id and token, so it can be retransmitted as is. */
function rawPost(path: string, messageId: number, token: Buffer, payload: string): Buffer {
  const parts: Buffer[] = [Buffer.from([0x40 | token.length, 0x02, messageId >> 8, messageId & 0xff]), token];
  let previous = 0;
  for (const segment of path.split('/')) {
    const value = Buffer.from(segment);
    parts.push(Buffer.from([((11 - previous) << 4) | value.length]), value);
    previous = 11;
  }
  parts.push(Buffer.from([0xff]), Buffer.from(payload));
  return Buffer.concat(parts);
}

async function rawSocket(): Promise<{ socket: Socket; answers: Buffer[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const answers: Buffer[] = [];
  socket.on('message', (datagram: Buffer) => answers.push(datagram));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, answers };
}

async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
  for (const socket of sockets.splice(0)) socket.close();
});

describe('CoapTransport: device ingress', () => {
  it('answers the device 2.04 only once the delivery is acked, with path parameters and the peer as headers', async () => {
    const server = await transport();
    const got = collect(server, 'coap:devices/+deviceId/telemetry');
    let answer: Answer | undefined;
    void device(server.port, '/devices/d-17/telemetry', JSON.stringify({ t: 21.5 }), { contentFormat: 'application/json' }).then((a) => (answer = a));
    await until(() => got.length === 1, () => 'no delivery');
    const message = got[0]?.message;
    expect(message?.body).toEqual({ t: 21.5 });
    expect(message?.headers).toMatchObject({ deviceId: 'd-17', contentType: 'application/json', coapPath: 'devices/d-17/telemetry', attempt: 1 });
    expect(String(message?.headers.coapPeer)).toMatch(/^127\.0\.0\.1:\d+$/);
    await sleep(1_500); // past the 1 s piggyback window: node-coap has sent the empty ACK, the answer waits
    expect(answer).toBeUndefined();
    got[0]?.ack();
    await until(() => answer !== undefined, () => 'the device got no answer');
    expect(answer?.code).toBe('2.04');
  });

  it('a permanent nack answers 4.00 with the reason; transient nacks are redelivered, then 5.03 with Max-Age', async () => {
    const server = await transport({ maxDeliveries: 2, retryAfterSeconds: 7 });
    collect(server, 'coap:refused', (delivery) => delivery.nack(new InterchangeError('BAD_READING', 'reading out of range', { permanent: true })));
    const attempts: number[] = [];
    collect(server, 'coap:flaky', (delivery) => {
      attempts.push(Number(delivery.message.headers.attempt));
      delivery.nack(new Error('downstream unavailable'));
    });
    const refused = await device(server.port, '/refused', '1');
    expect(refused.code).toBe('4.00');
    expect(refused.text).toContain('reading out of range');
    const flaky = await device(server.port, '/flaky', '1');
    expect(flaky.code).toBe('5.03');
    expect(flaky.maxAge).toBe(7);
    expect(flaky.text).toContain('downstream unavailable');
    expect(attempts).toEqual([1, 2]);
  });

  it('a retransmission of a held request is not delivered twice, and one of an answered request gets the same answer', async () => {
    const server = await transport();
    const got = collect(server, 'coap:dedup');
    const { socket, answers } = await rawSocket();
    const datagram = rawPost('dedup', 0x1234, Buffer.from('abcd'), '{"n":1}');
    socket.send(datagram, server.port, '127.0.0.1');
    await until(() => got.length === 1, () => 'no delivery');
    socket.send(datagram, server.port, '127.0.0.1'); // the device retransmits: its answer is late
    await sleep(300);
    expect(got).toHaveLength(1);
    got[0]?.ack();
    await until(() => answers.some((answer) => answer[1] === 0x44), () => 'no 2.04'); // 0x44 = 2.04
    const before = answers.length;
    socket.send(datagram, server.port, '127.0.0.1'); // the 2.04 was lost, say: the device retransmits again
    await until(() => answers.length > before, () => 'the retransmission got no answer');
    expect(answers.at(-1)?.[1]).toBe(0x44);
    await sleep(200);
    expect(got).toHaveLength(1);
    expect(got[0]?.message.id).toMatch(/^coap:[\w-]+:\d+$/); // the exchange's own id: a retransmission keeps it
  });

  it('an unparseable JSON payload: 4.00 from a route without a dead-letter channel; 2.04 once one kept it; a filtered one 2.04', async () => {
    const port = await freePort();
    const dead = `memory:coap-dead-${port}`;
    const { kit, stop } = await startTestIntegration({
      modules: [coapModule({ port })],
      routes: [
        from('coap:kept/+deviceId', { id: 'coap-dlc' })
          .filter((message) => (message.body as { skip?: boolean }).skip !== true)
          .to(`memory:coap-out-${port}`)
          .deadLetterChannel(dead),
        from('coap:strict/+deviceId', { id: 'coap-strict' }).to(`memory:coap-strict-${port}`),
      ],
    });
    try {
      const deadLetters = kit.mock(dead);
      const refused = await device(port, '/strict/d1', '{"t": 2', { contentFormat: 'application/json' });
      expect(refused.code).toBe('4.00');
      expect(refused.text).toMatch(/not valid JSON/);
      // the dead-letter channel took it: the device's message is kept, nothing for the device to retry
      expect((await device(port, '/kept/d1', '{"t": 2', { contentFormat: 'application/json' })).code).toBe('2.04');
      await deadLetters.expect(1);
      expect((await device(port, '/kept/d1', '{"skip": true}', { contentFormat: 'application/json' })).code).toBe('2.04');
    } finally {
      await stop();
    }
  });

  it('end to end: coap: → route → coap://, the device answered after the downstream server settled', async () => {
    const downstream = await transport();
    const received = collect(downstream, 'coap:ingest?headers=all', () => undefined);
    const port = await freePort();
    const { stop } = await startTestIntegration({
      modules: [coapModule({ port })],
      routes: [from('coap:devices/+deviceId/telemetry', { id: 'coap-e2e' }).to(`coap://127.0.0.1:${downstream.port}/ingest`)],
    });
    try {
      const answers: Answer[] = [];
      for (let n = 0; n < 5; n += 1) void device(port, `/devices/d${n}/telemetry`, JSON.stringify({ n }), { contentFormat: 'application/json' }).then((a) => answers.push(a));
      await until(() => received.length === 5, () => `downstream got ${received.length} of 5`);
      await sleep(200);
      expect(answers).toHaveLength(0); // nothing acknowledged before the destination settled
      expect(new Set(received.map((delivery) => delivery.message.headers.deviceId))).toEqual(new Set(['d0', 'd1', 'd2', 'd3', 'd4']));
      for (const delivery of received) delivery.ack();
      await until(() => answers.length === 5, () => `${answers.length} of 5 devices answered`);
      expect(answers.map((answer) => answer.code)).toEqual(Array(5).fill('2.04'));
    } finally {
      await stop();
    }
  });
});

describe('CoapTransport: untrusted input and limits', () => {
  it('ignores a device\'s id and headers options and unlisted query parameters; takes allow-listed ones, never reserved names', async () => {
    const server = await transport();
    const got = collect(server, 'coap:d/+deviceId?query=fw,contentType', (delivery) => delivery.ack());
    const forged = { [ID_OPTION]: Buffer.from('forged-id'), [HEADERS_OPTION]: Buffer.from(JSON.stringify({ 'x-interchange-reason': 'forged', deviceId: 'other' })) };
    const answer = await device(server.port, '/d/dev-1', 'hello', { query: 'fw=1.2&contentType=evil&x-interchange-attempts=9&other=1', extra: forged });
    expect(answer.code).toBe('2.04');
    const headers = got[0]?.message.headers ?? {};
    expect(got[0]?.message.id).not.toBe('forged-id');
    expect(headers).toMatchObject({ fw: '1.2', deviceId: 'dev-1' });
    expect(Object.keys(headers).filter((name) => name.startsWith('x-interchange-') || name === 'other' || name === 'contentType')).toEqual([]);
    expect(got[0]?.message.body).toEqual(Buffer.from('hello'));
  });

  it('refuses other methods (4.05), payloads over maxMessageBytes (4.13), paths nobody consumes (4.04 after holdMs)', async () => {
    const server = await transport({ maxMessageBytes: 100, holdMs: 200 });
    collect(server, 'coap:limits', (delivery) => delivery.ack());
    expect((await device(server.port, '/limits', '', { method: 'GET' })).code).toBe('4.05');
    expect((await device(server.port, '/limits', 'x'.repeat(101))).code).toBe('4.13');
    expect((await device(server.port, '/limits', 'x'.repeat(100))).code).toBe('2.04');
    expect((await device(server.port, '/nobody/here', '1')).code).toBe('4.04');
  });

  it('a full intake answers 5.03 with Max-Age at once', async () => {
    const server = await transport({ capacity: 2, retryAfterSeconds: 3 });
    collect(server, 'coap:full', () => undefined, 10);
    const first = [device(server.port, '/full', '1'), device(server.port, '/full', '2')];
    await sleep(200);
    const third = await device(server.port, '/full', '3');
    expect(third).toMatchObject({ code: '5.03', maxAge: 3 });
    void first;
  });
});

describe('CoapTransport: options, publishing and errors', () => {
  it('rejects a mistyped endpoint option with "did you mean", bad transport options, and a taken port', async () => {
    const server = await transport();
    let typo: unknown;
    server.consume(parseEndpoint('coap:x?qeury=a')).subscribe({ error: (error: unknown) => (typo = error) });
    expect(typo).toBeInstanceOf(CoapConfigurationError);
    expect(String(typo)).toMatch(/did you mean 'query'/);
    expect(() => new CoapTransport({ piggybackMs: -1 })).toThrow(CoapConfigurationError);
    const second = new CoapTransport({ port: server.port }, silentLogger);
    await expect(second.connect()).rejects.toBeInstanceOf(CoapListenError);
    let failure: unknown;
    server.consume(parseEndpoint('coap://127.0.0.1:1/x')).subscribe({ error: (error: unknown) => (failure = error) });
    expect(failure).toBeInstanceOf(CoapConfigurationError);
  });

  it('publish rejects with CoapResponseError on 4.04, TimeoutError when nothing answers, and an oversized message alone', async () => {
    const target = await transport({ holdMs: 50 });
    const client = await transport({ server: false });
    const missing = client.publish(parseEndpoint(`coap://127.0.0.1:${target.port}/nobody`), [createMessage({ a: 1 })]);
    await expect(missing).rejects.toBeInstanceOf(CoapResponseError);
    await expect(missing).rejects.toMatchObject({ responseCode: '4.04', permanent: true });
    const silent = await freePort();
    await expect(client.publish(parseEndpoint(`coap://127.0.0.1:${silent}/x?timeoutMs=300`), [createMessage(1)])).rejects.toBeInstanceOf(TimeoutError);
    const oversized = client.publish(parseEndpoint(`coap://127.0.0.1:${target.port}/x`), [createMessage('x'.repeat(2_000))]);
    await expect(oversized).rejects.toBeInstanceOf(PartialPublishError);
    await expect(oversized.catch((error: PartialPublishError) => error.failures.get(0))).resolves.toMatchObject({ code: 'COAP_UNENCODABLE', permanent: true });
  });

  it('observes a remote resource: each notification is a delivery', async () => {
    const sensor = coap.createServer();
    const timers: NodeJS.Timeout[] = [];
    let value = 20;
    sensor.on('request', (request: coap.IncomingMessage, response: coap.OutgoingMessage) => {
      if (request.headers.Observe !== 0) return response.end(String(value));
      response.setOption('Content-Format', 'application/json');
      timers.push(setInterval(() => response.write(JSON.stringify({ celsius: (value += 1) })), 50));
      response.write(JSON.stringify({ celsius: value }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => sensor.listen(port, '127.0.0.1', () => resolve()));
    try {
      const observer = await transport({ server: false });
      const got = collect(observer, `coap://127.0.0.1:${port}/temperature?observe=true`, (delivery) => delivery.ack());
      await until(() => got.length >= 3, () => `${got.length} notifications`);
      const readings = got.map((delivery) => (delivery.message.body as { celsius: number }).celsius);
      expect(readings[1]).toBeGreaterThan(readings[0] as number);
      expect(new Set(got.map((delivery) => delivery.message.id)).size).toBe(got.length);
    } finally {
      for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
      for (const timer of timers) clearInterval(timer);
      sensor.close();
    }
  });
});
