import { deliveryStep, stepSpec, withHeaders, type Message, type StepDefinition, type StepFactory, type StepSpec } from '../src/core/index.ts';
import type { RouteDefinition, RouteSource } from '../src/spi.ts';

/**
 * The header holding a message's history: a JSON array of hops, oldest first. An `x-interchange-*`
 * header (Interchange's own), so it travels with the message across transports that carry our
 * headers (AMQP, MQTT 5 with `headers=all` between Interchange peers, the outbox, memory); an MQTT
 * consumer in its default `standard` mode drops it, as every `x-interchange-*` header from outside.
 */
export const MessageHistoryHeader = 'x-interchange-history';

/** One hop of a message's history: the route and step it passed, and when (epoch ms, the step's scheduler). */
export interface HistoryHop {
  readonly route: string;
  readonly step: string;
  readonly at: number;
}

export interface MessageHistoryOptions {
  /** Hops kept in the header (default 20); beyond, the oldest are dropped. At least 1. */
  readonly maxHops?: number;
}

/** A history header longer than this (characters) is not parsed: the history starts over. */
const MAX_HEADER_CHARS = 64 * 1024;

/**
 * The history a message carries (`x-interchange-history`), oldest hop first. The header is input
 * like any other: what is not a JSON array of hops (`route`, `step` strings and a finite `at`) is
 * ignored — a malformed header gives `[]`, malformed hops are left out — so a forged header can never
 * fail a message.
 * @example historyOf(message).map((hop) => `${hop.route}/${hop.step}`)
 */
export function historyOf(message: Message<unknown>): HistoryHop[] {
  const header = message.headers[MessageHistoryHeader];
  if (typeof header !== 'string' || header.length > MAX_HEADER_CHARS) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.filter(isHop).map(({ route, step, at }) => ({ route, step, at }));
}

function isHop(value: unknown): value is HistoryHop {
  if (typeof value !== 'object' || value === null) return false;
  const { route, step, at } = value as Partial<Record<keyof HistoryHop, unknown>>;
  return typeof route === 'string' && typeof step === 'string' && typeof at === 'number' && Number.isFinite(at);
}

/**
 * The message with `hop` appended to its history, at most `maxHops` kept (the oldest dropped).
 * @example appendHop(message, { route: 'orders', step: 'history-1', at: Date.now() })
 */
export function appendHop<T>(message: Message<T>, hop: HistoryHop, maxHops = 20): Message<T> {
  const hops = [...historyOf(message), hop];
  return withHeaders(message, { [MessageHistoryHeader]: JSON.stringify(hops.slice(Math.max(0, hops.length - Math.max(1, maxHops)))) });
}

/**
 * Message history (EIP book; Camel's message history, Spring's `MessageHistory`): appends a hop
 * `{ route, step, at }` — this route, this step's id, the step scheduler's time — to the
 * `x-interchange-history` header and passes the message on at once; the body is untouched.
 * Give the step an id (`.history({ id: 'validated' })`) to name the point it records. Synchronous:
 * no store, nothing held, the source settles as the message does downstream; nothing to drain.
 * @example from('amqp:queue/orders', { id: 'orders' }).validate('order@1').history({ id: 'validated' }).to('amqp:queue/billing')
 */
export function messageHistory<T>({ maxHops = 20 }: MessageHistoryOptions = {}): StepFactory<T, T> {
  return (context) =>
    deliveryStep<T, T>(context, (delivery, emit) => {
      emit(delivery.with(appendHop(delivery.message, { route: context.routeId, step: context.stepId, at: context.scheduler.now() }, maxHops)));
    });
}

/** `.history(options)`: the message history's DSL entry (kind `history`). */
export function messageHistoryStep<T>(options?: MessageHistoryOptions): StepSpec<T, T> {
  return stepSpec('history', messageHistory<T>(options));
}

/**
 * A route that records its history at every step (Camel's `messageHistory` on a route): the same
 * route, each of its top-level steps followed by a hop named by that step's id — as if `.history()`
 * followed every step. Steps inside branches (choice, multicast) are not recorded one by one: the
 * step holding them is. A hop is added after its step, so what a `to` step sends carries the hops of
 * the steps before it. Costs a parse and a write of the header per step and message: opt-in.
 * @example createIntegration({ routes: [recordHistory(from('memory:orders', { id: 'orders' }).validate('order@1').to('memory:billing'))] })
 */
export function recordHistory(route: RouteSource, options: MessageHistoryOptions = {}): RouteSource {
  return {
    definition: (): RouteDefinition => {
      const definition = route.definition();
      return { ...definition, steps: definition.steps.map((step) => withHop(step, options)) };
    },
  };
}

function withHop(step: StepDefinition, options: MessageHistoryOptions): StepDefinition {
  const history = messageHistory<unknown>(options);
  return {
    ...step,
    build: (context) => {
      const inner = step.build(context);
      const hop = history(context);
      return (source) => hop(inner(source));
    },
  };
}
