import type { Subscriber } from 'rxjs';
import { clipErrorText, isPermanentFailure, type Delivery, type Logger } from '../../src/core/index.ts';
import { decodeRequest, type InboundPolicy, type InboundRequest } from './coap-codec.ts';
import { CoapDecodeError } from './coap-errors.ts';
import { CoapDelivery, type Exchange, type ExchangeOwner } from './coap-exchange.ts';
import type { PathPattern } from './coap-endpoint.ts';

export interface IngressSettings {
  readonly capacity: number;
  readonly holdMs: number;
  readonly maxDeliveries: number;
  readonly retryAfterSeconds: number;
  readonly log: Logger;
}

/** One subscription to a `coap:<path>` endpoint. */
export class IngressConsumer {
  /** Emitted to this consumer and not settled yet. */
  readonly holding = new Set<Exchange>();
  intakeOpen = true;

  constructor(
    readonly resource: Resource,
    readonly policy: InboundPolicy,
    readonly prefetch: number,
    readonly subscriber: Subscriber<Delivery>,
  ) {}

  get hasRoom(): boolean {
    return this.intakeOpen && this.holding.size < this.prefetch;
  }
}

/** The consumers of one path pattern and the requests waiting for them (FIFO; handed-back ones first). */
class Resource {
  readonly consumers: IngressConsumer[] = [];
  readonly queue: Exchange[] = [];
  private next = 0;

  constructor(readonly pattern: PathPattern) {}

