import { createHash, type Hash } from 'node:crypto';
import { InterchangeError, withHeaders, type Message } from '../../src/core/index.ts';

/** Default `maxMessageBytes` of consumer connections: 1 MiB of payload. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
/** Bytes of an oversized message's payload kept as its body. */
export const TRUNCATED_BYTES = 4_096;

/** What an oversized PUBLISH carried: its payload's size and SHA-256 (hex). */
export interface OversizedPublish {
  readonly size: number;
  readonly sha256: string;
}

/** The PUBLISH packets handed to mqtt.js truncated, by packet object. */
const oversized = new WeakMap<object, OversizedPublish>();

/** The size and hash of a PUBLISH whose payload was over its connection's `maxMessageBytes` (its payload is then the prefix only). */
export function oversizeOf(packet: object): OversizedPublish | undefined {
  return oversized.get(packet);
}

/** Headers that say a message was truncated at intake: set by the adapter only, a publisher's are dropped. */
const ORIGINAL_SIZE = 'x-interchange-original-size';
const SHA256 = 'x-interchange-sha256';
const TRUNCATED = 'x-interchange-truncated';

/**
 * The decoded message of a PUBLISH: for an oversized one (`oversized`), with `x-interchange-original-size`
 * (payload bytes), `x-interchange-sha256` (hex, of the whole payload) and `x-interchange-truncated: true`;
 * for any other, without those headers should its publisher have sent them.
 */
export function withTruncation(message: Message, oversized: OversizedPublish | undefined): Message {
  if (oversized !== undefined) return withHeaders(message, { [ORIGINAL_SIZE]: oversized.size, [SHA256]: oversized.sha256, [TRUNCATED]: true });
  const { headers } = message;
  if (headers[ORIGINAL_SIZE] === undefined && headers[SHA256] === undefined && headers[TRUNCATED] === undefined) return message;
  return withHeaders(message, { [ORIGINAL_SIZE]: undefined, [SHA256]: undefined, [TRUNCATED]: undefined });
}

/**
 * A PUBLISH whose payload was over the consumer's `maxMessageBytes`: its body is the payload's first
 * 4 KiB. Permanent: it is dead-lettered, never retried.
 */
export class MqttMessageTooLargeError extends InterchangeError {
  override readonly name = 'MqttMessageTooLargeError';
  constructor(
    readonly topic: string,
    readonly size: number,
    readonly limit: number,
  ) {
    const shown = topic.length <= 200 ? topic : `${topic.slice(0, 200)}…`;
    super('MQTT_MESSAGE_TOO_LARGE', `MQTT message on '${shown}' is ${size} bytes, over the consumer's maxMessageBytes of ${limit}: refused, its first ${Math.min(TRUNCATED_BYTES, limit)} bytes kept`, { permanent: true });
  }
}

/** The members of mqtt-packet 9's Parser the size limit works with (internal, hence checked). */
export interface LimitedParser {
  parse(buffer: Buffer): number;
  /** The packet object the parser fills next (a fresh one between packets). */
  packet: object;
  error: Error | null;
  settings: { protocolVersion?: number };
  _list: { readonly length: number };
  _emitError(error: Error): void;
}

/**
 * Puts a size limit in front of one mqtt-packet parser: `parser.parse` sees the byte stream first and
 * tracks packet boundaries itself (fixed header byte, remaining length), from the first byte of the
 * connection. Bytes go on to mqtt-packet unchanged — but for a PUBLISH whose payload is over
 * `maxMessageBytes`, which never reaches mqtt-packet's buffer list: its fixed and variable headers
 * (topic, packet id, properties) and the first 4 KiB of its payload are kept, the whole payload is
 * hashed (SHA-256) and counted as it streams by and then dropped, and mqtt-packet is handed a PUBLISH
 * of the same flags, topic, id and properties with the 4 KiB prefix as its payload, marked (`oversizeOf`).
 * Memory per connection is bounded by ~128 KiB whatever the payload size.
 *
 * Contract:
 * - Packets whose payload is within the limit reach mqtt-packet byte for byte, however the stream is
 *   split (a PUBLISH fixed header split across chunks is held until its length is known; a PUBLISH
 *   of more than `maxMessageBytes` remaining bytes until its variable header is).
 * - An oversized PUBLISH whose properties are over 64 KiB keeps none of them.
 * - An oversized PUBLISH whose variable header is malformed is dropped whole and reported as an
 *   `error` of the parser, as mqtt-packet reports malformed packets; the packets after it are parsed.
 * - After an error of mqtt-packet's (which then starts over on its next chunk) the limit does too.
 */
