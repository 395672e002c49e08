import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { CoapTransport, type CoapTransportOptions } from '../../adapters/coap/index.ts';
import { createMessage, parseEndpoint, silentLogger, type Delivery } from '../../src/core/index.ts';
import { until } from '../support/wait.ts';

// The embedded server under raw datagrams (RFC 7252 §3): what a device, a broken one or a hostile one, sends.
const transports: CoapTransport[] = [];
const subscriptions: Subscription[] = [];
const sockets: Socket[] = [];

async function transport(options: CoapTransportOptions = {}): Promise<CoapTransport> {
  const created = new CoapTransport({ port: 0, ...options }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

function collect(via: CoapTransport, uri: string, settle: (delivery: Delivery) => void = () => undefined): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(via.consume(parseEndpoint(uri)).subscribe((delivery) => (got.push(delivery), settle(delivery))));
  return got;
}

interface Parsed {
  readonly type: number;
  readonly code: string;
  readonly messageId: number;
  readonly token: string;
  readonly options: Map<number, Buffer>;
  readonly text: string;
}

/** Reads a reply datagram (enough of RFC 7252 §3 for these tests). */
function parse(datagram: Buffer): Parsed {
  const tokenLength = (datagram[0] as number) & 0x0f;
  const options = new Map<number, Buffer>();
  let at = 4 + tokenLength;
  let number = 0;
  let text = '';
  while (at < datagram.length) {
    const head = datagram[at] as number;
    at += 1;
    if (head === 0xff) {
      text = datagram.subarray(at).toString();
      break;
    }
    let delta = head >> 4;
    if (delta === 13) delta = 13 + (datagram[at++] as number);
    const length = head & 0x0f;
    number += delta;
    options.set(number, datagram.subarray(at, at + length));
    at += length;
  }
  const code = datagram[1] as number;
  return { type: ((datagram[0] as number) >> 4) & 3, code: `${code >> 5}.${String(code & 31).padStart(2, '0')}`, messageId: datagram.readUInt16BE(2), token: datagram.subarray(4, 4 + tokenLength).toString('hex'), options, text };
}

/** A raw request: CON (or NON), code, Message ID, token, options (number → value, ascending), payload. */
function raw(code: number, messageId: number, token: Buffer, options: Array<[number, Buffer]>, payload?: Buffer, type = 0): Buffer {
  const parts: Buffer[] = [Buffer.from([0x40 | (type << 4) | token.length, code, messageId >> 8, messageId & 0xff]), token];
  let previous = 0;
  for (const [number, value] of options) {
    const delta = number - previous;
    previous = number;
    const length = value.length < 13 ? value.length : 13;
    const lengthExt = value.length < 13 ? [] : [value.length - 13];
    if (delta < 13) parts.push(Buffer.from([(delta << 4) | length, ...lengthExt]));
    else parts.push(Buffer.from([(13 << 4) | length, delta - 13, ...lengthExt]));
    parts.push(value);
  }
  if (payload !== undefined && payload.length > 0) parts.push(Buffer.from([0xff]), payload);
  return Buffer.concat(parts);
}

const path = (segment: string): [number, Buffer] => [11, Buffer.from(segment)];
const block1 = (num: number, more: boolean, szx: number): [number, Buffer] => {
  const value = (num << 4) | (more ? 8 : 0) | szx;
  return [27, value < 256 ? Buffer.from([value]) : Buffer.from([value >> 8, value & 0xff])];
};

async function device(address = '127.0.0.1'): Promise<{ socket: Socket; replies: Parsed[]; send(datagram: Buffer, port: number): void }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const replies: Parsed[] = [];
  socket.on('message', (datagram: Buffer) => replies.push(parse(datagram)));
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return { socket, replies, send: (datagram, port) => socket.send(datagram, port, '127.0.0.1') };
}

