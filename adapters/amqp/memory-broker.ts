import { Observable, type Subscriber } from 'rxjs';
import {
  consoleLogger,
  NotConnectedError,
  PartialPublishError,
  toError,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Headers,
  type Logger,
  type Message,
  type ObservableTransport,
  type Transport,
} from '../../src/spi.ts';
import { decodeMessage, encodeMessage, type EncodeSettings } from './amqp-codec.ts';
import { resolveTarget, type AmqpTarget } from './amqp-endpoint.ts';
import { AmqpConfigurationError, PublishRejectedError, UnroutableError } from './amqp-errors.ts';
import { validateAmqpOptions } from './amqp-options.ts';
import type { Topology } from './amqp-topology.ts';
import { MemoryBrokerConsumer } from './memory-broker-consumer.ts';
import { BrokerQueue, type DeathReason, type QueueEntry, type StoredMessage } from './memory-broker-queue.ts';
import { BrokerTopology } from './memory-broker-topology.ts';

export interface AmqpMemoryBrokerOptions {
  /** Exchanges, queues and bindings, as for the real adapter (`amqpModule({ topology })`); declared at construction and again at `connect`. */
  readonly topology?: Topology;
  /**
   * Ready messages a queue whose spec sets no `maxLength` holds (default 10,000): in memory nothing is
   * unbounded. Past it the queue's `overflow` applies (default `drop-head`, RabbitMQ's).
   */
  readonly defaultMaxLength?: number;
  /** Default for endpoints without `?maxDeliveries=`: deliveries of a nacked message before it is rejected to the queue's dead-letter exchange (default 5). */
  readonly maxDeliveries?: number;
  /** Declare `amqp:queue/<name>` queues the topology lacks on first use, as the real adapter does (default true). */
  readonly declareQueues?: boolean;
  /** The largest body `publish` takes, in bytes (default 16 MiB): a bigger message fails alone with `AmqpUnencodableError`. */
  readonly maxMessageBytes?: number;
  /** Where the broker warns (a queue discarding messages, a rejected delivery); default stderr. */
  readonly logger?: Logger;
}

/** What a queue holds and has lost, for reports and tests. */
export interface QueueDepth {
  /** Ready messages. */
  readonly messages: number;
  /** Delivered, not yet settled. */
  readonly unacknowledged: number;
  readonly consumers: number;
  /** Discarded with nowhere to go: the queue full (overflow), or rejected or expired without a dead-letter exchange. */
  readonly dropped: number;
  /** Moved to the queue's dead-letter exchange. */
  readonly deadLettered: number;
}

/** One entry of RabbitMQ's `x-death` header. */
interface Death {
  readonly count: number;
  readonly reason: DeathReason;
  readonly queue: string;
  readonly time: number;
  readonly exchange: string;
  readonly 'routing-keys': readonly string[];
}

