import type { Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, OutgoingMessage, Server } from 'coap';
import { clipErrorText, type Logger } from '../../src/core/index.ts';
import { HEADERS_OPTION, ID_OPTION, type InboundRequest } from './coap-codec.ts';
import { CoapListenError } from './coap-errors.ts';
import { Exchange, writeAnswer, type Answer } from './coap-exchange.ts';
import type { Ingress } from './coap-ingress.ts';

/** How long an answer is kept to answer a retransmission the same way: CoAP's EXCHANGE_LIFETIME (247 s). */
const EXCHANGE_LIFETIME_MS = 247_000;
/** Answers kept at most (the oldest go first). */
const MAX_REMEMBERED = 20_000;
/** The most Uri-Path segments a request may have. */
const MAX_SEGMENTS = 32;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface ServerSettings {
  readonly host: string;
  readonly port: number;
  readonly piggybackMs: number;
  readonly maxMessageBytes: number;
  readonly retryAfterSeconds: number;
  readonly log: Logger;
}

/**
 * The embedded CoAP server (node-coap) in front of the `Ingress`: listens on UDP, deduplicates
 * retransmissions and turns each new POST/PUT into an `Exchange`.
 *
 * Contract:
 * - A retransmission (same peer, Message ID and token) of a request still held is ignored (node-coap
 *   ACKs it again after `piggybackMs`); of one already answered, gets the same answer again (for
 *   EXCHANGE_LIFETIME, at most 20,000 answers remembered). node-coap alone would hand it over twice.
 * - Refused at once, never held: other methods and Observe (4.05), a payload over `maxMessageBytes`
 *   (4.13 with Size1), over 32 path segments or a control character in one (4.00), the server full (5.03 + Max-Age).
 *   A block-wise (Block1) transfer whose next block would pass `maxMessageBytes` is dropped before
 *   node-coap buffers it (its reassembly would otherwise allocate whatever the block number says).
 * - Every response carries an error listener: a separate response the device never ACKs does not crash the process.
 */
export class EmbeddedServer {
  private server: Server | undefined;
  private readonly answers = new Map<string, { readonly answer: Answer; readonly at: number }>();
  private readonly held = new Map<string, Exchange>();
  /** Responses node-coap made for retransmissions of held requests: never written, their empty-ACK timers cleared once the original is answered. */
  private readonly duplicates = new Map<string, OutgoingMessage[]>();
  private boundPort = 0;

  constructor(
    private readonly settings: ServerSettings,
    private readonly ingress: Ingress,
  ) {}

  /** The UDP port listened on (the configured one, or the one the OS chose for port 0). */
  get port(): number {
    return this.boundPort;
  }

  async listen(): Promise<void> {
    const coap = await import('coap');
    const server = coap.createServer({ piggybackReplyMs: this.settings.piggybackMs, sendAcksForNonConfirmablePackets: true, reuseAddr: false });
    server.on('request', (request: IncomingMessage, response: OutgoingMessage) => this.onRequest(request, response));
    server.on('error', (error: unknown) => this.settings.log.warn('coap: server socket error', { error: String(error) }));
    await new Promise<void>((resolve, reject) => {
      server.listen(this.settings.port, this.settings.host, (error?: Error) => {
        if (error === undefined || error === null) resolve();
        else reject(error);
      });
      const socket = server._sock as Socket;
      socket.once('error', reject);
    }).catch((cause: unknown) => {
      server.close();
      throw new CoapListenError(`coap: cannot listen on ${this.settings.host}:${this.settings.port} (${String(cause)})`, { cause });
    });
    const socket = server._sock as Socket;
    this.boundPort = (socket.address() as AddressInfo).port;
    // screen datagrams before node-coap sees them: Block1 transfers past maxMessageBytes are dropped
    const handle = server.handleRequest();
    socket.removeAllListeners('message');
    socket.on('message', (datagram: Buffer, rinfo: AddressInfo) => {
      const extent = block1Extent(datagram);
      if (extent !== undefined && extent > this.settings.maxMessageBytes) return;
      handle(datagram, rinfo);
    });
    this.server = server;
  }

  /** Stops listening; held exchanges are the ingress's to answer first. */
  close(): void {
    for (const responses of this.duplicates.values()) for (const response of responses) stopAckTimer(response);
    this.duplicates.clear();
    this.server?.close();
    this.server = undefined;
    this.held.clear();
  }