async function reply(replies: Parsed[], match: (reply: Parsed) => boolean, what: string): Promise<Parsed> {
  await until(() => replies.some(match), () => `no ${what}; got ${JSON.stringify(replies.map((r) => `${r.code}/${r.messageId}`))}`);
  return replies.find(match) as Parsed;
}

afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
  for (const socket of sockets.splice(0)) socket.close();
});

describe('CoapTransport: closing', () => {
  it('a request arriving while close waits for in-flight publishes is answered 5.03 at once, never held past the socket', async () => {
    const server = await transport({ holdMs: 20_000, retryAfterSeconds: 4 });
    collect(server, 'coap:x', (delivery) => delivery.ack());
    const hole = await device(); // swallows the publish: close waits for it
    const publishing = server.publish(parseEndpoint(`coap://127.0.0.1:${(hole.socket.address() as AddressInfo).port}/y?timeoutMs=2000`), [createMessage(1)]).catch(() => undefined);
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    const dev = await device();
    dev.send(raw(0x02, 0x1234, Buffer.from([7]), [path('x')], Buffer.from('1')), server.port);
    const answer = await reply(dev.replies, (r) => r.messageId === 0x1234, 'answer while closing');
    expect(closed).toBe(false); // answered while close still waited, not held until a timer fires on a closed socket
    expect(answer).toMatchObject({ type: 2, code: '5.03', token: '07' });
    expect(answer.options.get(14)?.[0]).toBe(4); // Max-Age
    await closing;
    await publishing;
  });
});

describe('CoapTransport: requests answered before node-coap', () => {
  it('GET with Observe is answered 4.05 on the wire, with the request\'s Message ID and token and no Observe', async () => {
    const server = await transport();
    collect(server, 'coap:x');
    const dev = await device();
    dev.send(raw(0x01, 9, Buffer.from([0xaa]), [[6, Buffer.alloc(0)], path('x')]), server.port);
    const answer = await reply(dev.replies, (r) => r.messageId === 9, 'answer to GET + Observe');
    expect(answer).toMatchObject({ type: 2, code: '4.05', token: 'aa' });
    expect(answer.options.has(6)).toBe(false);
  });

  it('POST with Observe gets an ACK 4.05 with its Message ID and token (node-coap: 5.00, a random Message ID, no token)', async () => {
    const server = await transport();
    collect(server, 'coap:x', (delivery) => delivery.ack());
    const dev = await device();
    dev.send(raw(0x02, 10, Buffer.from([0x08]), [[6, Buffer.alloc(0)], path('x')], Buffer.from('1')), server.port);
    expect(await reply(dev.replies, (r) => r.messageId === 10, 'answer to POST + Observe')).toMatchObject({ type: 2, code: '4.05', token: '08' });
  });

  it('a last block without its first is answered 4.08 to the sender\'s own address (not 127.0.0.1)', async () => {
    const server = await transport({ host: '0.0.0.0' });
    collect(server, 'coap:x', (delivery) => delivery.ack());
    const spoofed = await device('127.0.0.2');
    const other = createSocket('udp4'); // 127.0.0.1 on the same port: node-coap's 5.00 went here
    sockets.push(other);
    const misdirected: Buffer[] = [];
    other.on('message', (datagram: Buffer) => misdirected.push(datagram));
    await new Promise<void>((resolve) => other.bind((spoofed.socket.address() as AddressInfo).port, '127.0.0.1', resolve));
    spoofed.send(raw(0x02, 3, Buffer.from([7]), [path('x'), block1(1, false, 0)], Buffer.from('A')), server.port);
    expect(await reply(spoofed.replies, (r) => r.messageId === 3, 'answer to an orphan last block')).toMatchObject({ type: 2, code: '4.08', token: '07' });
    expect(misdirected).toHaveLength(0);
  });
});

