import type { ObserveReadStream } from 'coap';
import type { Subscriber } from 'rxjs';
import { backoffDelay, createDelivery, toError, type Delivery, type Logger } from '../../src/core/index.ts';
import { decodeRequest } from './coap-codec.ts';
import type { CoapClient } from './coap-client.ts';
import type { RemoteTarget } from './coap-endpoint.ts';

/**
 * One observation (RFC 7641) of a remote resource: GET + Observe, each notification a delivery.
 *
 * Contract: at-most-once, state-transfer semantics — settling a delivery does nothing on the wire
 * (node-coap ACKs confirmable notifications itself); while `prefetch` deliveries are unsettled, newer
 * notifications are dropped (the resource's next state supersedes them: counted in `dropped`). A
 * registration the server refuses or a stream that ends is registered again with backoff
 * (`initialMs`…`maxMs`) until `stop`. The id of a notification is `<host:port>/<path>/<sequence>`.
 */
export class Observation {
  dropped = 0;
  private stream: ObserveReadStream | undefined;
  private stopped = false;
  private intakeOpen = true;
  private unsettled = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;

  constructor(
    private readonly client: CoapClient,
    private readonly target: RemoteTarget,
    private readonly prefetch: number,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly backoff: { readonly initialMs: number; readonly maxMs: number },
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.client.observe(this.target).then(
      (stream) => {
        if (this.stopped) {
          stream.close();
          return;
        }
        this.failures = 0;
        this.stream = stream;
        stream.on('data', (payload: Buffer) => this.notify(stream, payload));
        stream.on('error', () => undefined);
        stream.on('close', () => {
          if (this.stream === stream) this.stream = undefined;
          this.retry(new Error('the observation ended'));
        });
      },
      (error: unknown) => this.retry(toError(error)),
    );
  }

  stopIntake(): void {
    this.intakeOpen = false;
  }

  /** Deregisters (eagerly: the server is told) and stops re-registering. */
  stop(): void {
    this.stopped = true;
    this.intakeOpen = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.close(true);
  }

  private notify(stream: ObserveReadStream, payload: Buffer): void {
    if (!this.intakeOpen) return;
    if (this.unsettled >= this.prefetch) {
      this.dropped += 1;
      return;
    }
    this.sequence += 1;
    const contentFormat = typeof stream.headers['Content-Format'] === 'string' ? stream.headers['Content-Format'] : undefined;
    const peer = `${this.target.host}:${this.target.port}`;
    const observe = stream.headers.Observe;
    const id = `${peer}/${this.target.path}/${typeof observe === 'number' ? observe : this.sequence}-${this.sequence}`;
    const message = decodeRequest(
      { id, peer, messageId: 0, token: Buffer.alloc(0), path: this.target.path.split('/'), params: {}, queries: [], contentFormat, idOption: undefined, headersOption: undefined, payload },
      { trusted: false, query: undefined },
      1,
    );
    this.unsettled += 1;
    const settle = (): void => {
      this.unsettled -= 1;
    };
    this.subscriber.next(createDelivery(message, { ack: settle, nack: settle }));
  }

  private retry(reason: Error): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.failures, this.backoff);
    this.failures += 1;
    if (this.failures === 1 || this.failures % 10 === 0) this.log.warn('coap: observation lost; registering again', { target: `${this.target.host}:${this.target.port}/${this.target.path}`, error: reason.message, delayMs: delay });
    this.timer = setTimeout(() => this.start(), delay);
  }
}