  private onRequest(request: IncomingMessage, response: OutgoingMessage): void {
    response.on('error', () => undefined); // a separate response never ACKed: the device is gone, nothing to do
    const packet = request._packet;
    const token = packet.token ?? Buffer.alloc(0);
    const peer = `${request.rsinfo.address}:${request.rsinfo.port}`;
    const key = `${peer}/${packet.messageId ?? ''}/${token.toString('hex')}`;
    const remembered = this.answers.get(key);
    if (remembered !== undefined && Date.now() - remembered.at < EXCHANGE_LIFETIME_MS) {
      writeAnswer(response, remembered.answer);
      return;
    }
    if (this.held.has(key)) {
      // a retransmission of a request still in a route: node-coap ACKs it (empty) after piggybackMs, the answer comes with the original
      const responses = this.duplicates.get(key);
      if (responses === undefined) this.duplicates.set(key, [response]);
      else if (responses.length < 8) responses.push(response);
      else stopAckTimer(response);
      return;
    }
    const refusal = this.screen(request);
    if (refusal !== undefined) {
      this.remember(key, refusal);
      writeAnswer(response, refusal);
      return;
    }
    const path: string[] = [];
    const queries: string[] = [];
    let contentFormat: string | undefined;
    let idOption: Buffer | undefined;
    let headersOption: Buffer | undefined;
    for (const option of packet.options ?? []) {
      const name = String(option.name);
      if (name === 'Uri-Path') path.push(String(option.value));
      else if (name === 'Uri-Query') queries.push(String(option.value));
      else if (name === 'Content-Format' && typeof option.value === 'string') contentFormat = option.value;
      else if (name === ID_OPTION && Buffer.isBuffer(option.value)) idOption = option.value;
      else if (name === HEADERS_OPTION && Buffer.isBuffer(option.value)) headersOption = option.value;
    }
    if (path.length > MAX_SEGMENTS || path.some((segment) => CONTROL.test(segment))) {
      const answer = { code: '4.00', payload: `a path has at most ${MAX_SEGMENTS} segments, without control characters` };
      this.remember(key, answer);
      writeAnswer(response, answer);
      return;
    }
    if (this.ingress.full) {
      writeAnswer(response, { code: '5.03', payload: 'the server holds as many requests as it may; retry later', maxAgeSeconds: this.settings.retryAfterSeconds });
      return;
    }
    const inbound: InboundRequest = { peer, messageId: packet.messageId ?? 0, token, path, params: {}, queries, contentFormat, idOption, headersOption, payload: request.payload ?? Buffer.alloc(0) };
    const exchange = new Exchange(key, inbound, response, (done, answer) => {
      this.held.delete(done.key);
      for (const duplicate of this.duplicates.get(done.key) ?? []) stopAckTimer(duplicate);
      this.duplicates.delete(done.key);
      this.remember(done.key, answer);
    });
    this.held.set(key, exchange);
    this.ingress.accept(exchange);
  }

  /** The answer for a request refused before it is held, or undefined. */
  private screen(request: IncomingMessage): Answer | undefined {
    const method = request._packet.code;
    if (request.headers.Observe !== undefined) return { code: '4.05', payload: 'this server takes POST and PUT; it has no observable resources' };
    if (method !== '0.02' && method !== '0.03') return { code: '4.05', payload: 'this server takes POST and PUT' };
    const size = request.payload?.length ?? 0;
    if (size > this.settings.maxMessageBytes) return { code: '4.13', payload: clipErrorText(`the payload is ${size} bytes; at most ${this.settings.maxMessageBytes}`) };
    return undefined;
  }

  private remember(key: string, answer: Answer): void {
    this.answers.delete(key);
    this.answers.set(key, { answer, at: Date.now() });
    if (this.answers.size > MAX_REMEMBERED) {
      const now = Date.now();
      for (const [old, entry] of this.answers) {
        if (this.answers.size <= MAX_REMEMBERED && now - entry.at < EXCHANGE_LIFETIME_MS) break;
        this.answers.delete(old);
      }
    }
  }
}

/** Cancels node-coap's pending empty ACK of a response that will never be written (it would send on a closed socket). */
function stopAckTimer(response: OutgoingMessage): void {
  if (response._ackTimer !== null) clearTimeout(response._ackTimer);
  response._ackTimer = null;
}

/**
 * Where a Block1 (option 27) request's block ends, `(num + 1) · size` bytes, read from the raw
 * datagram (RFC 7252 §3.1 option encoding); undefined without Block1 or when the datagram is malformed
 * (node-coap then refuses it).
 */
export function block1Extent(datagram: Buffer): number | undefined {
  if (datagram.length < 4) return undefined;
  let at = 4 + ((datagram[0] as number) & 0x0f);
  let number = 0;
  while (at < datagram.length) {
    const head = datagram[at] as number;
    if (head === 0xff) return undefined;
    at += 1;
    const delta = extended(head >> 4);
    if (delta === undefined) return undefined;
    const length = extended(head & 0x0f);
    if (length === undefined || at + length > datagram.length) return undefined;
    number += delta;
    if (number === 27) {
      let value = 0;
      for (let index = 0; index < length; index += 1) value = value * 256 + (datagram[at + index] as number);
      return (Math.floor(value / 16) + 1) * 2 ** ((value & 7) + 4);
    }
    if (number > 27) return undefined;
    at += length;
  }
  return undefined;

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