/**
 * An in-memory RabbitMQ: the `amqp:` scheme over the same endpoint URIs (`amqp:queue/<name>`,
 * `amqp:exchange/<name>?routingKey=…`, parsed and validated by the real adapter's `resolveTarget`),
 * the same `Topology` data and the same wire encoding (`encodeMessage`/`decodeMessage`), with nothing
 * installed and nothing leaving the process. For zero-setup runs and tests of `amqp:` routes.
 *
 * Contract (the transport SPI, and the real adapter's where it can be kept in memory):
 * - Routing as RabbitMQ's: direct, fanout, topic (`*`, `#`) and headers exchanges; exchange-to-exchange
 *   bindings; alternate exchanges; the default exchange for `amqp:queue/<name>`. An exchange endpoint
 *   must name a declared exchange, or declare it with `?type=`; queue endpoints declare their queue on
 *   first use (`declareQueues`). A refused declaration is an `AmqpConfigurationError`.
 * - `publish` resolves once every message is in its queues (the "confirm"). A mandatory publish (the
 *   default) that reaches no queue rejects with `UnroutableError`; one a full `reject-publish*` queue
 *   refuses rejects with `PublishRejectedError` (the other messages of the call are delivered, as on
 *   RabbitMQ). A message that cannot be encoded fails alone: `PartialPublishError`. Closed:
 *   `NotConnectedError`. Publish never waits: a full queue drops its oldest (`drop-head`) or refuses
 *   (`reject-publish`), as RabbitMQ does — `maxLength` from the spec, else `defaultMaxLength`.
 * - `consume` from a queue, or from an exchange through a private queue (exclusive, auto-delete,
 *   bound with `bindingKey`, default `#` on a topic exchange, else the routing key). See
 *   `MemoryBrokerConsumer` for prefetch, nack, requeue-in-place and dead-lettering. Dead letters go to
 *   the queue's `deadLetterExchange` (routing key `deadLetterRoutingKey`, else the message's) with
 *   `x-death` and `x-first-death-*` headers; a dead letter that would return to a queue it died in
 *   without ever being rejected is dropped (RabbitMQ's cycle rule). Dropped messages are counted.
 * - `close` stops every consumer's intake (their deliveries can still be settled) and deletes
 *   exclusive queues; `connect` declares the topology again. Messages in the other queues stay: durable
 *   or not, nothing outlives the process. No request-reply (direct reply-to), no `CC`/`BCC` routing,
 *   no priorities (queues are FIFO); TTLs expire at the head of a queue.
 * - Also an `ObservableTransport`: `observe('amqp:queue/q')` sees every message entering the queue,
 *   `observe('amqp:exchange/x')` every message the exchange accepted (routed, or not mandatory), without consuming them.
 * @example const broker = new AmqpMemoryBroker({ topology }); await broker.publish(parseEndpoint('amqp:exchange/telemetry?routingKey=reading.d-1'), [message]); broker.queueDepths()
 */
export class AmqpMemoryBroker implements Transport, ObservableTransport {
  readonly scheme = 'amqp';
  private readonly topology: BrokerTopology;
  private readonly declared: Topology;
  private readonly defaultMaxLength: number;
  private readonly maxDeliveries: number;
  private readonly declareQueues: boolean;
  private readonly maxMessageBytes: number | undefined;
  private readonly log: Logger;
  private readonly consumers = new Set<MemoryBrokerConsumer>();
  private readonly observers = new Map<string, Set<Subscriber<Message>>>();
  private readonly warnedFull = new WeakSet<BrokerQueue>();
  private closed = false;
  private serverNamed = 0;

