import { randomUUID } from 'node:crypto';
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import {
  consoleLogger,
  EndpointError,
  integerOption,
  NotConnectedError,
  PendingReplies,
  redeliveryDecision,
  withHeaders,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type DepthReportingTransport,
  type EndpointDepth,
  type ObservableTransport,
  type RequestOptions,
  type Transport,
} from '../core/index.ts';
import { validateMemoryEndpointOptions } from './memory-options.ts';
import { MemoryQueue, redelivered, type QueueConsumer } from './memory-queue.ts';
import { UnsettledList, UnsettledNode } from './unsettled-list.ts';

export interface MemoryTransportOptions {
  /** Messages a channel (each subscriber's queue, for pub-sub) holds before producers wait (default 1000). */
  readonly capacity?: number;
  /** Deliveries of one message before it moves to `<name>.dead` (default 5). */
  readonly maxDeliveries?: number;
  /** Where the transport warns (a channel full with nobody consuming it); default: stderr. */
  readonly logger?: Logger;
}

type ChannelType = 'queue' | 'pubsub';

interface SettlementTarget {
  /** Forgets an unsettled delivery; false if it was no longer unsettled (handed back on unsubscribe). */
  settle(node: UnsettledNode): boolean;
  redeliver(message: Message, seq: number, reason: Error): void;
  dispatch(): void;
}

/** Settlement of one memory delivery (a class, not closures: it is allocated per message). */
class MemorySettle extends UnsettledNode {
  constructor(
    message: Message,
    seq: number,
    private readonly target: SettlementTarget,
  ) {
    super(message, seq);
  }

  protected onAck(): void {
    if (this.target.settle(this)) this.target.dispatch();
  }

  protected onNack(reason: Error): void {
    if (!this.target.settle(this)) return;
    this.target.redeliver(this.message, this.seq, reason);
    this.target.dispatch();
  }
}

interface Channel {
  readonly type: ChannelType;
  /** Point-to-point: the one queue. Pub-sub: one queue per subscriber. */
  readonly queues: Set<MemoryQueue>;
  readonly shared: MemoryQueue | undefined;
}

/**
 * In-process channels: `memory:<name>` is point-to-point (competing consumers, one queue);
 * `memory:<name>?type=pubsub` is publish-subscribe (each subscriber gets every message published
 * while it is subscribed; with no subscriber a message goes nowhere, like a fanout exchange).
 * Options (`memoryEndpointOptionsSchema`; any other is refused with `EndpointError`): `type`,
 * `capacity` (per queue), `maxDeliveries`.
 *
 * Contract (the transport SPI): bounded everywhere — `publish` waits while a queue is full; at most
 * `prefetch` unsettled deliveries per consumer; a nacked delivery is redelivered with `attempt + 1`
 * until `maxDeliveries` (`redeliveryDecision`, whatever the reason: permanent ones are counted too,
 * as an AMQP queue does), then moved to the point-to-point channel `<name>.dead` with the reason in
 * `x-interchange-error`; deliveries unsettled when a consumer unsubscribes are redelivered (a late
 * ack of such a delivery is ignored, never applied twice); aborting `signal` only stops the intake.
 * Order: a redelivered message goes back to its original place among the queued messages, so
 * rejects in any order restore publish order (see `MemoryQueue`).
 * A queue that fills while nobody consumes it is logged once (WARN, naming the channel).
 * Publishing to a closed transport rejects with `NotConnectedError`. Nothing survives the process.
 *
 * Also an `ObservableTransport`: `observe(endpoint)` sees every message accepted for a channel
 * without consuming it (what the test kit's mocks use on channels a route consumes).
 */
export class MemoryTransport implements Transport, ObservableTransport, DepthReportingTransport {
  readonly scheme = 'memory';
  private readonly channels = new Map<string, Channel>();
  private readonly observers = new Map<string, Set<Subscriber<Message>>>();
  private readonly capacity: number;
  private readonly maxDeliveries: number;
  private readonly logger: Logger;
  private closed = false;
  private readonly intakes = new Set<() => void>();
  /** This transport's private reply channel (`interchange.replies.<id>`), consumed by itself from the first request on. */
  private replies: { readonly name: string; readonly subscription: Subscription } | undefined;
  /** Requests waiting for their reply, by correlation id. */
  private readonly pending = new PendingReplies('memory');

  constructor({ capacity = 1000, maxDeliveries = 5, logger = consoleLogger }: MemoryTransportOptions = {}) {
    this.capacity = capacity;
    this.maxDeliveries = maxDeliveries;
    this.logger = logger;
  }