export function limitPublishSize(parser: LimitedParser, maxMessageBytes: number): void {
  const limiter = new PublishSizeLimit(parser, parser.parse, maxMessageBytes);
  parser.parse = (buffer: Buffer) => limiter.feed(buffer);
}

const EMPTY = Buffer.alloc(0);
const PUBLISH = 3;
/** Properties of an oversized PUBLISH are kept up to this size. */
const MAX_KEPT_PROPERTIES = 65_536;
/** The largest variable header kept: topic length + topic + packet id + property length + properties. */
const MAX_HEAD = 2 + 65_535 + 2 + 4 + MAX_KEPT_PROPERTIES;

/** Where the limiter is in the stream. */
const HEADER = 0; // between packets
const LENGTH = 1; // reading the remaining length
const BODY = 2; // passing a packet's body on
const HEAD = 3; // collecting the variable header of a PUBLISH of more than maxMessageBytes
const PROPERTIES = 4; // skipping the properties of an oversized PUBLISH (over MAX_KEPT_PROPERTIES)
const PAYLOAD = 5; // hashing an oversized payload
const DISCARD = 6; // dropping a malformed oversized PUBLISH
const LOST = 7; // after an invalid remaining length: everything goes on until mqtt-packet starts over
type Mode = typeof HEADER | typeof LENGTH | typeof BODY | typeof HEAD | typeof PROPERTIES | typeof PAYLOAD | typeof DISCARD | typeof LOST;

class PublishSizeLimit {
  private mode: Mode = HEADER;
  /** Fixed header of the current packet (held while it is a PUBLISH whose length is unknown). */
  private readonly header = Buffer.alloc(5);
  private headerLength = 0;
  /** Bytes of `header` that arrived in earlier chunks (not passed on yet). */
  private headerCarried = 0;
  private holding = false;
  private lengthValue = 0;
  private lengthMultiplier = 1;
  private lengthBytes = 0;
  /** The current packet's remaining length, and how much of it is still to come. */
  private bodyLength = 0;
  private remaining = 0;
  // A PUBLISH over the limit:
  private head: Buffer = EMPTY;
  private headFilled = 0;
  /** Bytes of the variable header wanted in `head`. */
  private headWanted = 0;
  /** Where its properties start (after the property length); -1 until known. */
  private propertiesAt = -1;
  private idEnd = 0;
  private payloadSize = 0;
  private hash: Hash | undefined;
  private prefix: Buffer = EMPTY;
  private prefixFilled = 0;
  private malformed = '';

  constructor(
    private readonly parser: LimitedParser,
    private readonly original: (buffer: Buffer) => number,
    private readonly limit: number,
  ) {}