describe('CoapTransport: block-wise uploads are bounded', () => {
  it('refuses a block whose payload is not its declared size, SZX 7, and answers an oversized upload 4.13 with Size1', async () => {
    const server = await transport({ maxMessageBytes: 256 });
    const got = collect(server, 'coap:x', (delivery) => delivery.ack());
    const dev = await device();
    const token = Buffer.from([1]);
    dev.send(raw(0x02, 1, token, [path('x'), block1(0, true, 0)], Buffer.alloc(200, 0x41)), server.port); // 200 bytes as a 16-byte block
    expect(await reply(dev.replies, (r) => r.messageId === 1, 'answer to a mis-sized block')).toMatchObject({ code: '4.00' });
    dev.send(raw(0x02, 2, token, [path('x'), block1(0, true, 7)], Buffer.alloc(16)), server.port);
    expect(await reply(dev.replies, (r) => r.messageId === 2, 'answer to SZX 7')).toMatchObject({ code: '4.00' });
    dev.send(raw(0x02, 3, token, [path('x'), block1(20, true, 0)], Buffer.alloc(16)), server.port); // ends at 336 > 256
    const tooLarge = await reply(dev.replies, (r) => r.messageId === 3, 'answer to an oversized upload');
    expect(tooLarge.code).toBe('4.13');
    expect(tooLarge.options.get(60)?.readUIntBE(0, tooLarge.options.get(60)?.length ?? 1)).toBe(256);
    // a proper upload still goes through: 16 + 16 + 4 bytes
    dev.send(raw(0x02, 4, token, [path('x'), block1(0, true, 0)], Buffer.alloc(16, 0x61)), server.port);
    expect(await reply(dev.replies, (r) => r.messageId === 4, '2.31')).toMatchObject({ code: '2.31' });
    dev.send(raw(0x02, 5, token, [path('x'), block1(1, true, 0)], Buffer.alloc(16, 0x62)), server.port);
    await reply(dev.replies, (r) => r.messageId === 5, '2.31');
    dev.send(raw(0x02, 6, token, [path('x'), block1(2, false, 0)], Buffer.from('cccc')), server.port);
    expect(await reply(dev.replies, (r) => r.messageId === 6, '2.04')).toMatchObject({ code: '2.04' });
    expect(got.map((delivery) => Buffer.from(delivery.message.body as Buffer).toString())).toEqual([`${'a'.repeat(16)}${'b'.repeat(16)}cccc`]);
  });

  it('a single-datagram payload over maxMessageBytes is answered 4.13 with Size1', async () => {
    const server = await transport({ maxMessageBytes: 100 });
    collect(server, 'coap:x', (delivery) => delivery.ack());
    const dev = await device();
    dev.send(raw(0x02, 7, Buffer.from([1]), [path('x')], Buffer.alloc(101)), server.port);
    const answer = await reply(dev.replies, (r) => r.messageId === 7, '4.13');
    expect(answer.code).toBe('4.13');
    expect(answer.options.get(60)?.[0]).toBe(100);
  });

  it('bounds unfinished uploads per address (5.03 + Max-Age beyond 4) and in total across addresses', async () => {
    // maxMessageBytes 64: at most 16 · 64 = 1,024 datagram bytes of unfinished uploads buffered
    const server = await transport({ maxMessageBytes: 64, retryAfterSeconds: 9 });
    collect(server, 'coap:x', (delivery) => delivery.ack());
    const dev = await device();
    for (let token = 1; token <= 5; token += 1) dev.send(raw(0x02, token, Buffer.from([token]), [path('x'), block1(0, true, 0)], Buffer.alloc(16)), server.port);
    await until(() => dev.replies.length === 5, () => `${dev.replies.length} of 5 answers`);
    expect(dev.replies.filter((r) => r.code === '2.31')).toHaveLength(4);
    expect(dev.replies.find((r) => r.messageId === 5)).toMatchObject({ code: '5.03' });
    // big datagrams (an unknown elective option 258 of 250 bytes) from other addresses fill the total
    const codes: string[] = [];
    for (let host = 2; host <= 5; host += 1) {
      const other = await device(`127.0.0.${host}`);
      other.send(raw(0x02, 100 + host, Buffer.from([host]), [path('x'), block1(0, true, 0), [258, Buffer.alloc(250)]], Buffer.alloc(16)), server.port);
      codes.push((await reply(other.replies, (r) => r.messageId === 100 + host, 'block answer')).code);
    }
    expect(codes).toContain('5.03');
  });
});

