import { crc32 } from 'node:zlib';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { BufferRecordError, BufferUnencodableError } from './buffer-errors.ts';

/**
 * The on-disk record: a 16-byte header — payload length (u32 LE), CRC32 (u32 LE) of the sequence
 * number's 8 bytes followed by the payload, sequence number (u64 LE) — then the payload:
 * meta length (u32 LE), meta as JSON (`{ i: id, h: headers, k: body kind }`), body bytes.
 * Body kinds: `b` Buffer, `u` other Uint8Array, `s` string (UTF-8), `j` JSON, `n` undefined, so
 * every body comes back as it went in (a Buffer as a Buffer).
 */
export const RECORD_HEADER_BYTES = 16;

/** A record's payload is never longer than this (u32 lengths; nothing near it fits a sane buffer). */
export const MAX_PAYLOAD_BYTES = 0x7fff_ffff;

type BodyKind = 'b' | 'u' | 's' | 'j' | 'n';

interface Meta {
  readonly i: string;
  readonly h: Record<string, HeaderValue>;
  readonly k: BodyKind;
}

/** Encodes a message as a record payload; throws `BufferUnencodableError` for what cannot round-trip. */
export function encodePayload(message: Message): Buffer {
  if (typeof message.id !== 'string') throw new BufferUnencodableError(String(message.id), 'its id is not a string');
  const headers: Record<string, HeaderValue> = {};
  for (const name in message.headers) {
    const value = message.headers[name];
    if (value === undefined || name === 'attempt') continue; // `attempt` counts deliveries from this buffer: it starts afresh
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) headers[name] = value;
    else throw new BufferUnencodableError(message.id, `header '${name.slice(0, 64)}' is not a string, finite number or boolean`);
  }
  const { kind, bytes } = encodeBody(message);
  const meta = Buffer.from(JSON.stringify({ i: message.id, h: headers, k: kind } satisfies Meta), 'utf8');
  const payload = Buffer.allocUnsafe(4 + meta.length + bytes.length);
  payload.writeUInt32LE(meta.length, 0);
  meta.copy(payload, 4);
  payload.set(bytes, 4 + meta.length);
  return payload;
}

function encodeBody(message: Message): { kind: BodyKind; bytes: Uint8Array } {
  const { body } = message;
  if (Buffer.isBuffer(body)) return { kind: 'b', bytes: body };
  if (body instanceof Uint8Array) return { kind: 'u', bytes: body };
  if (typeof body === 'string') return { kind: 's', bytes: Buffer.from(body, 'utf8') };
  if (body === undefined) return { kind: 'n', bytes: new Uint8Array(0) };
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (cause) {
    throw new BufferUnencodableError(message.id, `its body is not JSON (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  if (json === undefined) throw new BufferUnencodableError(message.id, `its body (${typeof body}) is not JSON`);
  return { kind: 'j', bytes: Buffer.from(json, 'utf8') };
}

/** Decodes a payload written by `encodePayload`; throws `BufferRecordError` for anything else. */
export function decodePayload(payload: Buffer): Message {
  try {
    const metaLength = payload.readUInt32LE(0);
    const meta = JSON.parse(payload.toString('utf8', 4, 4 + metaLength)) as Meta;
    const raw = payload.subarray(4 + metaLength);
    const headers = meta.h as Headers;
    switch (meta.k) {
      case 'b':
        return { id: meta.i, headers, body: Buffer.from(raw) };
      case 'u':
        return { id: meta.i, headers, body: new Uint8Array(raw) };
      case 's':
        return { id: meta.i, headers, body: raw.toString('utf8') };
      case 'n':
        return { id: meta.i, headers, body: undefined };
      case 'j':
        return { id: meta.i, headers, body: JSON.parse(raw.toString('utf8')) as unknown };
      default:
        throw new Error(`unknown body kind '${String(meta.k)}'`);
    }
  } catch (cause) {
    throw new BufferRecordError(`a buffer record cannot be read as a message: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The record of `payload` at `seq`: header and payload in one buffer. */
export function frameRecord(seq: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeBigUInt64LE(BigInt(seq), 8);
  payload.copy(frame, RECORD_HEADER_BYTES);
  frame.writeUInt32LE(recordChecksum(frame.subarray(8, 16), payload), 4);
  return frame;
}

/** CRC32 of the sequence number's bytes, then the payload's. */
export function recordChecksum(seqBytes: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(seqBytes));
}

/** What `parseRecord` found at an offset. */
export type ParsedRecord =
  | { readonly kind: 'record'; readonly seq: number; readonly size: number; readonly payload: Buffer }
  /** The bytes end before the record does (its header says how long it is, when there is one). */
  | { readonly kind: 'incomplete'; readonly size?: number }
  | { readonly kind: 'bad'; readonly reason: string; readonly size?: number };

/** Reads the record starting at `offset` of `bytes`, checking its checksum and that its sequence number is `expectedSeq`. */
export function parseRecord(bytes: Buffer, offset: number, expectedSeq: number): ParsedRecord {
  if (bytes.length - offset < RECORD_HEADER_BYTES) return { kind: 'incomplete' };
  const length = bytes.readUInt32LE(offset);
  if (length > MAX_PAYLOAD_BYTES) return { kind: 'bad', reason: `a record length of ${length} bytes` };
  const size = RECORD_HEADER_BYTES + length;
  if (bytes.length - offset < size) return { kind: 'incomplete', size };
  const seqBytes = bytes.subarray(offset + 8, offset + 16);
  const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + size);
  if (recordChecksum(seqBytes, payload) !== bytes.readUInt32LE(offset + 4)) return { kind: 'bad', reason: 'a checksum mismatch', size };
  const seq = Number(bytes.readBigUInt64LE(offset + 8));
  if (seq !== expectedSeq) return { kind: 'bad', reason: `sequence number ${seq} where ${expectedSeq} was expected`, size };
  return { kind: 'record', seq, size, payload };
}
