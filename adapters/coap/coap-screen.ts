import { randomInt } from 'node:crypto';

/** The Message ID, token and what the embedded server checks of a datagram before node-coap parses it (RFC 7252 §3). */
export interface DatagramHead {
  /** 0 CON, 1 NON, 2 ACK, 3 RST. */
  readonly type: number;
  /** The code byte: class (3 bits) and detail (5 bits); 0.02 POST = 2, 0.03 PUT = 3. */
  readonly code: number;
  readonly messageId: number;
  readonly token: Buffer;
  /** The request carries an Observe option (6). */
  readonly observe: boolean;
  /** Block1 (27), when present; `invalid` when its value is longer than 3 bytes. */
  readonly block1: { readonly num: number; readonly more: boolean; readonly szx: number } | 'invalid' | undefined;
  readonly payloadLength: number;
}

/** A reply the server writes itself (refusals that never reach node-coap). */
export interface Reply {
  readonly code: string;
  readonly payload: string;
  readonly maxAgeSeconds?: number;
  readonly size1?: number;
}

const OBSERVE = 6;
const BLOCK1 = 27;

/** Reads a datagram's header and options; undefined when it is not a well-formed CoAP message (node-coap then drops it). */
export function readHead(datagram: Buffer): DatagramHead | undefined {
  if (datagram.length < 4) return undefined;
  const first = datagram[0] as number;
  const tokenLength = first & 0x0f;
  if (first >> 6 !== 1 || tokenLength > 8 || datagram.length < 4 + tokenLength) return undefined;
  let at = 4 + tokenLength;
  let number = 0;
  let observe = false;
  let block1: DatagramHead['block1'];
  let payloadLength = 0;
  while (at < datagram.length) {
    const head = datagram[at] as number;
    at += 1;
    if (head === 0xff) {
      if (at >= datagram.length) return undefined; // a payload marker with no payload: a format error
      payloadLength = datagram.length - at;
      break;
    }
    const delta = extended(head >> 4);
    const length = extended(head & 0x0f);
    if (delta === undefined || length === undefined || at + length > datagram.length) return undefined;
    number += delta;
    if (number === OBSERVE) observe = true;
    else if (number === BLOCK1) {
      if (length > 3) block1 = 'invalid';
      else {
        let value = 0;
        for (let index = 0; index < length; index += 1) value = value * 256 + (datagram[at + index] as number);
        block1 = { num: Math.floor(value / 16), more: (value & 8) !== 0, szx: value & 7 };
      }
    }
    at += length;
  }
  return { type: (first >> 4) & 3, code: datagram[1] as number, messageId: datagram.readUInt16BE(2), token: datagram.subarray(4, 4 + tokenLength), observe, block1, payloadLength };

  function extended(nibble: number): number | undefined {
    if (nibble < 13) return nibble;
    if (nibble === 13) {
      if (at >= datagram.length) return undefined;
      at += 1;
      return (datagram[at - 1] as number) + 13;
    }
    if (nibble === 14) {
      if (at + 1 >= datagram.length) return undefined;
      at += 2;
      return datagram.readUInt16BE(at - 2) + 269;
    }
    return undefined;
  }
}

/**
 * The reply to a request as one datagram: an ACK carrying the request's Message ID for a CON request, a
 * NON with a fresh one for a NON request; the request's token; Content-Format text/plain with the text,
 * Max-Age, Size1 when given.
 */
export function encodeReply(request: DatagramHead, reply: Reply): Buffer {
  const [major, minor] = reply.code.split('.').map(Number) as [number, number];
  const confirmable = request.type === 0;
  const head = Buffer.from([0x40 | ((confirmable ? 2 : 1) << 4) | request.token.length, (major << 5) | minor, 0, 0]);
  head.writeUInt16BE(confirmable ? request.messageId : randomInt(0x10000), 2);
  const parts: Buffer[] = [head, request.token];
  let previous = 0;
  const option = (number: number, value: Buffer): void => {
    const delta = number - previous;
    previous = number;
    if (delta < 13) parts.push(Buffer.from([(delta << 4) | value.length]));
    else parts.push(Buffer.from([(13 << 4) | value.length, delta - 13]));
    parts.push(value);
  };
  if (reply.payload !== '') option(12, Buffer.alloc(0)); // Content-Format 0: text/plain; charset=utf-8
  if (reply.maxAgeSeconds !== undefined) option(14, uint(reply.maxAgeSeconds));
  if (reply.size1 !== undefined) option(60, uint(reply.size1));
  if (reply.payload !== '') parts.push(Buffer.from([0xff]), Buffer.from(reply.payload));
  return Buffer.concat(parts);
}

function uint(value: number): Buffer {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from(bytes);
}

export interface UploadLimits {
  /** The largest reassembled payload. */
  readonly maxMessageBytes: number;
  /** Datagram bytes of unfinished uploads buffered at once, all devices together. */
  readonly maxBufferedBytes: number;
  /** Unfinished uploads at once from one IP address. */
  readonly perAddress: number;
  /** How long an unfinished upload is remembered after its last block (node-coap keeps its blocks as long). */
  readonly lifetimeMs: number;
  readonly retryAfterSeconds: number;
}

