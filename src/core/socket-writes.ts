import type { Socket } from 'node:net';

/**
 * Client libraries write a message as several small chunks (mqtt-packet: ~20 for a PUBLISH with
 * properties) or as one write per message (amqplib's muxer). Node hands a corked batch to the kernel
 * as one iovec per chunk, and an uncorked socket makes one syscall per write: on this machine either
 * cost up to a third of a publisher's CPU. These helpers let a transport's socket write a whole event
 * loop turn's output at once. `_writev`/`_write` are the stream implementer's API; TLS sockets included.
 */

/** A corked batch goes to the kernel as one buffer (a memcpy), not one iovec per chunk. */
export function coalesceWrites(socket: Socket): void {
  const writeOne = socket._write.bind(socket);
  socket._writev = (chunks, callback) => {
    const buffers = chunks.map(({ chunk, encoding }) => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding)));
    writeOne(Buffer.concat(buffers), 'buffer' as BufferEncoding, callback);
  };
}

/**
 * Every write of one turn of the event loop is held (corked) until the turn's `nextTick` queue runs,
 * then sent as one buffer: for libraries that write to the socket once per message without corking
 * (amqplib). Adds no timer: what is written in a turn leaves at the end of that turn.
 */
export function batchWrites(socket: Socket): void {
  coalesceWrites(socket);
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
}
