import { createHash } from 'node:crypto';
import rhea, { type Message as AmqpMessage, type Session } from 'rhea';
import { toError } from '../../src/core/index.ts';

/**
 * rhea 3.0.5 decodes a transfer inside its frame handling (session.js `Incoming.on_transfer`): a body it
 * cannot decode (an amqp-value nested 100,000 deep overflows its recursive reader; an unknown typecode)
 * throws there and drops the whole connection — and the message comes back after every reconnect.
 *
 * `guardSession` wraps one session's transfer handling so that, while it runs, rhea's `message.decode`
 * never throws: it yields an `undecodable` marker instead (the consumer rejects that delivery alone)
 * and remembers each message's encoded bytes (for `messageDigest`). Other sessions and other callers
 * of `rhea.message.decode` are untouched.
 */
let guarding = 0;
const undecodable = new WeakMap<object, Error>();
const encoded = new WeakMap<object, Buffer>();

type Decode = (buffer: Buffer) => AmqpMessage;
const messageCodec = rhea.message as unknown as { decode: Decode };
const original = messageCodec.decode;
messageCodec.decode = function guardedDecode(this: unknown, buffer: Buffer): AmqpMessage {
  if (guarding === 0) return original.call(this, buffer);
  let message: AmqpMessage;
  try {
    message = original.call(this, buffer);
  } catch (error) {
    message = { body: undefined };
    undecodable.set(message, toError(error));
  }
  encoded.set(message, buffer);
  return message;
};

/** Makes `session`'s incoming transfers decode under the guard (see above). */
export function guardSession(session: Session): void {
  const handler = session as unknown as { on_transfer: (frame: unknown) => void };
  const onTransfer = handler.on_transfer;
  handler.on_transfer = function guardedTransfer(this: unknown, frame: unknown): void {
    guarding += 1;
    try {
      onTransfer.call(this, frame);
    } finally {
      guarding -= 1;
    }
  };
}

/** The error rhea's decoder threw for this message, if it could not decode it. */
export function decodeFailure(message: AmqpMessage): Error | undefined {
  return undecodable.get(message);
}

// section descriptors that RabbitMQ may change between deliveries of one message
const VOLATILE = new Set<unknown>([0x70, 0x71, 0x72, 'amqp:header:list', 'amqp:delivery-annotations:map', 'amqp:message-annotations:map']);

interface SectionReader {
  readonly position: number;
  remaining(): number;
  read(): { descriptor?: { value?: unknown } } | undefined;
}
const Reader = (rhea.types as unknown as { Reader: new (buffer: Buffer) => SectionReader }).Reader;

/**
 * A digest of a received message's bare message (properties, application properties, body, footer:
 * the encoded bytes after the header and annotation sections, which RabbitMQ rewrites on redelivery),
 * stable across redeliveries. `undefined` if the message did not arrive on a guarded session.
 */
export function messageDigest(message: AmqpMessage): string | undefined {
  const buffer = encoded.get(message);
  if (buffer === undefined) return undefined;
  let start = 0;
  try {
    const reader = new Reader(buffer);
    while (reader.remaining() > 0) {
      const section = reader.read();
      if (!VOLATILE.has(section?.descriptor?.value)) break;
      start = reader.position;
    }
  } catch {
    // an unreadable section: the digest covers it and everything after the last readable volatile one
  }
  return createHash('sha256').update(buffer.subarray(start)).digest('base64url');
}
