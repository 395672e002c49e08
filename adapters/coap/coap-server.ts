import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, OutgoingMessage, Server } from 'coap';
import { clipErrorText, type Logger } from '../../src/core/index.ts';
import { HEADERS_OPTION, ID_OPTION, type InboundRequest } from './coap-codec.ts';
import { CoapListenError } from './coap-errors.ts';
import { Exchange, writeAnswer, type Answer } from './coap-exchange.ts';
import type { Ingress } from './coap-ingress.ts';
import { Block1Uploads, encodeReply, readHead, type DatagramHead, type Reply } from './coap-screen.ts';

/** How long an answer is kept to answer a retransmission the same way: CoAP's EXCHANGE_LIFETIME (247 s). */
const EXCHANGE_LIFETIME_MS = 247_000;
/** Answers kept at most (the oldest go first). */
const MAX_REMEMBERED = 20_000;
/** The most Uri-Path segments a request may have. */
const MAX_SEGMENTS = 32;
/** Unfinished block-wise uploads at once from one IP address. */
const MAX_UPLOADS_PER_ADDRESS = 4;
/** Datagram bytes of unfinished block-wise uploads buffered at once, all devices together, in `maxMessageBytes`. */
const BUFFERED_UPLOADS = 16;
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
 * The embedded CoAP server (node-coap) in front of the `Ingress`: listens on UDP, screens datagrams
 * before node-coap, deduplicates retransmissions and turns each new POST/PUT into an `Exchange`.
 *
 * Contract:
 * - A retransmission (same peer, Message ID and token, same payload) of a request still held is ignored
 *   (node-coap ACKs it again after `piggybackMs`); of one already answered, gets the same answer again
 *   (for EXCHANGE_LIFETIME, at most 20,000 answers remembered). node-coap alone would hand it over twice.
 *   The same peer, Message ID and token with another payload (a device that rebooted) is a new request.
 * - Answered before node-coap sees them (an ACK with the request's Message ID and token, to the sender):
 *   other methods and Observe (4.05), block-wise uploads as `Block1Uploads` says (4.00/4.02/4.08/4.13/5.03).
 *   A datagram that is not CoAP is ignored; one node-coap fails on is answered 5.00.
 * - Refused at once, never held: a payload over `maxMessageBytes` (4.13 with Size1), over 32 path
 *   segments or a control character in one (4.00), the server full or stopping (5.03 + Max-Age).
 * - Each exchange gets a message id of its own: a random per-server nonce and a counter.
 * - Every response carries an error listener: a separate response the device never ACKs does not crash the process.
 *   Once `close` began, nothing more is sent (node-coap's timers may still fire).
 */
export class EmbeddedServer {
  private server: Server | undefined;
  private readonly answers = new Map<string, { readonly answer: Answer; readonly at: number; readonly digest: string }>();
  private readonly held = new Map<string, Exchange>();
  /** Responses node-coap made for retransmissions of held requests: never written, their empty-ACK timers cleared once the original is answered. */
  private readonly duplicates = new Map<string, OutgoingMessage[]>();
  private boundPort = 0;
  private socket: Socket | undefined;
  private readonly uploads: Block1Uploads;
  /** From `stopIntake`: new requests are answered 5.03. */
  private closing = false;
  /** From `close`: nothing is sent any more. */
  private stopped = false;
  private readonly nonce = randomBytes(6).toString('base64url');
  private counter = 0;

  constructor(
    private readonly settings: ServerSettings,
    private readonly ingress: Ingress,
  ) {
    this.uploads = new Block1Uploads({
      maxMessageBytes: settings.maxMessageBytes,
      maxBufferedBytes: BUFFERED_UPLOADS * settings.maxMessageBytes,
      perAddress: MAX_UPLOADS_PER_ADDRESS,
      lifetimeMs: EXCHANGE_LIFETIME_MS,
      retryAfterSeconds: settings.retryAfterSeconds,
    });
  }

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
    // once closed, node-coap's leftover timers (empty ACKs, retransmissions) send nothing: a send on a closed socket throws
    const send = socket.send.bind(socket) as (...args: unknown[]) => void;
    socket.send = ((...args: unknown[]) => {
      if (!this.stopped) send(...args);
    }) as Socket['send'];
    // node-coap answers a datagram it fails on with 5.00 to 127.0.0.1:<port>, a fresh Message ID and no token
    server._sendError = (payload, rsinfo, packet) => {
      if (packet === undefined || packet.ack === true || packet.reset === true || packet.code?.startsWith('0.') !== true) return;
      const head: DatagramHead = { type: packet.confirmable === true ? 0 : 1, code: 0, messageId: packet.messageId ?? 0, token: packet.token ?? Buffer.alloc(0), observe: false, block1: undefined, payloadLength: 0 };
      this.reply(head, rsinfo, { code: '5.00', payload: clipErrorText(payload.toString()) });
    };
    // screen datagrams before node-coap sees them
    const handle = server.handleRequest();
    socket.removeAllListeners('message');
    socket.on('message', (datagram: Buffer, rinfo: AddressInfo) => this.onDatagram(datagram, rinfo, handle));
    this.socket = socket;
    this.server = server;
  }

  /** From now on new requests are answered 5.03 + Max-Age (the transport is closing); retransmissions of answered ones still get their answer. */
  stopIntake(): void {
    this.closing = true;
  }

  /** Answers every request still held 5.03 + Max-Age, stops sending and listening. */
  close(): void {
    this.closing = true;
    for (const exchange of [...this.held.values()]) exchange.answer({ code: '5.03', payload: 'the server is stopping; retry later', maxAgeSeconds: this.settings.retryAfterSeconds });
    for (const responses of this.duplicates.values()) for (const response of responses) stopAckTimer(response);
    this.duplicates.clear();
    this.stopped = true;
    this.server?.close();
    this.server = undefined;
    this.socket = undefined;
    this.held.clear();
    this.uploads.reset();
  }

  private onDatagram(datagram: Buffer, rinfo: AddressInfo, handle: (datagram: Buffer, rinfo: AddressInfo) => void): void {
    const head = readHead(datagram);
    if (head === undefined) return; // not a CoAP message: ignored (RFC 7252 §4.2, §4.3)
    if (head.code === 0 || head.code >> 5 !== 0 || head.type > 1) {
      handle(datagram, rinfo); // empty messages (ACK/RST of separate responses), responses: node-coap's
      return;
    }
    if (head.code !== 2 && head.code !== 3) return this.reply(head, rinfo, { code: '4.05', payload: 'this server takes POST and PUT' });
    if (head.observe) return this.reply(head, rinfo, { code: '4.05', payload: 'this server takes POST and PUT; it has no observable resources' });
    if (head.block1 !== undefined || this.answers.size > 0) {
      const key = exchangeKey(`${rinfo.address}:${rinfo.port}`, head.messageId, head.token);
      const remembered = this.answers.get(key);
      if (remembered !== undefined && head.block1 === undefined && remembered.digest !== digest(datagram.subarray(datagram.length - head.payloadLength))) {
        // the same peer, Message ID and token, another payload: a device that rebooted, not a retransmission
        this.answers.delete(key);
        this.server?._lru.delete(`${rinfo.address}:${rinfo.port}/${head.messageId}${head.token.toString('hex')}`);
      } else if (remembered !== undefined || this.held.has(key)) {
        handle(datagram, rinfo); // a retransmission: answered as before, or ignored while held
        return;
      }
      const refusal = this.uploads.check(head, datagram.length, rinfo.address, rinfo.port);
      if (refusal !== undefined) return this.reply(head, rinfo, refusal);
    }
    handle(datagram, rinfo);
  }

  /** Answers a request node-coap never saw. */
  private reply(head: DatagramHead, to: AddressInfo, reply: Reply): void {
    this.socket?.send(encodeReply(head, reply), to.port, to.address);
  }

  private onRequest(request: IncomingMessage, response: OutgoingMessage): void {
    response.on('error', () => undefined); // a separate response never ACKed: the device is gone, nothing to do
    const packet = request._packet;
    const token = packet.token ?? Buffer.alloc(0);
    const peer = `${request.rsinfo.address}:${request.rsinfo.port}`;
    const key = exchangeKey(peer, packet.messageId ?? 0, token);
    const payload = request.payload ?? Buffer.alloc(0);
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
    if (this.closing) {
      writeAnswer(response, { code: '5.03', payload: 'the server is stopping; retry later', maxAgeSeconds: this.settings.retryAfterSeconds });
      return;
    }
    const refusal = this.screen(request);
    if (refusal !== undefined) {
      this.remember(key, refusal, payload);
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
      this.remember(key, answer, payload);
      writeAnswer(response, answer);
      return;
    }
    if (this.ingress.full) {
      writeAnswer(response, { code: '5.03', payload: 'the server holds as many requests as it may; retry later', maxAgeSeconds: this.settings.retryAfterSeconds });
      return;
    }
    this.counter += 1;
    const inbound: InboundRequest = { id: `coap:${this.nonce}:${this.counter}`, peer, messageId: packet.messageId ?? 0, token, path, params: {}, queries, contentFormat, idOption, headersOption, payload };
    const exchange = new Exchange(key, inbound, response, (done, answer) => {
      this.held.delete(done.key);
      for (const duplicate of this.duplicates.get(done.key) ?? []) stopAckTimer(duplicate);
      this.duplicates.delete(done.key);
      this.remember(done.key, answer, done.request.payload);
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
    if (size > this.settings.maxMessageBytes) return { code: '4.13', payload: clipErrorText(`the payload is ${size} bytes; at most ${this.settings.maxMessageBytes}`), size1: this.settings.maxMessageBytes };
    return undefined;
  }

  private remember(key: string, answer: Answer, payload: Buffer): void {
    this.answers.delete(key);
    this.answers.set(key, { answer, at: Date.now(), digest: digest(payload) });
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

/** `peer/messageId/token`: what a retransmission of the same request repeats. */
function exchangeKey(peer: string, messageId: number, token: Buffer): string {
  return `${peer}/${messageId}/${token.toString('hex')}`;
}

/** A request payload's digest: a retransmission repeats it, a rebooted device's new request (most likely) does not. */
function digest(payload: Buffer): string {
  return createHash('sha1').update(payload).digest('base64');
}