  feed(chunk: Buffer): number {
    const parser = this.parser;
    if (parser.error) {
      // mqtt-packet drops what it holds and reads the next chunk as a new packet: so does the limit
      this.original.call(parser, EMPTY);
      this.reset();
    }
    const end = chunk.length;
    let at = 0;
    /** Start of the run of this chunk's bytes to pass on unchanged. */
    let passFrom = this.mode === HEAD || this.mode === PROPERTIES || this.mode === PAYLOAD || this.mode === DISCARD ? end : 0;
    /** Where the held PUBLISH fixed header starts in this chunk. */
    let holdFrom = 0;
    while (at < end) {
      switch (this.mode) {
        case HEADER: {
          const byte = chunk[at] as number;
          // a PUBLISH with both QoS bits set is mqtt-packet's to refuse, at once
          this.holding = byte >> 4 === PUBLISH && (byte & 0x06) !== 0x06;
          if (this.holding) {
            holdFrom = at;
            this.header[0] = byte;
            this.headerLength = 1;
            this.headerCarried = 0;
          }
          this.lengthValue = 0;
          this.lengthMultiplier = 1;
          this.lengthBytes = 0;
          this.mode = LENGTH;
          at += 1;
          break;
        }
        case LENGTH: {
          const byte = chunk[at] as number;
          at += 1;
          if (this.holding) {
            this.header[this.headerLength] = byte;
            this.headerLength += 1;
          }
          this.lengthBytes += 1;
          this.lengthValue += (byte & 0x7f) * this.lengthMultiplier;
          this.lengthMultiplier *= 0x80;
          // four bytes and still no end: mqtt-packet reports an invalid length; nothing is tracked until it starts over
          const invalid = (byte & 0x80) !== 0;
          if (invalid && this.lengthBytes < 4) break;
          this.bodyLength = this.remaining = this.lengthValue;
          if (invalid || !this.holding || this.remaining <= this.limit) {
            // passed on as it came (a fixed header begun in an earlier chunk first; a copy, as mqtt-packet may
            // keep it while its length is incomplete, and `header` is reused for the next packet of this chunk)
            if (this.holding && this.headerCarried > 0 && !this.pass(Buffer.from(this.header.subarray(0, this.headerCarried)))) return this.passRest(chunk, 0);
            this.holding = false;
            this.headerCarried = 0;
            this.mode = invalid ? LOST : this.remaining === 0 ? HEADER : BODY;
            break;
          }
          // a PUBLISH that may be over the limit: its bytes stop here until its variable header is read
          const before = this.headerCarried > 0 ? 0 : holdFrom;
          if (before > passFrom && !this.pass(chunk.subarray(passFrom, before))) return this.passRest(chunk, before);
          this.startHead();
          passFrom = end;
          break;
        }
        case LOST:
          at = end;
          break;
        case BODY: {
          const take = Math.min(this.remaining, end - at);
          at += take;
          this.remaining -= take;
          if (this.remaining === 0) this.mode = HEADER;
          break;
        }
        case HEAD: {
          const take = Math.min(this.headWanted - this.headFilled, end - at, this.remaining);
          chunk.copy(this.head, this.headFilled, at, at + take);
          this.headFilled += take;
          at += take;
          this.remaining -= take;
          if (this.headFilled < this.headWanted) {
            if (this.remaining === 0) this.discard('PUBLISH variable header longer than the packet');
            break;
          }
          if (!this.readHead()) {
            // within the limit after all: what was held goes on, the rest of the packet passes
            if (!this.pass(Buffer.from(this.header.subarray(0, this.headerLength))) || !this.pass(this.head.subarray(0, this.headFilled))) return this.passRest(chunk, at);
            this.head = EMPTY;
            this.mode = this.remaining === 0 ? HEADER : BODY;
            passFrom = at;
          }
          break;
        }
        case PROPERTIES:
        case DISCARD: {
          const take = Math.min(this.remaining - (this.mode === PROPERTIES ? this.payloadSize : 0), end - at);
          at += take;
          this.remaining -= take;
          if (this.mode === PROPERTIES && this.remaining === this.payloadSize) this.mode = PAYLOAD;
          break;
        }
        case PAYLOAD: {
          const take = Math.min(this.remaining, end - at);
          const bytes = chunk.subarray(at, at + take);
          (this.hash as Hash).update(bytes);
          if (this.prefixFilled < this.prefix.length) this.prefixFilled += bytes.copy(this.prefix, this.prefixFilled);
          at += take;
          this.remaining -= take;
          break;
        }
      }
      if (this.remaining === 0 && (this.mode === PAYLOAD || this.mode === PROPERTIES || this.mode === DISCARD)) {
        if (!this.finish()) return this.passRest(chunk, at);
        passFrom = at;
      }
    }
    if (this.mode === LENGTH && this.holding) {
      // the fixed header goes on once its length is known
      const before = this.headerCarried > 0 ? 0 : holdFrom;
      if (before > passFrom) this.pass(chunk.subarray(passFrom, before));
      this.headerCarried = this.headerLength;
    } else if (passFrom < end) this.pass(passFrom === 0 ? chunk : chunk.subarray(passFrom));
    return parser._list.length;
  }

  /** Hands bytes to mqtt-packet; false once it has failed (it then drops the rest of the chunk, as would it alone). */
  private pass(bytes: Buffer): boolean {
    this.original.call(this.parser, bytes);
    return !this.parser.error;
  }

  /** After an error of mqtt-packet's: the rest of the chunk goes to it as it came (it drops it when it starts over). */
  private passRest(chunk: Buffer, from: number): number {
    if (from < chunk.length) this.original.call(this.parser, chunk.subarray(Math.max(0, from)));
    this.reset();
    return this.parser._list.length;
  }

  private startHead(): void {
    this.mode = HEAD;
    this.head = Buffer.allocUnsafe(Math.min(this.bodyLength, MAX_HEAD));
    this.headFilled = 0;
    this.headWanted = 2;
    this.propertiesAt = -1;
    this.malformed = '';
  }

