import { once } from 'node:events';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { batchWrites } from '../../src/core/index.ts';

describe('batchWrites', () => {
  it('sends every write of one event-loop turn as one buffer, in order, nothing lost', async () => {
    const received: Buffer[] = [];
    let ended!: Promise<unknown>;
    const server = createServer((peer) => {
      peer.on('data', (chunk: Buffer) => received.push(chunk));
      ended = once(peer, 'end');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = new Socket();
    socket.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    const writes: number[] = [];
    const underlying = socket._write.bind(socket);
    socket._write = (chunk: Buffer, encoding, callback) => {
      writes.push(chunk.length);
      underlying(chunk, encoding, callback);
    };
    batchWrites(socket);

    const expected = Array.from({ length: 100 }, (_, n) => `message ${n};`).join('');
    for (let n = 0; n < 100; n += 1) socket.write(Buffer.from(`message ${n};`));
    await new Promise((resolve) => setImmediate(resolve));
    for (let n = 0; n < 10; n += 1) socket.write(`late ${n};`);
    await new Promise<void>((resolve) => socket.end(resolve));
    await ended;
    server.close();

    expect(writes).toHaveLength(2); // one per turn
    expect(writes[0]).toBe(Buffer.byteLength(expected));
    expect(Buffer.concat(received).toString()).toBe(expected + Array.from({ length: 10 }, (_, n) => `late ${n};`).join(''));
  });
});