interface Upload {
  readonly address: string;
  /** Payload bytes taken so far, in order: the next block must start here. */
  received: number;
  /** Datagram bytes node-coap keeps for it (a block's payload is a view of its whole datagram). */
  buffered: number;
  at: number;
}

/**
 * Block-wise uploads (RFC 7959 Block1) as node-coap reassembles them, checked before it buffers a block:
 * node-coap stores whatever arrives, keyed by token and peer, for EXCHANGE_LIFETIME, with no bound.
 *
 * Contract (`check` returns the refusal, or undefined to hand the block to node-coap):
 * - 4.00: SZX 7 (reserved), an empty token (node-coap would mix every empty-token upload into one), a
 *   block with more=1 whose payload is not exactly the block size, a last block larger than the block size.
 * - 4.02: a Block1 value longer than 3 bytes.
 * - 4.13 + Size1 `maxMessageBytes`: the block would end past `maxMessageBytes`.
 * - 4.08 Request Entity Incomplete: a block after the first that does not continue an upload in progress.
 * - 5.03 + Max-Age: a new upload past `perAddress` unfinished ones from that address, or a block past
 *   `maxBufferedBytes` buffered in total.
 * A block already taken (a retransmission) passes unaccounted; the last block ends the upload.
 */
export class Block1Uploads {
  private readonly uploads = new Map<string, Upload>();
  private readonly perAddress = new Map<string, number>();
  private buffered = 0;

  constructor(private readonly limits: UploadLimits) {}

  /** Bytes buffered by unfinished uploads (for tests and metrics). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  check(head: DatagramHead, datagramBytes: number, address: string, port: number): Reply | undefined {
    const block = head.block1;
    if (block === undefined) return undefined;
    if (block === 'invalid') return { code: '4.02', payload: 'the Block1 option is longer than 3 bytes' };
    if (block.szx === 7) return { code: '4.00', payload: 'Block1 SZX 7 is reserved (RFC 7959)' };
    if (head.token.length === 0) return { code: '4.00', payload: 'a block-wise request needs a token' };
    const size = 2 ** (block.szx + 4);
    const start = block.num * size;
    if (start + head.payloadLength > this.limits.maxMessageBytes || (block.more && start + size > this.limits.maxMessageBytes)) {
      return { code: '4.13', payload: `the payload would pass ${this.limits.maxMessageBytes} bytes`, size1: this.limits.maxMessageBytes };
    }
    if (block.more ? head.payloadLength !== size : head.payloadLength > size) return { code: '4.00', payload: `a block's payload must be its size, ${size} bytes (the last one at most)` };
    const now = Date.now();
    this.expire(now);
    const key = `${head.token.toString('hex')}/${address}:${port}`;
    let upload = this.uploads.get(key);
    if (upload !== undefined && start < upload.received) return undefined; // a block already taken: node-coap answers or overwrites it
    if (block.num === 0) {
      if (upload !== undefined) upload.received = 0; // the same token starts over (node-coap keeps what it had: still accounted)
      else {
        if ((this.perAddress.get(address) ?? 0) >= this.limits.perAddress) return this.busy(`at most ${this.limits.perAddress} block-wise uploads at once from one address`);
        upload = { address, received: 0, buffered: 0, at: now };
        if (!block.more) return undefined; // one block: nothing buffered
        this.uploads.set(key, upload);
        this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
      }
    } else if (upload === undefined || start !== upload.received) {
      return { code: '4.08', payload: 'this block does not continue an upload in progress' };
    }
    if (!block.more) {
      this.end(key, upload); // node-coap reassembles and forgets the blocks
      return undefined;
    }
    if (this.buffered + datagramBytes > this.limits.maxBufferedBytes) {
      if (upload.buffered === 0) this.end(key, upload); // nothing of it buffered yet; else it stays accounted until it expires
      return this.busy('the server buffers as many block-wise uploads as it may');
    }
    upload.received += size;
    upload.buffered += datagramBytes;
    upload.at = now;
    this.buffered += datagramBytes;
    this.uploads.delete(key); // kept in last-block order, for `expire`
    this.uploads.set(key, upload);
    return undefined;
  }

  reset(): void {
    this.uploads.clear();
    this.perAddress.clear();
    this.buffered = 0;
  }

  private busy(text: string): Reply {
    return { code: '5.03', payload: `${text}; retry later`, maxAgeSeconds: this.limits.retryAfterSeconds };
  }

  private end(key: string, upload: Upload): void {
    if (!this.uploads.delete(key)) return;
    this.buffered -= upload.buffered;
    const left = (this.perAddress.get(upload.address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(upload.address);
    else this.perAddress.set(upload.address, left);
  }

  /** Forgets uploads idle for `lifetimeMs` (insertion order is last-block order: the oldest come first). */
  private expire(now: number): void {
    for (const [key, upload] of this.uploads) {
      if (now - upload.at < this.limits.lifetimeMs) break;
      this.end(key, upload);
    }
  }
}
