import type { ExchangeType } from './amqp-endpoint.ts';
import { AmqpConfigurationError } from './amqp-errors.ts';
import { queueOptions, type BindingSpec, type ExchangeSpec, type QueueSpec, type Topology } from './amqp-topology.ts';
import { bindingMatches } from './memory-broker-routing.ts';
import type { BrokerQueue } from './memory-broker-queue.ts';

interface Exchange {
  readonly spec: ExchangeSpec;
  readonly bindings: BindingSpec[];
}

/** The exchanges every RabbitMQ has. */
const PREDECLARED: readonly ExchangeSpec[] = [
  { name: 'amq.direct', type: 'direct' },
  { name: 'amq.fanout', type: 'fanout' },
  { name: 'amq.topic', type: 'topic' },
  { name: 'amq.headers', type: 'headers' },
  { name: 'amq.match', type: 'headers' },
];

const sameBinding = (a: BindingSpec, b: BindingSpec): boolean =>
  a.queue === b.queue && a.toExchange === b.toExchange && (a.routingKey ?? '') === (b.routingKey ?? '') && JSON.stringify(a.arguments ?? {}) === JSON.stringify(b.arguments ?? {});

/**
 * The in-memory broker's exchanges, queues and bindings, and its routing.
 *
 * Contract (RabbitMQ's, refusals as `AmqpConfigurationError`): declaring is idempotent — an object
 * that exists is checked against the spec (another exchange type, or other queue arguments: refused,
 * as RabbitMQ's 406 PRECONDITION_FAILED), a missing one created; names starting `amq.` are reserved;
 * a binding needs its exchange and queue (or destination exchange) to exist, and never binds the
 * default exchange. Routing follows bindings per exchange type, exchange-to-exchange bindings and
 * alternate exchanges (each exchange visited once per message); the default exchange (`''`) routes to
 * the queue named by the routing key.
 */
export class BrokerTopology {
  private readonly exchanges = new Map<string, Exchange>();
  private readonly queues = new Map<string, BrokerQueue>();

  constructor(private readonly createQueue: (spec: QueueSpec) => BrokerQueue) {
    for (const spec of PREDECLARED) this.exchanges.set(spec.name, { spec, bindings: [] });
  }

  /** Declares what is missing of `topology`, in RabbitMQ's order: exchanges, queues, bindings. */
  declare(topology: Topology): void {
    for (const exchange of topology.exchanges ?? []) this.declareExchange(exchange);
    for (const queue of topology.queues ?? []) this.declareQueue(queue, true);
    for (const binding of topology.bindings ?? []) this.bind(binding);
  }

  declareExchange(spec: ExchangeSpec): void {
    const existing = this.exchanges.get(spec.name);
    if (existing !== undefined) {
      if (existing.spec.type !== spec.type) throw new AmqpConfigurationError(`exchange '${spec.name}' exists as a ${existing.spec.type} exchange, not ${spec.type} (PRECONDITION_FAILED)`);
      return;
    }
    if (spec.name === '' || spec.name.startsWith('amq.')) throw new AmqpConfigurationError(`exchange name '${spec.name}' is reserved (ACCESS_REFUSED)`);
    this.exchanges.set(spec.name, { spec, bindings: [] });
  }

  /**
   * Declares a queue, or finds it. `strict`: an existing queue must have the same arguments (a
   * topology declaration); otherwise an existing queue is taken as it is (an endpoint's passive check).
   */
  declareQueue(spec: QueueSpec, strict: boolean): BrokerQueue {
    const existing = this.queues.get(spec.name);
    if (existing !== undefined) {
      if (strict && JSON.stringify(queueOptions(existing.spec)) !== JSON.stringify(queueOptions(spec))) {
        throw new AmqpConfigurationError(`queue '${spec.name}' exists with other arguments than the topology declares (PRECONDITION_FAILED)`);
      }
      return existing;
    }
    if (spec.name.startsWith('amq.') && !spec.name.startsWith('amq.gen-')) throw new AmqpConfigurationError(`queue name '${spec.name}' is reserved (ACCESS_REFUSED)`);
    const queue = this.createQueue(spec);
    this.queues.set(spec.name, queue);
    return queue;
  }

  bind(binding: BindingSpec): void {
    const exchange = this.exchanges.get(binding.exchange);
    if (binding.exchange === '') throw new AmqpConfigurationError('the default exchange cannot be bound (ACCESS_REFUSED)');
    if (exchange === undefined) throw new AmqpConfigurationError(`cannot bind: exchange '${binding.exchange}' does not exist (NOT_FOUND)`);
    if (binding.queue !== undefined && !this.queues.has(binding.queue)) throw new AmqpConfigurationError(`cannot bind: queue '${binding.queue}' does not exist (NOT_FOUND)`);
    if (binding.toExchange !== undefined && !this.exchanges.has(binding.toExchange)) throw new AmqpConfigurationError(`cannot bind: exchange '${binding.toExchange}' does not exist (NOT_FOUND)`);
    if (!exchange.bindings.some((other) => sameBinding(other, binding))) exchange.bindings.push(binding);
  }

  /** Deletes a queue and its bindings; its messages are gone. */
  deleteQueue(name: string): void {
    const queue = this.queues.get(name);
    if (queue === undefined) return;
    this.queues.delete(name);
    queue.delete();
    for (const exchange of this.exchanges.values()) {
      const kept = exchange.bindings.filter((binding) => binding.queue !== name);
      exchange.bindings.splice(0, exchange.bindings.length, ...kept);
    }
  }

  exchangeType(name: string): ExchangeType | undefined {
    return this.exchanges.get(name)?.spec.type;
  }

  isInternal(name: string): boolean {
    return this.exchanges.get(name)?.spec.internal === true;
  }

  queue(name: string): BrokerQueue | undefined {
    return this.queues.get(name);
  }

  allQueues(): IterableIterator<BrokerQueue> {
    return this.queues.values();
  }

  /** The queues a message published to `exchange` with `routingKey` (and, for headers exchanges, `headers`) reaches. */
  route(exchange: string, routingKey: string, headers: Readonly<Record<string, unknown>> = {}): Set<BrokerQueue> {
    const reached = new Set<BrokerQueue>();
    this.routeFrom(exchange, routingKey, headers, reached, new Set());
    return reached;
  }

  private routeFrom(name: string, routingKey: string, headers: Readonly<Record<string, unknown>>, reached: Set<BrokerQueue>, visited: Set<string>): void {
    if (name === '') {
      const queue = this.queues.get(routingKey);
      if (queue !== undefined) reached.add(queue);
      return;
    }
    const exchange = this.exchanges.get(name);
    if (exchange === undefined || visited.has(name)) return;
    visited.add(name);
    const before = reached.size;
    for (const binding of exchange.bindings) {
      if (!bindingMatches(exchange.spec.type, binding.routingKey ?? '', routingKey, headers, binding.arguments)) continue;
      if (binding.queue !== undefined) {
        const queue = this.queues.get(binding.queue);
        if (queue !== undefined) reached.add(queue);
      }
      if (binding.toExchange !== undefined) this.routeFrom(binding.toExchange, routingKey, headers, reached, visited);
    }
    if (reached.size === before && exchange.spec.alternateExchange !== undefined) this.routeFrom(exchange.spec.alternateExchange, routingKey, headers, reached, visited);
  }
}