  /**
   * Reads what `head` holds of the variable header; asks for more (`headWanted`) until its length is
   * known. Returns false when the payload is within the limit after all, true otherwise (oversized:
   * the mode is then the next step, or `DISCARD` for a malformed header).
   */
  private readHead(): boolean {
    const head = this.head;
    const qos = (this.header[0] as number) >> 1 & 3;
    this.idEnd = 2 + head.readUInt16BE(0) + (qos > 0 ? 2 : 0);
    if (this.headFilled < this.idEnd) {
      this.headWanted = this.idEnd;
      return this.checkWanted();
    }
    let variableHeader = this.idEnd;
    let propertiesLength = 0;
    if (this.parser.settings.protocolVersion === 5) {
      let multiplier = 1;
      let at = this.idEnd;
      for (; at < this.headFilled; at += 1) {
        const byte = head[at] as number;
        propertiesLength += (byte & 0x7f) * multiplier;
        multiplier *= 0x80;
        if ((byte & 0x80) === 0) break;
      }
      if (at === this.headFilled) {
        if (at - this.idEnd >= 4) return this.discard('PUBLISH property length is not a valid variable byte integer');
        this.headWanted = at + 1;
        return this.checkWanted();
      }
      this.propertiesAt = at + 1;
      variableHeader = this.propertiesAt + propertiesLength;
    }
    if (variableHeader > this.bodyLength) return this.discard('PUBLISH variable header longer than the packet');
    this.payloadSize = this.bodyLength - variableHeader;
    if (this.payloadSize <= this.limit) return false;
    if (this.propertiesAt >= 0 && propertiesLength <= MAX_KEPT_PROPERTIES && this.headFilled < variableHeader) {
      this.headWanted = variableHeader; // the properties are kept: collected before the payload
      return true;
    }
    this.hash = createHash('sha256');
    this.prefix = Buffer.allocUnsafe(Math.min(TRUNCATED_BYTES, this.limit, this.payloadSize));
    this.prefixFilled = 0;
    if (this.headFilled < variableHeader) {
      // properties over MAX_KEPT_PROPERTIES: skipped, none kept
      this.headFilled = this.idEnd;
      this.propertiesAt = -2;
      this.mode = PROPERTIES;
    } else this.mode = PAYLOAD;
    return true;
  }

  /** The variable header wanted so far fits the packet; else the packet is dropped as malformed. */
  private checkWanted(): boolean {
    if (this.headWanted - this.headFilled > this.remaining) return this.discard('PUBLISH variable header longer than the packet');
    return true;
  }

  private discard(reason: string): true {
    this.malformed = reason;
    this.mode = DISCARD;
    return true;
  }

  /** The oversized PUBLISH has been read: mqtt-packet gets its truncated form (or its error). False if mqtt-packet failed. */
  private finish(): boolean {
    const parser = this.parser;
    if (this.mode === DISCARD) {
      const reason = this.malformed;
      this.reset();
      parser._emitError(new Error(reason));
      this.original.call(parser, EMPTY); // mqtt-packet starts over at the next packet, which is known
      return true;
    }
    const kept = this.propertiesAt === -2 ? this.idEnd + 1 : this.headFilled;
    if (this.propertiesAt === -2) this.head[this.idEnd] = 0; // no properties
    const bodyLength = kept + this.prefixFilled;
    const lengthBytes = bodyLength < 0x80 ? 1 : bodyLength < 0x4000 ? 2 : bodyLength < 0x200000 ? 3 : 4;
    const packet = Buffer.allocUnsafe(1 + lengthBytes + bodyLength);
    packet[0] = this.header[0] as number;
    let at = 1;
    for (let value = bodyLength; ; ) {
      const byte = value & 0x7f;
      value = Math.floor(value / 0x80);
      packet[at++] = value > 0 ? byte | 0x80 : byte;
      if (value === 0) break;
    }
    this.head.copy(packet, at, 0, kept);
    this.prefix.copy(packet, at + kept, 0, this.prefixFilled);
    // the packet object mqtt-packet fills next is this one's: marked before it is emitted
    oversized.set(parser.packet, { size: this.payloadSize, sha256: (this.hash as Hash).digest('hex') });
    this.reset();
    return this.pass(packet);
  }

  private reset(): void {
    this.mode = HEADER;
    this.holding = false;
    this.headerCarried = 0;
    this.head = EMPTY;
    this.prefix = EMPTY;
    this.hash = undefined;
    this.remaining = 0;
  }
}