describe('CoapTransport: ids and the answer cache', () => {
  it('a device reusing its Message ID and token (rebooted) with a new payload is delivered again, under a new id', async () => {
    const server = await transport();
    const got = collect(server, 'coap:x', (delivery) => delivery.ack());
    const dev = await device();
    dev.send(raw(0x02, 42, Buffer.alloc(0), [path('x')], Buffer.from('{"n":1}')), server.port);
    await reply(dev.replies, (r) => r.code === '2.04', 'first 2.04');
    dev.send(raw(0x02, 42, Buffer.alloc(0), [path('x')], Buffer.from('{"n":1}')), server.port); // a retransmission
    await until(() => dev.replies.length === 2, () => 'the retransmission was not answered');
    dev.send(raw(0x02, 42, Buffer.alloc(0), [path('x')], Buffer.from('{"n":2}')), server.port); // after a reboot
    await until(() => got.length === 2, () => `${got.length} deliveries`);
    expect(got.map((delivery) => delivery.message.body)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(got[0]?.message.id).not.toBe(got[1]?.message.id);
    expect(got[0]?.message.id).toMatch(/^coap:[\w-]+:\d+$/);
  });

  it('a retransmission after a separate response gets the adapter\'s remembered answer, and is not delivered again', async () => {
    const server = await transport({ piggybackMs: 50 });
    const got = collect(server, 'coap:x');
    const dev = await device();
    const request = raw(0x02, 0x4321, Buffer.from([1, 2]), [path('x')], Buffer.from('1'));
    dev.send(request, server.port);
    await reply(dev.replies, (r) => r.messageId === 0x4321 && r.code === '0.00', 'the empty ACK');
    await until(() => got.length === 1, () => 'no delivery');
    got[0]?.ack();
    const separate = await reply(dev.replies, (r) => r.code === '2.04' && r.type === 0, 'the separate 2.04');
    dev.send(Buffer.from([0x60, 0x00, separate.messageId >> 8, separate.messageId & 0xff]), server.port); // ACK it
    dev.send(request, server.port); // the device retransmits anyway (its ACK crossed)
    const again = await reply(dev.replies, (r) => r.messageId === 0x4321 && r.code === '2.04', 'the remembered 2.04');
    expect(again.token).toBe('0102');
    expect(got).toHaveLength(1);
  });
});

describe('CoapTransport: publish concurrency', () => {
  it('keeps at most publishConcurrency requests in flight to one destination', async () => {
    const client = await transport({ server: false, publishConcurrency: 4 });
    const sink = await device();
    let outstanding = 0;
    let most = 0;
    sink.socket.removeAllListeners('message');
    sink.socket.on('message', (datagram: Buffer, from: AddressInfo) => {
      if (((datagram[0] as number) >> 4 & 3) !== 0) return;
      outstanding += 1;
      most = Math.max(most, outstanding);
      const tokenLength = (datagram[0] as number) & 0x0f;
      const ack = Buffer.concat([Buffer.from([0x60 | tokenLength, 0x44, datagram[2] as number, datagram[3] as number]), datagram.subarray(4, 4 + tokenLength)]);
      setTimeout(() => {
        outstanding -= 1;
        sink.socket.send(ack, from.port, from.address);
      }, 10);
    });
    const messages = Array.from({ length: 40 }, (_, n) => createMessage({ n }));
    await client.publish(parseEndpoint(`coap://127.0.0.1:${(sink.socket.address() as AddressInfo).port}/sink`), messages);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(4);
  });
});
