import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type * as coapModule from 'coap';
import type { Agent, IncomingMessage, ObserveReadStream, OutgoingMessage } from 'coap';
import { TimeoutError } from '../../src/core/index.ts';
import type { EncodedRequest } from './coap-codec.ts';
import { CoapResponseError } from './coap-errors.ts';

type Coap = typeof coapModule;

/** Where a request goes. */
export interface Destination {
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/**
 * The transport's CoAP client: node-coap agents on sockets of its own (one for IPv4, one for IPv6
 * when needed), so closing one transport never touches another's exchanges (node-coap's global agent
 * is shared by the whole process and closes itself when idle).
 */
export class CoapClient {
  private coap: Coap | undefined;
  private readonly agents = new Map<'udp4' | 'udp6', { readonly agent: Agent; readonly socket: Socket }>();
  /** Per destination (`host:port`): requests in flight and those waiting for a slot. */
  private readonly lanes = new Map<string, { active: number; readonly waiting: Array<() => void> }>();

  /** `concurrency`: confirmable requests in flight at once to one destination (RFC 7252 NSTART; node-coap enforces none). */
  constructor(private readonly concurrency = 8) {}

  async open(): Promise<void> {
    this.coap ??= await import('coap');
  }

  /**
   * Sends one confirmable request and resolves on a 2.xx response; rejects with `CoapResponseError`
   * on 4.xx/5.xx (Max-Age kept), `TimeoutError` after `timeoutMs` from when it was sent (the request is
   * abandoned: the server may still have taken it). At most `concurrency` are in flight to one
   * destination; the rest wait their turn, in order.
   */
  async send(to: Destination, method: 'POST' | 'PUT', encoded: EncodedRequest, timeoutMs: number): Promise<void> {
    const key = `${to.host}|${to.port}`;
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { active: 0, waiting: [] };
      this.lanes.set(key, lane);
    }
    if (lane.active >= this.concurrency) await new Promise<void>((resolve) => (lane as { waiting: Array<() => void> }).waiting.push(resolve));
    else lane.active += 1;
    try {
      await this.sendNow(to, method, encoded, timeoutMs);
    } finally {
      const next = lane.waiting.shift();
      if (next !== undefined) next(); // the slot passes on
      else {
        lane.active -= 1;
        if (lane.active === 0) this.lanes.delete(key);
      }
    }
  }

  private sendNow(to: Destination, method: 'POST' | 'PUT', encoded: EncodedRequest, timeoutMs: number): Promise<void> {
    const agent = this.agentFor(to.host);
    return new Promise<void>((resolve, reject) => {
      const request: OutgoingMessage = agent.request({ hostname: to.host, port: to.port, method, pathname: `/${to.path}`, confirmable: true, agent });
      for (const [name, value] of Object.entries(encoded.options)) request.setOption(name, value);
      const timer = setTimeout(() => {
        agent.abort(request);
        reject(new TimeoutError(`coap: ${method} coap://${hostText(to.host)}:${to.port}/${to.path} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      request.on('response', (response: IncomingMessage) => {
        clearTimeout(timer);
        if (response.code.startsWith('2.')) resolve();
        else reject(responseError(response, `${method} coap://${hostText(to.host)}:${to.port}/${to.path}`));
      });
      request.on('error', (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
      request.end(encoded.payload);
    });
  }

  /** Registers as an observer (GET + Observe 0); the stream emits each notification's payload. */
  observe(to: Destination): Promise<ObserveReadStream> {
    const agent = this.agentFor(to.host);
    return new Promise<ObserveReadStream>((resolve, reject) => {
      const request: OutgoingMessage = agent.request({ hostname: to.host, port: to.port, method: 'GET', pathname: `/${to.path}`, observe: true, confirmable: true, agent });
      request.on('response', (response: IncomingMessage) => {
        if (response.code.startsWith('2.') && 'close' in response) resolve(response as ObserveReadStream);
        else reject(responseError(response, `observe coap://${hostText(to.host)}:${to.port}/${to.path}`));
      });
      request.on('error', (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
      request.on('timeout', (error: unknown) => reject(new TimeoutError(`coap: observe coap://${hostText(to.host)}:${to.port}/${to.path}: ${String(error)}`)));
      request.end();
    });
  }

  close(): void {
    for (const { agent, socket } of this.agents.values()) {
      agent.close();
      socket.close();
    }
    this.agents.clear();
  }

  private agentFor(host: string): Agent {
    const coap = this.coap;
    if (coap === undefined) throw new Error('coap client used before open()');
    const type = isIPv6(host) ? 'udp6' : 'udp4';
    let entry = this.agents.get(type);
    if (entry === undefined) {
      const socket = createSocket(type);
      socket.on('error', () => undefined); // a send failure fails its request (node-coap reports it there)
      const agent = new coap.Agent({ socket });
      agent.on('error', () => undefined);
      entry = { agent, socket };
      this.agents.set(type, entry);
    }
    return entry.agent;
  }
}

function responseError(response: IncomingMessage, what: string): CoapResponseError {
  const maxAge = response.headers['Max-Age'];
  const text = response.payload.length > 0 ? `: ${response.payload.toString().slice(0, 200)}` : '';
  return new CoapResponseError(response.code, `coap: ${what} answered ${response.code}${text}`, typeof maxAge === 'number' ? maxAge : undefined);
}

function hostText(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}