  async connect(): Promise<void> {
    this.closed = false;
    this.pending.open();
  }

  /** Stops every consumer's intake (their unsettled deliveries can still be settled) and refuses publishes; requests still waiting reject with `NotConnectedError`. */
  async close(): Promise<void> {
    this.closed = true;
    this.replies?.subscription.unsubscribe();
    this.replies = undefined;
    this.pending.close();
    for (const stopIntake of this.intakes) stopIntake();
  }

  /** Messages waiting in a channel (all subscriber queues, for pub-sub). For tests and health checks. */
  depth(name: string): number {
    let total = 0;
    for (const queue of this.channels.get(name)?.queues ?? []) total += queue.depth;
    return total;
  }

  /** Every channel's depth and bound (`DepthReportingTransport`: the metrics' channel depth gauges). */
  depths(): EndpointDepth[] {
    const depths: EndpointDepth[] = [];
    for (const [name, channel] of this.channels) {
      let messages = 0;
      for (const queue of channel.queues) messages += queue.depth;
      const capacity = channel.shared?.capacity;
      depths.push({ uri: `memory:${name}`, messages, transient: true, ...(capacity === undefined ? {} : { capacityMessages: capacity, full: messages >= capacity }) });
    }
    return depths;
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    if (this.closed) throw new NotConnectedError(`memory transport is closed; cannot publish to '${endpoint.uri}'`);
    const channel = this.channel(endpoint);
    // `attempt` counts deliveries at one destination: a message redelivered upstream starts afresh here.
    const fresh = messages.some((message) => message.headers.attempt !== undefined) ? messages.map(firstAttempt) : messages;
    if (channel.type === 'queue') await (channel.shared as MemoryQueue).offer(fresh);
    else await Promise.all([...channel.queues].map((queue) => queue.offer(fresh)));
    const observers = this.observers.get(endpoint.path);
    if (observers !== undefined) for (const message of fresh) for (const observer of [...observers]) observer.next(message);
  }

