import { randomUUID } from 'node:crypto';
import type { Headers, Message, StepDefinition } from '../../src/core/index.ts';
import type { GaveUp, ObservedRoute, RouteObserver, RouteProbe } from '../../src/runtime/route-observer.ts';
import { ValidationErrorsHeader } from '../../src/schema/validation-header.ts';
import type { ClassifiedField } from '../../src/security/classification.ts';
import { indexedClassification } from '../../src/security/classification-index.ts';

/** What a replay ended with: how the route's execution ended, `sent` to a chosen endpoint, or why it did not happen. */
export type ReplayOutcome = 'completed' | 'filtered' | 'dead-lettered' | 'discarded' | 'rejected' | 'sent' | 'timeout' | 'failed';

/** One replay of a stored dead letter. `outcome` is updated when a replay that timed out ends after all. */
export interface ReplayRecord {
  /** Epoch ms. */
  readonly at: number;
  outcome: ReplayOutcome;
  /** `route:<id>` (its source, the default) or the endpoint URI it was sent to. */
  readonly target: string;
  /** Why a replay `failed` (route stopped, endpoint refused…). */
  error?: string;
}

/** One message a route gave up on, as the console keeps it. */
export interface DeadLetterEntry {
  /** The store's id (a UUID): what the API names it by. */
  readonly id: string;
  readonly route: string;
  readonly outcome: GaveUp['outcome'];
  /** Epoch ms. */
  readonly at: number;
  readonly step: string;
  readonly stepKind: string;
  readonly code: string;
  /** The step's own error text. */
  readonly error: string;
  readonly reason?: string;
  /** `file:line` of the failing step's declaration. */
  readonly declaredAt: string;
  /** The dead-letter destination (dead-lettered ones only). */
  readonly uri?: string;
  readonly messageId: string;
  /** The dead letter's headers (failure in `x-interchange-*`), else the failed message's. */
  readonly headers: Headers;
  /** The body as it failed (not copied: bodies are read-only). */
  readonly body: unknown;
  /** What was dead-lettered (or the failed message, when nothing was): what a replay starts from. */
  readonly message: Message;
  /** The parsed `x-interchange-validation-errors` header, when the message failed validation. */
  readonly validationErrors?: unknown;
  /**
   * The classified fields the console redacts in its views (`x-classification`): those of the
   * contract the message names (`schema` header) and of every contract the route validates against
   * (a message that failed validation names none yet). Empty when there are none.
   */
  readonly classified?: readonly ClassifiedField[];
  readonly replays: ReplayRecord[];
}

export interface DeadLetterStoreOptions {
  /** The most recent entries kept per route (default 200); older ones are forgotten. */
  readonly perRoute?: number;
}

/**
 * The console's dead-letter list: a `RouteObserver` keeping, per route, the most recent messages the
 * route dead-lettered, discarded or rejected (a ring of `perRoute`), bodies included, in process
 * memory — what `interchange run --http` lists, shows and replays. It sees a route from that route's
 * next start: register it (`integration.observe(store)`) before `integration.start()`.
 *
 * Memory: up to `perRoute` messages per route, whatever their size. The broker's dead-letter queue
 * stays the durable record; this is a window onto its recent end.
 * @example const store = new DeadLetterStore({ perRoute: 50 }); integration.observe(store); await integration.start();
 */
export class DeadLetterStore implements RouteObserver {
  private readonly perRoute: number;
  private readonly byRoute = new Map<string, DeadLetterEntry[]>();
  private readonly byId = new Map<string, DeadLetterEntry>();
  /** Per route: the classified fields of the contracts its steps name (`.validate()`, `.to(uri, { contract })`). */
  private readonly routeClassified = new Map<string, readonly ClassifiedField[]>();

  constructor({ perRoute = 200 }: DeadLetterStoreOptions = {}) {
    if (!Number.isInteger(perRoute) || perRoute <= 0) throw new RangeError(`perRoute must be a positive integer, got ${perRoute}`);
    this.perRoute = perRoute;
  }

  attach(route: ObservedRoute): RouteProbe {
    const contracts = new Set<string>();
    const collect = (steps: readonly StepDefinition[]): void => {
      for (const step of steps) {
        if (step.contract !== undefined) contracts.add(step.contract);
        for (const branch of step.branches) collect(branch);
      }
    };
    collect(route.definition.steps);
    this.routeClassified.set(route.id, [...contracts].flatMap((contract) => indexedClassification(contract)));
    return { gaveUp: (event) => this.add(event) };
  }

  /** Keeps one message a route gave up on (what its probe is told); returns the entry. */
  add(event: GaveUp): DeadLetterEntry {
    const message = event.deadLetter ?? event.message;
    const validation = message.headers[ValidationErrorsHeader];
    const entry: DeadLetterEntry = {
      id: randomUUID(),
      route: event.routeId,
      outcome: event.outcome,
      at: event.at,
      step: event.step.id,
      stepKind: event.step.kind,
      code: event.error.code,
      error: event.error.original.message,
      ...(event.reason === undefined ? {} : { reason: event.reason }),
      declaredAt: event.error.declaredAt,
      ...(event.uri === undefined ? {} : { uri: event.uri }),
      messageId: message.id,
      headers: message.headers,
      body: message.body,
      message,
      ...(typeof validation === 'string' ? { validationErrors: parseJson(validation) } : {}),
      classified: [...indexedClassification(message.headers.schema), ...(this.routeClassified.get(event.routeId) ?? [])],
      replays: [],
    };
    let ring = this.byRoute.get(entry.route);
    if (ring === undefined) {
      ring = [];
      this.byRoute.set(entry.route, ring);
    }
    ring.push(entry);
    this.byId.set(entry.id, entry);
    while (ring.length > this.perRoute) {
      const forgotten = ring.shift();
      if (forgotten !== undefined) this.byId.delete(forgotten.id);
    }
    return entry;
  }

  /** The most recent entries first, of one route or all, at most `limit` (default all). */
  list({ route, limit = Number.POSITIVE_INFINITY }: { readonly route?: string | undefined; readonly limit?: number } = {}): DeadLetterEntry[] {
    const rings = route === undefined ? [...this.byRoute.values()] : [this.byRoute.get(route) ?? []];
    // newest first within a ring, then a stable sort by time across rings
    const entries = rings.flatMap((ring) => [...ring].reverse()).sort((a, b) => b.at - a.at);
    return entries.slice(0, Math.max(0, limit));
  }

  get(id: string): DeadLetterEntry | undefined {
    return this.byId.get(id);
  }

  /** How many entries are kept, in all routes. */
  get size(): number {
    return this.byId.size;
  }

  /** Forgets every entry (of one route, or all). */
  clear(route?: string): void {
    for (const [id, entry] of this.byId) if (route === undefined || entry.route === route) this.byId.delete(id);
    if (route === undefined) this.byRoute.clear();
    else this.byRoute.delete(route);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
