import { Observable } from 'rxjs';
import {
  consoleLogger,
  NotConnectedError,
  PartialPublishError,
  publishEach,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type Transport,
} from '../../src/core/index.ts';
import { CoapClient, type Destination } from './coap-client.ts';
import { encodeRequest } from './coap-codec.ts';
import { PathPattern, resolveCoapTarget } from './coap-endpoint.ts';
import { CoapConfigurationError } from './coap-errors.ts';
import { Ingress } from './coap-ingress.ts';
import { Observation } from './coap-observer.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, validateCoapOptions, type CoapTransportOptions } from './coap-options.ts';
import { EmbeddedServer } from './coap-server.ts';

/**
 * CoAP (RFC 7252) over node-coap: device ingress through an embedded server, publishing as a client,
 * observing remote resources (RFC 7641).
 *
 * - `from('coap:devices/+deviceId/telemetry')`: devices POST/PUT to the embedded server (UDP,
 *   `host`:`port`, default 127.0.0.1:5683); each request is a delivery (path parameters as headers)
 *   and the device is answered only once it settled: 2.04 after an ack, 4.00 with the reason when it
 *   was refused (permanent nack, dead-lettered), 5.03 + Max-Age when it kept failing — see `Ingress`
 *   and `EmbeddedServer` (retransmissions deduplicated, sizes bounded, bounded intake).
 * - `from('coap://host[:port]/path?observe=true')`: an observation, see `Observation` (at-most-once).
 * - `to('coap://host[:port]/path')`: one confirmable POST (or `?method=PUT`) per message, all in flight
 *   at once; resolves on 2.xx, rejects with `CoapResponseError` (4.xx permanent, 5.xx transient) or
 *   `TimeoutError` (`publishTimeoutMs`, or `?timeoutMs=`); an unencodable message fails alone
 *   (`PartialPublishError`). `to('coap:path')` posts to this transport's own server.
 * - UDP has no connection: `connect` binds the server socket (`CoapListenError` when it cannot) and
 *   nothing reconnects; devices retransmit (CON) through a restart. `close` answers every held request
 *   5.03 + Max-Age, waits for in-flight publishes, closes the sockets. `connect` after `close` listens again.
 * @example
 * createIntegration({ routes: [from('coap:devices/+deviceId/telemetry').to('amqp:queue/telemetry')], modules: [coapModule({ host: '0.0.0.0' })] });
 */
export class CoapTransport implements Transport {
  readonly scheme = 'coap';
  private readonly options: CoapTransportOptions;
  private readonly log: Logger;
  private server: EmbeddedServer | undefined;
  private ingress: Ingress | undefined;
  private client: CoapClient | undefined;
  private readonly observations = new Set<Observation>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = true;

  constructor(options: CoapTransportOptions = {}, log: Logger = consoleLogger) {
    validateCoapOptions(options);
    this.options = options;
    this.log = log;
  }

  /** The embedded server's UDP port (0 before `connect`, or without a server). */
  get port(): number {
    return this.server?.port ?? 0;
  }