  /** A consumer with room, round robin (competing consumers). */
  pick(): IngressConsumer | undefined {
    for (let tried = 0; tried < this.consumers.length; tried += 1) {
      const consumer = this.consumers[(this.next + tried) % this.consumers.length] as IngressConsumer;
      if (consumer.hasRoom) {
        this.next = (this.next + tried + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }
}

/**
 * The embedded server's intake: holds each accepted request (bounded by `capacity`, all paths
 * together) until a consumer of a matching pattern takes it, and answers the device only once the
 * delivery settled.
 *
 * Contract:
 * - A request goes to the resource whose pattern matches its path (an exact path before a pattern,
 *   else the first subscribed); its consumers compete, each with at most `prefetch` unsettled.
 * - No matching consumer: the request waits up to `holdMs` for one (a route starting), then is answered
 *   5.03 + Max-Age when a consumer of that path was seen before (it will be back), else 4.04.
 * - ack → 2.04 Changed (also when the route's dead-letter channel took it: the message is kept); nack,
 *   permanent → 4.00 with the reason; transient → given again at once (`attempt` + 1) up to
 *   `maxDeliveries` deliveries, then 5.03 + Max-Age `retryAfterSeconds` (the device retries later).
 * - Unsubscribe hands the consumer's unsettled requests back (first in line, `attempt` + 1 when given
 *   again); their late settlements are ignored. `close` answers every held request 5.03 + Max-Age.
 */
export class Ingress implements ExchangeOwner {
  private readonly resources = new Map<string, Resource>();
  private unrouted: Exchange[] = [];
  /** Patterns ever consumed: a request matching one gets 5.03 (come back), not 4.04, when nobody takes it. */
  private readonly known = new Map<string, PathPattern>();
  /** Requests held (waiting or in a route), for `capacity`. */
  held = 0;

  constructor(private readonly settings: IngressSettings) {}

  /** Whether another request can be held. */
  get full(): boolean {
    return this.held >= this.settings.capacity;
  }

  /** Takes an accepted request (the caller checked `full`). */
  accept(exchange: Exchange): void {
    this.held += 1;
    const resource = this.resourceFor(exchange.request.path);
    if (resource === undefined) {
      this.hold(exchange);
      return;
    }
    resource.queue.push(exchange);
    this.pump(resource);
  }

  subscribe(pattern: PathPattern, policy: InboundPolicy, prefetch: number, subscriber: Subscriber<Delivery>): IngressConsumer {
    let resource = this.resources.get(pattern.source);
    if (resource === undefined) {
      resource = new Resource(pattern);
      this.resources.set(pattern.source, resource);
      this.known.set(pattern.source, pattern);
      const waiting = this.unrouted;
      this.unrouted = [];
      for (const exchange of waiting) {
        if (this.resourceFor(exchange.request.path) === resource) {
          if (exchange.holdTimer !== undefined) clearTimeout(exchange.holdTimer);
          exchange.holdTimer = undefined;
          resource.queue.push(exchange);
        } else this.unrouted.push(exchange);
      }
    }
    const consumer = new IngressConsumer(resource, policy, prefetch, subscriber);
    resource.consumers.push(consumer);
    this.pump(resource);
    return consumer;
  }

  /** Stops the consumer's intake: it gets nothing more; what it holds can still be settled. */
  stopIntake(consumer: IngressConsumer): void {
    consumer.intakeOpen = false;
    this.pump(consumer.resource);
  }

  /** Removes the consumer, handing its unsettled requests back (first in line). */
  unsubscribe(consumer: IngressConsumer): void {
    const { resource } = consumer;
    consumer.intakeOpen = false;
    const at = resource.consumers.indexOf(consumer);
    if (at === -1) return;
    resource.consumers.splice(at, 1);
    const back = [...consumer.holding].filter((exchange) => !exchange.answered);
    consumer.holding.clear();
    for (const exchange of back) exchange.owner = undefined;
    resource.queue.unshift(...back);
    if (resource.consumers.length > 0) {
      this.pump(resource);
      return;
    }
    this.resources.delete(resource.pattern.source);
    for (const exchange of resource.queue.splice(0)) {
      const other = this.resourceFor(exchange.request.path);
      if (other === undefined) this.hold(exchange);
      else {
        other.queue.push(exchange);
        this.pump(other);
      }
    }
  }

  acked(delivery: CoapDelivery): void {
    const { exchange } = delivery;
    if (!this.current(delivery)) return;
    this.release(delivery);
    exchange.answer({ code: '2.04', payload: '' });
    this.pump((delivery.consumer as IngressConsumer).resource);
  }

  nacked(delivery: CoapDelivery, reason: Error): void {
    const { exchange } = delivery;
    if (!this.current(delivery)) return;
    const consumer = delivery.consumer as IngressConsumer;
    this.release(delivery);
    if (isPermanentFailure(reason)) {
      exchange.answer({ code: '4.00', payload: clipErrorText(reason.message) });
    } else if (exchange.emissions < this.settings.maxDeliveries) {
      this.held += 1; // still held: back first in line
      consumer.resource.queue.unshift(exchange);
    } else {
      this.settings.log.warn('coap: request nacked on every delivery; answered 5.03 (the device retries)', { path: exchange.request.path.join('/'), deliveries: exchange.emissions, error: reason.message });
      exchange.answer({ code: '5.03', payload: clipErrorText(reason.message), maxAgeSeconds: this.settings.retryAfterSeconds });
    }
    this.pump(consumer.resource);
  }

  /** Answers every held request 5.03 + Max-Age (the server stops): devices retry later. */
  close(): void {
    const resources = [...this.resources.values()];
    const all = [...this.unrouted, ...resources.flatMap((resource) => [...resource.queue, ...resource.consumers.flatMap((consumer) => [...consumer.holding])])];
    for (const consumer of resources.flatMap((resource) => resource.consumers)) {
      consumer.intakeOpen = false;
      consumer.holding.clear();
    }
    this.unrouted = [];
    this.resources.clear();
    for (const exchange of all) exchange.answer({ code: '5.03', payload: 'the server is stopping; retry later', maxAgeSeconds: this.settings.retryAfterSeconds });
    this.held = 0;
  }

  private current(delivery: CoapDelivery): boolean {
    const { exchange } = delivery;
    return !exchange.answered && exchange.owner === delivery.consumer && exchange.emissions === delivery.emission;
  }

  private release(delivery: CoapDelivery): void {
    const consumer = delivery.consumer as IngressConsumer;
    consumer.holding.delete(delivery.exchange);
    delivery.exchange.owner = undefined;
    this.held -= 1;
  }

  private resourceFor(path: readonly string[]): Resource | undefined {
    let found: Resource | undefined;
    for (const resource of this.resources.values()) {
      if (resource.pattern.match(path) === undefined) continue;
      if (resource.pattern.exact) return resource;
      found ??= resource;
    }
    return found;
  }

  private hold(exchange: Exchange): void {
    this.unrouted.push(exchange);
    exchange.holdTimer = setTimeout(() => {
      exchange.holdTimer = undefined;
      const at = this.unrouted.indexOf(exchange);
      if (at === -1) return;
      this.unrouted.splice(at, 1);
      this.held -= 1;
      const seen = [...this.known.values()].some((pattern) => pattern.match(exchange.request.path) !== undefined);
      exchange.answer(
        seen
          ? { code: '5.03', payload: 'no consumer takes this path now; retry later', maxAgeSeconds: this.settings.retryAfterSeconds }
          : { code: '4.04', payload: 'no route consumes this path' },
      );
    }, this.settings.holdMs);
  }

  /** Emits waiting requests to consumers with room. */
  private pump(resource: Resource): void {
    if (this.resources.get(resource.pattern.source) !== resource) return;
    while (resource.queue.length > 0) {
      const consumer = resource.pick();
      if (consumer === undefined) return;
      const exchange = resource.queue.shift() as Exchange;
      if (exchange.answered) continue;
      this.emit(exchange, consumer);
    }
  }

  private emit(exchange: Exchange, consumer: IngressConsumer): void {
    exchange.emissions += 1;
    exchange.owner = consumer;
    consumer.holding.add(exchange);
    const request: InboundRequest = { ...exchange.request, params: consumer.resource.pattern.match(exchange.request.path) ?? {} };
    let delivery: CoapDelivery;
    try {
      delivery = new CoapDelivery(decodeRequest(request, consumer.policy, exchange.emissions), exchange, exchange.emissions, consumer, this, undefined);
    } catch (error) {
      const intakeError = error instanceof CoapDecodeError ? error : new CoapDecodeError(String(error));
      const fallback = { id: request.id, headers: { attempt: exchange.emissions }, body: request.payload };
      delivery = new CoapDelivery(fallback, exchange, exchange.emissions, consumer, this, intakeError);
    }
    consumer.subscriber.next(delivery);
  }
}

