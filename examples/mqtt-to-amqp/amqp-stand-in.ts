import { Observable } from 'rxjs';
import { EndpointError, InterchangeError, type Delivery, type Endpoint, type Message, type Transport } from '../../facade/index.ts';
import type { Topology } from '../../adapters/amqp/index.ts';

export interface AmqpStandInOptions {
  /** Messages a queue keeps; beyond, the oldest is dropped and counted (RabbitMQ's `x-max-length` with `drop-head`). Default 10,000. */
  readonly maxLength?: number;
}

interface StandInQueue {
  readonly messages: Message[];
  dropped: number;
}

/**
 * An in-process stand-in for RabbitMQ, so the flagship runs with nothing installed: the `amqp:`
 * scheme over the same `Topology` data the real adapter declares. `publish` routes like the broker
 * does — topic (`*`, `#`), direct and fanout exchanges to their bound queues, `amqp:queue/<name>`
 * straight to a queue — and resolves at once ("confirmed"); a message no binding takes is refused
 * with `UNROUTABLE`, as the real adapter's mandatory publishes are. Queues are bounded (the oldest
 * dropped and counted). It only receives: read the queues with `queue(name)`; `consume` fails, as
 * nothing in the flow reads its own output. Nothing is persistent and nothing leaves the process.
 * @example new AmqpStandIn(flowTopology(flowNames())).queue('telemetry.alerts')
 */
export class AmqpStandIn implements Transport {
  readonly scheme = 'amqp';
  private readonly queues = new Map<string, StandInQueue>();
  private readonly maxLength: number;

  constructor(
    private readonly topology: Topology,
    { maxLength = 10_000 }: AmqpStandInOptions = {},
  ) {
    this.maxLength = maxLength;
    for (const queue of topology.queues ?? []) this.queues.set(queue.name, { messages: [], dropped: 0 });
  }

  connect(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The messages a queue holds now, oldest first (an empty list for a queue the topology lacks). */
  queue(name: string): readonly Message[] {
    return this.queues.get(name)?.messages ?? [];
  }

  /** Message counts per queue, and how many each dropped for being full. */
  depths(): Record<string, { readonly messages: number; readonly dropped: number }> {
    return Object.fromEntries([...this.queues].map(([name, queue]) => [name, { messages: queue.messages.length, dropped: queue.dropped }]));
  }

  publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    try {
      const targets = this.route(endpoint);
      for (const name of targets) {
        const queue = this.queues.get(name) ?? { messages: [], dropped: 0 };
        this.queues.set(name, queue);
        queue.messages.push(...messages);
        const excess = queue.messages.length - this.maxLength;
        if (excess > 0) {
          queue.messages.splice(0, excess);
          queue.dropped += excess;
        }
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  consume(endpoint: Endpoint): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      subscriber.error(new EndpointError(`'${endpoint.uri}': the in-memory RabbitMQ stand-in only receives; set AMQP_URL to consume from RabbitMQ`));
    });
  }

  /** The queues a publish to `endpoint` reaches; throws when none does. */
  private route(endpoint: Endpoint): string[] {
    const slash = endpoint.path.indexOf('/');
    const kind = endpoint.path.slice(0, slash);
    const name = endpoint.path.slice(slash + 1);
    const routingKey = endpoint.options.routingKey ?? '';
    if (kind === 'queue') return [name];
    if (kind !== 'exchange') throw new EndpointError(`'${endpoint.uri}': expected amqp:queue/<name> or amqp:exchange/<name>`);
    const exchange = this.topology.exchanges?.find((candidate) => candidate.name === name);
    if (exchange === undefined) throw new InterchangeError('NOT_FOUND', `the stand-in has no exchange '${name}' (declare it in the flow's topology)`);
    const targets = (this.topology.bindings ?? [])
      .filter((binding) => binding.exchange === name && binding.queue !== undefined && bindingMatches(exchange.type, binding.routingKey ?? '', routingKey))
      .map((binding) => binding.queue as string);
    if (targets.length === 0) throw new InterchangeError('UNROUTABLE', `no queue is bound to exchange '${name}' for routing key '${routingKey}'`);
    return [...new Set(targets)];
  }
}

/** Whether a binding key takes a routing key, per exchange type (topic: `*` one word, `#` zero or more). */
export function bindingMatches(type: 'direct' | 'topic' | 'fanout' | 'headers', bindingKey: string, routingKey: string): boolean {
  if (type === 'fanout') return true;
  if (type === 'direct') return bindingKey === routingKey;
  if (type === 'headers') return false;
  return topicMatches(bindingKey.split('.'), routingKey.split('.'));
}

function topicMatches(pattern: readonly string[], words: readonly string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let skip = 0; skip <= words.length; skip += 1) if (topicMatches(rest, words.slice(skip))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && topicMatches(rest, words.slice(1));
}