  /** Throws `AmqpConfigurationError` on invalid options or a topology RabbitMQ would refuse. */
  constructor({ topology = {}, defaultMaxLength = 10_000, maxDeliveries = 5, declareQueues = true, maxMessageBytes, logger = consoleLogger }: AmqpMemoryBrokerOptions = {}) {
    validateAmqpOptions({ topology, maxDeliveries, declareQueues, ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }) });
    if (!Number.isInteger(defaultMaxLength) || defaultMaxLength < 0) throw new AmqpConfigurationError(`defaultMaxLength must be a whole number ≥ 0, got ${defaultMaxLength}`);
    this.declared = topology;
    this.defaultMaxLength = defaultMaxLength;
    this.maxDeliveries = maxDeliveries;
    this.declareQueues = declareQueues;
    this.maxMessageBytes = maxMessageBytes;
    this.log = logger;
    this.topology = new BrokerTopology((spec) => new BrokerQueue(spec, spec.maxLength ?? this.defaultMaxLength, this.discard));
    this.topology.declare(topology);
  }

  /** Opens the broker again after `close` and declares what is missing of the topology (the exclusive queues `close` deleted). */
  async connect(): Promise<void> {
    if (!this.closed) return;
    this.closed = false;
    this.topology.declare(this.declared);
  }

  /** Stops every consumer's intake, refuses publishes, and deletes exclusive queues (their connection is gone). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const consumer of this.consumers) consumer.stopIntake();
    for (const queue of [...this.topology.allQueues()]) if (queue.spec.exclusive === true) this.topology.deleteQueue(queue.name);
  }

  /** Every queue's depth and losses, by queue name. */
  queueDepths(): Record<string, QueueDepth> {
    return Object.fromEntries(
      [...this.topology.allQueues()].map((queue) => [queue.name, { messages: queue.depth, unacknowledged: queue.unacknowledged, consumers: queue.consumerCount, dropped: queue.dropped, deadLettered: queue.deadLettered }]),
    );
  }

  /** The ready messages of a queue, oldest first, as a consumer would get them (nothing is taken; empty for an unknown queue). */
  queue(name: string): readonly Message[] {
    const messages: Message[] = [];
    for (const entry of this.topology.queue(name)?.peek() ?? []) {
      try {
        messages.push(decodeMessage(entry.message, entry.attempt, `${name}:${entry.seq}`));
      } catch {
        // undecodable: a consumer would never see it either
      }
    }
    return messages;
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    if (this.closed) throw new NotConnectedError(`amqp (memory) broker is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveTarget(endpoint);
    this.ensure(target);
    if (this.topology.isInternal(target.exchange)) throw new AmqpConfigurationError(`'${endpoint.uri}': exchange '${target.exchange}' is internal and takes no publishes (ACCESS_REFUSED)`);
    const settings: EncodeSettings = { persistent: target.persistent, mandatory: target.mandatory, maxMessageBytes: this.maxMessageBytes, brokerHeaders: target.brokerHeaders };
    let failures: Map<number, Error> | undefined;
    let error: Error | undefined;
    const sent: number[] = [];
    for (let index = 0; index < messages.length; index += 1) {
      let stored: StoredMessage;
      try {
        const { content, properties } = encodeMessage(messages[index] as Message, settings);
        stored = { exchange: target.exchange, routingKey: target.routingKey, content, properties };
      } catch (cause) {
        (failures ??= new Map()).set(index, toError(cause));
        continue;
      }
      sent.push(index);
      const refused = this.deliver(stored, target); // every message is routed, whatever an earlier one met
      error ??= refused;
    }
    if (failures !== undefined) {
      if (error !== undefined) for (const index of sent) failures.set(index, error);
      throw new PartialPublishError(new Map([...failures].sort(([a], [b]) => a - b)), messages.length);
    }
    if (error !== undefined) throw error;
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveTarget(endpoint);
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const queue = this.queueFor(target);
      const consumer = new MemoryBrokerConsumer(queue, subscriber, { uri: endpoint.uri, prefetch: options.prefetch ?? 100, maxDeliveries: target.maxDeliveries ?? this.maxDeliveries, log: this.log });
      // Abort stops the intake only: emitted deliveries may still be settled; unsubscribing hands back the rest.
      const onAbort = (): void => consumer.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.consumers.add(consumer);
      consumer.start();
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.consumers.delete(consumer);
        consumer.dispose();
        if (queue.abandoned) this.topology.deleteQueue(queue.name);
      };
    });
  }

  observe(endpoint: Endpoint): Observable<Message> {
    return new Observable<Message>((subscriber) => {
      const target = resolveTarget(endpoint);
      const key = `${target.kind}:${target.name}`;
      let watching = this.observers.get(key);
      if (watching === undefined) this.observers.set(key, (watching = new Set()));
      const observers = watching;
      observers.add(subscriber);
      return () => {
        observers.delete(subscriber);
        if (observers.size === 0 && this.observers.get(key) === observers) this.observers.delete(key);
      };
    });
  }

  /** Routes one message into its queues; the error the publish call rejects with, if any. */
  private deliver(stored: StoredMessage, target: AmqpTarget): Error | undefined {
    const queues = this.topology.route(stored.exchange, stored.routingKey, stored.properties.headers as Readonly<Record<string, unknown>>);
    if (queues.size === 0 && target.mandatory) return new UnroutableError(stored.exchange, stored.routingKey, 'NO_ROUTE');
    let refused = false;
    for (const queue of queues) if (!this.enqueue(queue, stored)) refused = true;
    if (refused) return new PublishRejectedError(stored.exchange, stored.routingKey);
    if (target.kind === 'exchange') this.notify(`exchange:${target.name}`, stored);
    return undefined;
  }

  private enqueue(queue: BrokerQueue, stored: StoredMessage): boolean {
    if (!queue.offer(stored)) return false;
    this.notify(`queue:${queue.name}`, stored);
    return true;
  }

  private notify(key: string, stored: StoredMessage): void {
    const watching = this.observers.size === 0 ? undefined : this.observers.get(key);
    if (watching === undefined) return;
    let message: Message;
    try {
      const decoded = decodeMessage(stored, 1, String(stored.properties.messageId ?? ''));
      const { attempt: _attempt, ...headers } = decoded.headers;
      message = { ...decoded, headers: headers as Headers };
    } catch {
      return;
    }
    for (const observer of [...watching]) observer.next(message);
  }

  /** Declares what a publish to `target` needs: its queue, or its exchange when `?type=` is given. */
  private ensure(target: AmqpTarget): void {
    if (target.kind === 'queue') {
      if (this.declareQueues && !target.name.startsWith('amq.')) this.topology.declareQueue({ name: target.name }, false);
      return;
    }
    if (target.name === '') return;
    if (target.exchangeType !== undefined) this.topology.declareExchange({ name: target.name, type: target.exchangeType });
    else if (this.topology.exchangeType(target.name) === undefined) {
      throw new AmqpConfigurationError(`exchange '${target.name}' does not exist (declare it in the topology, or add ?type= to the endpoint)`);
    }
  }

  /** The queue a consumer of `target` reads: the named one, or a private one bound to the exchange. */
  private queueFor(target: AmqpTarget): BrokerQueue {
    if (target.kind === 'queue') {
      const existing = this.topology.queue(target.name);
      if (existing !== undefined) return existing;
      if (!this.declareQueues) throw new AmqpConfigurationError(`queue '${target.name}' does not exist (NOT_FOUND): declare it in the topology`);
      return this.topology.declareQueue({ name: target.name }, false);
    }
    this.ensure(target);
    const name = `amq.gen-${(this.serverNamed++).toString(36)}`;
    const queue = this.topology.declareQueue({ name, durable: false, exclusive: true, autoDelete: true }, false);
    try {
      this.topology.bind({ exchange: target.name, queue: name, routingKey: target.bindingKey ?? (this.topology.exchangeType(target.name) === 'topic' ? '#' : target.routingKey) });
    } catch (error) {
      this.topology.deleteQueue(name);
      throw error;
    }
    return queue;
  }

  /** A message leaves `queue` undelivered: to the queue's dead-letter exchange, else dropped (and counted). */
  private readonly discard = (queue: BrokerQueue, entry: QueueEntry, reason: DeathReason): void => {
    const exchange = queue.spec.deadLetterExchange;
    if (exchange !== undefined) {
      const routingKey = queue.spec.deadLetterRoutingKey ?? entry.message.routingKey;
      const { dead, deaths } = deadLetterOf(entry.message, queue.name, reason, exchange, routingKey);
      const rejectedOnce = deaths.some((death) => death.reason === 'rejected');
      const targets = [...this.topology.route(exchange, routingKey, dead.properties.headers as Readonly<Record<string, unknown>>)].filter((target) => rejectedOnce || !deaths.some((death) => death.queue === target.name));
      if (targets.length > 0) {
        queue.deadLettered += 1;
        for (const target of targets) this.enqueue(target, dead);
        return;
      }
    }
    queue.dropped += 1;
    if (reason === 'maxlen' && !this.warnedFull.has(queue)) {
      this.warnedFull.add(queue);
      this.log.warn(`amqp (memory): queue '${queue.name}' is full (${queue.maxLength} messages): discarding the oldest; counted in queueDepths()`, { queue: queue.name, maxLength: queue.maxLength });
    }
  };
}

/** The message as dead-lettered from `queue`: to `exchange` with `routingKey`, `x-death` updated, its per-message TTL removed. */
function deadLetterOf(message: StoredMessage, queue: string, reason: DeathReason, exchange: string, routingKey: string): { dead: StoredMessage; deaths: Death[] } {
  const headers: Record<string, unknown> = { ...(message.properties.headers as Record<string, unknown> | undefined) };
  const previous = Array.isArray(headers['x-death']) ? (headers['x-death'] as Death[]) : [];
  const same = previous.find((death) => death.queue === queue && death.reason === reason);
  const death: Death = { count: (same?.count ?? 0) + 1, reason, queue, time: Math.floor(Date.now() / 1000), exchange: message.exchange, 'routing-keys': [message.routingKey] };
  const deaths = [death, ...previous.filter((other) => other !== same)];
  headers['x-death'] = deaths;
  headers['x-first-death-queue'] ??= queue;
  headers['x-first-death-reason'] ??= reason;
  headers['x-first-death-exchange'] ??= message.exchange;
  const { expiration: _expiration, ...properties } = message.properties;
  return { dead: { exchange, routingKey, content: message.content, properties: { ...properties, headers } }, deaths };
}