  async connect(): Promise<void> {
    if (!this.closed) return;
    const client = new CoapClient(this.options.publishConcurrency ?? 8);
    await client.open();
    if (this.options.server !== false) {
      const ingress = new Ingress({
        capacity: this.options.capacity ?? 1000,
        holdMs: this.options.holdMs ?? 5000,
        maxDeliveries: this.options.maxDeliveries ?? 3,
        retryAfterSeconds: this.options.retryAfterSeconds ?? 5,
        log: this.log,
      });
      const server = new EmbeddedServer(
        {
          host: this.options.host ?? '127.0.0.1',
          port: this.options.port ?? 5683,
          piggybackMs: this.options.piggybackMs ?? 1000,
          maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
          retryAfterSeconds: this.options.retryAfterSeconds ?? 5,
          log: this.log,
        },
        ingress,
      );
      try {
        await server.listen();
      } catch (error) {
        client.close();
        throw error;
      }
      this.server = server;
      this.ingress = ingress;
    }
    this.client = client;
    this.closed = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const observation of this.observations) observation.stop();
    this.observations.clear();
    this.server?.stopIntake(); // from now on a new request is answered 5.03, never held
    this.ingress?.close();
    await Promise.allSettled([...this.inFlight]);
    // the 5.03 answers above are written synchronously; the socket closes after them (nothing is sent after)
    this.server?.close();
    this.client?.close();
    this.server = undefined;
    this.ingress = undefined;
    this.client = undefined;
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const client = this.client;
    if (this.closed || client === undefined) throw new NotConnectedError(`coap transport is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveCoapTarget(endpoint);
    let to: Destination;
    if (target.kind === 'remote') to = target;
    else {
      if (this.server === undefined) throw new CoapConfigurationError(`'${endpoint.uri}' names this transport's embedded server, and it runs none (server: false); use coap://host:port/path`);
      to = { host: loopback(this.options.host ?? '127.0.0.1'), port: this.server.port, path: target.path };
    }
    const method = target.options.method === 'PUT' ? 'PUT' : 'POST';
    const timeoutMs = target.options.timeoutMs === undefined ? (this.options.publishTimeoutMs ?? 30_000) : Number(target.options.timeoutMs);
    const pathBytes = Buffer.byteLength(to.path);
    const sending = publishEach(
      messages,
      (message) => encodeRequest(message, pathBytes),
      async (encoded) => {
        const results = await Promise.allSettled(encoded.map((request) => client.send(to, method, request, timeoutMs)));
        const failures = new Map<number, Error>();
        results.forEach((result, index) => {
          if (result.status === 'rejected') failures.set(index, result.reason instanceof Error ? result.reason : new Error(String(result.reason)));
        });
        if (failures.size === 0) return;
        if (failures.size === encoded.length && encoded.length === 1) throw failures.get(0) as Error;
        throw new PartialPublishError(failures, encoded.length);
      },
    );
    this.inFlight.add(sending);
    try {
      await sending;
    } finally {
      this.inFlight.delete(sending);
    }
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveCoapTarget(endpoint);
      if (this.closed || this.client === undefined) {
        subscriber.error(new NotConnectedError(`coap transport is closed; cannot consume '${endpoint.uri}'`));
        return undefined;
      }
      const prefetch = options.prefetch ?? 100;
      if (options.signal?.aborted === true) return undefined;
      if (target.kind === 'remote') {
        if (target.options.observe !== 'true') {
          subscriber.error(new CoapConfigurationError(`'${endpoint.uri}': consuming another server's resource means observing it: add ?observe=true (to take devices' requests, consume coap:<path> from the embedded server)`));
          return undefined;
        }
        const observation = new Observation(this.client, target, prefetch, subscriber, { initialMs: 200, maxMs: 30_000 }, this.log);
        this.observations.add(observation);
        observation.start();
        const onAbort = (): void => observation.stopIntake();
        options.signal?.addEventListener('abort', onAbort, { once: true });
        return () => {
          options.signal?.removeEventListener('abort', onAbort);
          this.observations.delete(observation);
          observation.stop();
        };
      }
      const ingress = this.ingress;
      if (ingress === undefined) {
        subscriber.error(new CoapConfigurationError(`'${endpoint.uri}' consumes the embedded server's resource, and this transport runs none (server: false)`));
        return undefined;
      }
      const query = target.options.query;
      const consumer = ingress.subscribe(new PathPattern(target.path), { trusted: target.options.headers === 'all', query: query === undefined ? undefined : new Set(query.split(',')) }, prefetch, subscriber);
      const onAbort = (): void => ingress.stopIntake(consumer);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        ingress.unsubscribe(consumer);
      };
    });
  }
}

/** Where a local publish sends to: the server's own address, or loopback when it listens on every interface. */
function loopback(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}