  /**
   * Request-reply over a private reply channel, as AMQP's direct reply-to: publishes `message` to
   * `endpoint` with `replyTo` = this transport's reply channel (`interchange.replies.<id>`, a
   * point-to-point channel it consumes itself) and `correlationId` = the message's (else its id), and
   * resolves with the first message arriving there with that `correlationId`. The responder replies
   * with `.to('memory:{replyTo}')`, keeping `correlationId` (as on AMQP: `.to('amqp:queue/{replyTo}')`).
   *
   * Rejects with `TimeoutError` after `timeoutMs`, an `InterchangeError` `REQUEST_ABORTED` when `signal`
   * aborts, `REQUEST_IN_FLIGHT` when a request with the same correlation id is already waiting,
   * `NotConnectedError` when the transport is (or gets) closed, or the publish's error. Replies are
   * acked on arrival; one nobody waits for (late, after a timeout) is dropped.
   * @example const reply = await memory.request(parseEndpoint('memory:prices'), createMessage({ sku: 'A-1' }), { timeoutMs: 2_000 });
   */
  request(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message> {
    // closed: `pending` refuses it (NotConnectedError), closed and opened with the transport
    const correlationId = message.headers.correlationId ?? message.id;
    return this.pending.wait(endpoint.uri, message.id, correlationId, options, () => this.publish(endpoint, [withHeaders(message, { replyTo: this.replyChannel(), correlationId })]));
  }

  /** The reply channel's name, consumed from the first request on (replies acked on arrival, matched by `correlationId`). */
  private replyChannel(): string {
    if (this.replies !== undefined) return this.replies.name;
    const name = `interchange.replies.${randomUUID().slice(0, 8)}`;
    const subscription = this.consume({ uri: `memory:${name}`, scheme: 'memory', path: name, options: {} }, { prefetch: this.capacity }).subscribe((delivery) => {
      delivery.ack();
      const id = delivery.message.headers.correlationId;
      if (id !== undefined) this.pending.reply(id, delivery.message);
    });
    this.replies = { name, subscription };
    return name;
  }

  /**
   * Every message accepted for the channel from now on (its `publish` resolved), without consuming
   * it: a tap for tests. Redeliveries are not published again, so they are not seen twice.
   * Throws `EndpointError` for options the channel does not know.
   */
  observe(endpoint: Endpoint): Observable<Message> {
    validateMemoryEndpointOptions(endpoint);
    return new Observable<Message>((subscriber) => {
      let observers = this.observers.get(endpoint.path);
      if (observers === undefined) {
        observers = new Set();
        this.observers.set(endpoint.path, observers);
      }
      const watching = observers;
      watching.add(subscriber);
      return () => {
        watching.delete(subscriber);
        if (watching.size === 0 && this.observers.get(endpoint.path) === watching) this.observers.delete(endpoint.path);
      };
    });
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const channel = this.channel(endpoint);
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const queue = channel.type === 'queue' ? (channel.shared as MemoryQueue) : new MemoryQueue(endpoint.path, integerOption(endpoint, 'capacity', this.capacity), this.stalled);
      if (channel.type === 'pubsub') channel.queues.add(queue);
      const prefetch = options.prefetch ?? 100;
      const maxDeliveries = integerOption(endpoint, 'maxDeliveries', this.maxDeliveries);
      const unsettled = new UnsettledList();
      let attached = true;

      const consumer: QueueConsumer = {
        get hasRoom() {
          return unsettled.size < prefetch;
        },
        take: (message, seq) => {
          const node = new MemorySettle(message, seq, settlement);
          unsettled.add(node);
          subscriber.next(node);
        },
      };
      const settlement: SettlementTarget = {
        settle: (node) => unsettled.remove(node),
        redeliver: (message, seq, reason) => {
          if (redeliveryDecision({ attempt: message.headers.attempt ?? 1, maxDeliveries, reason }).action === 'deadLetter') {
            const dead = withHeaders(message, { 'x-interchange-error': reason.message, 'x-interchange-error-code': (reason as { code?: string }).code ?? 'REJECTED' });
            this.logger.warn(`message rejected on delivery ${message.headers.attempt ?? 1} of ${maxDeliveries}: moved to the dead-letter queue memory:${endpoint.path}.dead`, { queue: `memory:${endpoint.path}.dead`, messageId: message.id, code: dead.headers['x-interchange-error-code'], reason: reason.message });
            this.publish(this.deadChannel(endpoint), [dead]).catch(() => queue.requeue([{ message, seq }]));
          } else {
            queue.requeue([{ message: redelivered(message), seq }]);
          }
        },
        dispatch: () => queue.dispatch(),
      };

      const detach = (): void => {
        if (!attached) return;
        attached = false;
        queue.detach(consumer);
        if (channel.type === 'pubsub') {
          channel.queues.delete(queue);
          queue.discard();
        }
      };
      // Abort stops the intake only: emitted deliveries may still be settled, and unsubscribing later
      // hands back whatever is still unsettled (so the Observable does not complete here).
      const onAbort = (): void => detach();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.intakes.add(detach);
      queue.attach(consumer);
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.intakes.delete(detach);
        detach();
        queue.requeue(unsettled.drain().map((node) => ({ message: redelivered(node.message), seq: node.seq })));
      };
    });
  }

  /** A queue is full, producers wait and nobody consumes it: said once per queue. */
  private readonly stalled = (queue: MemoryQueue): void => {
    this.logger.warn(`memory channel '${queue.name}' is full and nobody consumes it: publishers wait until a consumer attaches`, { channel: queue.name, capacity: queue.capacity });
  };

  private deadChannel(endpoint: Endpoint): Endpoint {
    return { uri: `memory:${endpoint.path}.dead`, scheme: 'memory', path: `${endpoint.path}.dead`, options: {} };
  }

  /** The endpoint's channel, created on first use; `EndpointError` for options `memoryEndpointOptionsSchema` refuses. */
  private channel(endpoint: Endpoint): Channel {
    const options = validateMemoryEndpointOptions(endpoint);
    const type: ChannelType = options.type ?? 'queue';
    const existing = this.channels.get(endpoint.path);
    if (existing !== undefined) {
      if (existing.type !== type && options.type !== undefined) {
        throw new EndpointError(`memory channel '${endpoint.path}' is a ${existing.type} channel, not ${type} ('${endpoint.uri}')`);
      }
      return existing;
    }
    const shared = type === 'queue' ? new MemoryQueue(endpoint.path, integerOption(endpoint, 'capacity', this.capacity), this.stalled) : undefined;
    const channel: Channel = { type, queues: new Set(shared === undefined ? [] : [shared]), shared };
    this.channels.set(endpoint.path, channel);
    return channel;
  }
}

function firstAttempt(message: Message): Message {
  return message.headers.attempt === undefined ? message : withHeaders(message, { attempt: undefined });
}
