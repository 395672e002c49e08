import type { ServiceIdentifier } from 'inversify';
import { Subject, asapScheduler, type Observable, type SchedulerLike } from 'rxjs';
import {
  createDelivery,
  createMessage,
  silentLogger,
  type AnyStep,
  type Delivery,
  type Headers,
  type Logger,
  type Message,
  type Step,
  type StepContext,
  type StepDefinition,
  type StepFactory,
} from '../../src/core/index.ts';

/** One call of `StepContext.failed`, as the fake context saw it. */
export interface FailedCall {
  readonly delivery: Delivery;
  readonly error: unknown;
  readonly attempt: number;
}

export interface PublishCall {
  readonly uri: string;
  readonly messages: readonly Message[];
}

export interface HarnessOptions {
  /**
   * What `failed` does after recording the call. Default: rejects the delivery (nack with the error)
   * and returns `undefined`, like the runtime's default `rejectToSource` handler.
   * Return a number to ask the step to retry after that delay (the delivery is then left unsettled).
   */
  readonly failed?: (delivery: Delivery, error: unknown, attempt: number) => number | undefined;
  /** What `publish` does after recording the call (default: resolves at once). */
  readonly publish?: (uri: string, messages: readonly Message[]) => Promise<void>;
  /** What `request` does (default: rejects: no request-reply). */
  readonly request?: (uri: string, message: Message, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }) => Promise<Message>;
  readonly scheduler?: SchedulerLike;
  readonly services?: ReadonlyMap<ServiceIdentifier<unknown>, unknown>;
  readonly log?: Logger;
}

/**
 * A fake `StepContext` that records what a step asked of the runtime: filtered deliveries, failures
 * and publishes. Patterns are built with it directly, no DI and no runtime.
 */
export class Harness {
  readonly filtered: Delivery[] = [];
  readonly failures: FailedCall[] = [];
  readonly published: PublishCall[] = [];
  /** What the step counted (`StepContext.count`), by name. */
  readonly counts = new Map<string, number>();
  /** The step's current values (`StepContext.gauge`), by name. */
  readonly gauges = new Map<string, number>();
  readonly context: StepContext;

  constructor(options: HarnessOptions = {}) {
    const { scheduler = asapScheduler, services = new Map(), log = silentLogger } = options;
    const failed =
      options.failed ??
      ((delivery: Delivery, error: unknown): undefined => {
        delivery.nack(error instanceof Error ? error : new Error(String(error)));
        return undefined;
      });
    const publish = options.publish ?? (() => Promise.resolve());
    this.context = {
      routeId: 'test-route',
      stepId: 'test-step',
      declaredAt: 'test/patterns/harness.ts:1',
      scheduler,
      log,
      publish: (uri, messages) => {
        this.published.push({ uri, messages: [...messages] });
        return publish(uri, messages);
      },
      request: (uri, message, requestOptions) => {
        if (options.request === undefined) return Promise.reject(new Error(`no request-reply in this harness (request to ${uri})`));
        return options.request(uri, message, requestOptions);
      },
      count: (name, by = 1) => {
        this.counts.set(name, (this.counts.get(name) ?? 0) + by);
      },
      gauge: (name, value) => {
        this.gauges.set(name, value);
      },
      service: <T>(id: ServiceIdentifier<T>): T => {
        if (!services.has(id)) throw new Error(`no service bound for ${String(id)}`);
        return services.get(id) as T;
      },
      filtered: (delivery) => {
        this.filtered.push(delivery);
        delivery.ack();
      },
      failed: (delivery, error, attempt) => {
        this.failures.push({ delivery, error, attempt });
        return failed(delivery, error, attempt);
      },
      compile: (steps: readonly StepDefinition[]): AnyStep => (source) => steps.reduce((stream, step) => stream.pipe(step.build(this.context)), source),
    };
  }

  /** Builds the step a pattern factory returns, against this context. */
  build<I, O>(factory: StepFactory<I, O>): Step<I, O> {
    return factory(this.context);
  }

  /** The messages published to `uri`, flattened over every publish call. */
  messagesTo(uri: string): Message[] {
    return this.published.filter((call) => call.uri === uri).flatMap((call) => call.messages);
  }
}

/**
 * A source delivery whose settlement is recorded: how often `ack`/`nack` reached the transport.
 * (The `Delivery` guards against settling twice, so `acks + nacks` is at most 1 if it works.)
 */
export class Source<T = unknown> {
  acks = 0;
  nacks = 0;
  readonly reasons: Error[] = [];
  readonly delivery: Delivery<T>;

  constructor(readonly message: Message<T>) {
    this.delivery = createDelivery(message, {
      ack: () => {
        this.acks += 1;
      },
      nack: (reason) => {
        this.nacks += 1;
        this.reasons.push(reason);
      },
    });
  }

  /** Settled once, in total. */
  get settlements(): number {
    return this.acks + this.nacks;
  }

  get outcome(): 'pending' | 'acked' | 'nacked' | 'settled more than once' {
    if (this.settlements > 1) return 'settled more than once';
    if (this.acks === 1) return 'acked';
    if (this.nacks === 1) return 'nacked';
    return 'pending';
  }
}

/** A recorded source delivery for `body` (optionally with a fixed id and headers). */
export function source<T>(body: T, init: { id?: string; headers?: Headers } = {}): Source<T> {
  return new Source(createMessage(body, init));
}

/** Recorded source deliveries, one per body, with ids `m0`, `m1`, …. */
export function sources<T>(bodies: readonly T[]): Source<T>[] {
  return bodies.map((body, index) => source(body, { id: `m${index}` }));
}

/** What a step emitted, and how its stream ended. */
export class Output<T> {
  readonly deliveries: Delivery<T>[] = [];
  completed = false;
  error: unknown = undefined;

  get messages(): Message<T>[] {
    return this.deliveries.map((delivery) => delivery.message);
  }

  get bodies(): T[] {
    return this.deliveries.map((delivery) => delivery.message.body);
  }

  /** Acks every delivery emitted so far (what the route's end does). */
  ackAll(): void {
    for (const delivery of this.deliveries) delivery.ack();
  }
}

/** Subscribes to a stream of deliveries and records everything it emits. */
export function collect<T>(stream: Observable<Delivery<T>>): Output<T> {
  const output = new Output<T>();
  stream.subscribe({
    next: (delivery) => output.deliveries.push(delivery),
    error: (error: unknown) => {
      output.error = error;
    },
    complete: () => {
      output.completed = true;
    },
  });
  return output;
}

/** A step fed by hand: push deliveries in, complete the source, read what came out. */
export function drive<I, O>(step: Step<I, O>): { readonly input: Subject<Delivery<I>>; readonly output: Output<O>; send(...items: readonly Source<I>[]): void } {
  const input = new Subject<Delivery<I>>();
  const output = collect(input.pipe(step));
  return {
    input,
    output,
    send: (...items) => {
      for (const item of items) input.next(item.delivery);
    },
  };
}

/** Lets pending promise callbacks and macrotasks run (a few turns of the event loop). */
export async function settle(turns = 3): Promise<void> {
  for (let turn = 0; turn < turns; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise with its resolve/reject exposed. */
export function deferred<T = void>(): { readonly promise: Promise<T>; resolve(value: T): void; reject(reason: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}
