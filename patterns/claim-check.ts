import { Observable, type Subscription } from 'rxjs';
import {
  relayDelivery,
  deliveryStep,
  derivedMessageId,
  scheduleTracked,
  InterchangeError,
  stepSpec,
  toError,
  UnencodableMessageError,
  withBody,
  type Delivery,
  type Message,
  type Step,
  type StepContext,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';
import { assertClaimId, ClaimCheckStore, MemoryClaimCheckStore } from '../src/stores/claim-check-store.ts';

/** The key of `ClaimTicket`'s type-only member: no ticket ever has it (its type carries what the claim holds). */
export const claimedBody: unique symbol = Symbol('interchange.claimedBody');

/**
 * What check-in leaves in the message for what it took out: `{ claimCheck: <claim id> }`, a plain
 * JSON value, so it crosses every transport as a body (or a part of one). `P` is the type of what
 * the claim holds, so `claimCheckOut` gives it back typed.
 */
export interface ClaimTicket<P = unknown> {
  readonly claimCheck: string;
  /** Type only (never set): the type of the checked-in body or part. */
  readonly [claimedBody]?: P;
}

/** The body a ticket stands for: `Order` for a `ClaimTicket<Order>`, `unknown` for anything else. */
export type Claimed<T> = T extends ClaimTicket<infer P> ? P : unknown;

/**
 * Check-out found no claim for the ticket: never stored, expired (`ttlMs`), or removed by an earlier
 * check-out. Permanent: the runtime never retries it; a dead-letter channel takes the message (ticket
 * and all), else it is rejected to its source.
 */
export class ClaimNotFoundError extends InterchangeError {
  override readonly name = 'ClaimNotFoundError';
  constructor(readonly claimId: string) {
    super('CLAIM_NOT_FOUND', `claim '${claimId}' not found: never stored, expired or already checked out`, { permanent: true });
  }
}

/** A stored claim cannot be read back (damaged bytes): permanent. */
export class ClaimDecodingError extends InterchangeError {
  override readonly name = 'ClaimDecodingError';
  constructor(claimId: string, cause?: unknown) {
    super('CLAIM_UNDECODABLE', `claim '${claimId}' cannot be decoded`, { cause, permanent: true });
  }
}

export interface ClaimCheckStoreOption {
  /**
   * Where claims are kept. Default: the `ClaimCheckStore` bound in the integration's container, else
   * one in-memory store shared by every claim check step of this process (`sharedMemoryClaimCheckStore`) —
   * check-in and check-out then meet only within this process: bind a durable store for anything else.
   */
  readonly store?: ClaimCheckStore;
  /**
   * Store calls in flight at once for this step (default 16); later messages wait their turn. Messages
   * pass on as their calls complete, so above 1 their order may change (`concurrency: 1` keeps it).
   */
  readonly concurrency?: number;
}

export interface ClaimCheckInOptions extends ClaimCheckStoreOption {
  /** The claim expires this long after check-in (by the store's clock); default: kept until checked out. */
  readonly ttlMs?: number;
  /**
   * Runs the store's `sweep` (deletes expired claims) this often while the route runs, on the step's
   * scheduler; default never (sweep from elsewhere, or rely on Redis's own expiry). A failed sweep is
   * logged; swept claims are counted (`swept`).
   */
  readonly sweepEveryMs?: number;
}

/** Check-in of a part of the body: what to store, and the body passed on with the part's ticket. */
export interface ClaimCheckInPartOptions<T, P, R> extends ClaimCheckInOptions {
  /** The part of the body to check in, e.g. `(m) => m.body.attachment`. */
  readonly part: (message: Message<T>) => P;
  /** The body passed on, holding the ticket instead of the part, e.g. `(m, ticket) => ({ ...m.body, attachment: ticket })`. */
  readonly replace: (message: Message<T>, ticket: ClaimTicket<P>) => R;
}

export interface ClaimCheckOutOptions extends ClaimCheckStoreOption {
  /**
   * Remove the claim once the message is acked downstream (default `true`: Camel's `GetAndRemove`,
   * Spring's `ClaimCheckOut` with `removeMessage`); `false` keeps it for further check-outs (Camel's
   * `Get`), until its `ttlMs` if any.
   */
  readonly remove?: boolean;
}

/** Check-out of a part of the body: where its ticket is, and the body with the part restored. */
export interface ClaimCheckOutPartOptions<T, P, O> extends ClaimCheckOutOptions {
  /** The ticket in the body, e.g. `(m) => m.body.attachment`. */
  readonly ticket: (message: Message<T>) => ClaimTicket<P>;
  /** The body passed on, the part restored, e.g. `(m, attachment) => ({ ...m.body, attachment })`. */
  readonly restore: (message: Message<T>, part: P) => O;
}

let shared: MemoryClaimCheckStore | undefined;

/** The in-memory store claim check steps fall back to when none is given nor bound: one per process. */
export function sharedMemoryClaimCheckStore(): MemoryClaimCheckStore {
  shared ??= new MemoryClaimCheckStore();
  return shared;
}

function storeOf(context: StepContext, store: ClaimCheckStore | undefined): ClaimCheckStore {
  if (store !== undefined) return store;
  try {
    return context.service<ClaimCheckStore>(ClaimCheckStore);
  } catch {
    return sharedMemoryClaimCheckStore();
  }
}

const JSON_TAG = 0;
const BYTES_TAG = 1;

/**
 * A body (or part) as a claim's bytes: a tag byte, then the bytes as they are (`Uint8Array`, a
 * `Buffer`) or the value's JSON. Throws `UnencodableMessageError` (permanent) for anything else.
 */
export function encodeClaim(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    const data = new Uint8Array(value.byteLength + 1);
    data[0] = BYTES_TAG;
    data.set(value, 1);
    return data;
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new UnencodableMessageError('CLAIM_UNENCODABLE', `claim check: the body cannot be stored: ${toError(cause).message}`, { cause });
  }
  if (json === undefined) throw new UnencodableMessageError('CLAIM_UNENCODABLE', `claim check: the body cannot be stored (${typeof value}): bytes or a JSON value only`);
  const text = Buffer.from(json, 'utf8');
  const data = new Uint8Array(text.byteLength + 1);
  data[0] = JSON_TAG;
  data.set(text, 1);
  return data;
}

/** A claim's bytes back into the value `encodeClaim` took (bytes come back as a `Buffer`). */
export function decodeClaim(claimId: string, data: Uint8Array): unknown {
  const payload = Buffer.from(data.buffer, data.byteOffset + 1, Math.max(0, data.byteLength - 1));
  if (data[0] === BYTES_TAG) return Buffer.from(payload);
  if (data[0] !== JSON_TAG) throw new ClaimDecodingError(claimId);
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch (cause) {
    throw new ClaimDecodingError(claimId, cause);
  }
}

/** The claim id of a ticket from a message: checked, since the message is input (`InvalidClaimIdError`, permanent). */
function claimIdOf(ticket: unknown): string {
  const id = typeof ticket === 'object' && ticket !== null ? (ticket as { claimCheck?: unknown }).claimCheck : undefined;
  assertClaimId(id);
  return id;
}

/**
 * Claim check, check-in (EIP book; Camel's `claimCheck(Push)`, Spring's `ClaimCheckInTransformer`):
 * stores the body — or the `part` of it chosen — in a `ClaimCheckStore` and passes on the ticket
 * `{ claimCheck: <id> }` instead (or the body `replace` makes with it); the message keeps its id and
 * headers (`schema` dropped: the body changed).
 * - At-least-once: the message passes on only once the store's write has completed; the source is
 *   settled by whatever happens downstream. A failed write fails this message only (route's error
 *   handler: retry, dead letter…); an unstorable body (neither bytes nor JSON) fails permanently.
 * - The claim id is made here, never taken from the message: a hash of route, step, message id and
 *   the stored bytes. A retried or redelivered check-in of the same message writes the same claim
 *   again instead of leaking a new one; another message (or a forged copy with other content) can
 *   never overwrite it.
 * - A claim outlives a message rejected downstream (its redelivery rewrites it); one never checked
 *   out is kept until its `ttlMs` — set one unless every ticket is sure to be checked out — and
 *   deleted by the store's `sweep` (`sweepEveryMs` runs it from this step; Redis expires keys itself).
 * - Stop/drain: nothing is held between messages; the step completes once the writes in flight have
 *   passed their messages on; unsubscribed, a write in flight passes nothing on (the source redelivers).
 * @example
 * from('amqp:queue/scans').claimCheckIn({ store, ttlMs: 86_400_000 }).to('amqp:queue/ocr')
 * from('memory:mail').claimCheckIn({ part: (m) => m.body.attachment, replace: (m, attachment) => ({ ...m.body, attachment }) })
 */
export function claimCheckIn<T>(options?: ClaimCheckInOptions): StepFactory<T, ClaimTicket<T>>;
export function claimCheckIn<T, P, R>(options: ClaimCheckInPartOptions<T, P, R>): StepFactory<T, R>;
export function claimCheckIn<T, P, R>(options: ClaimCheckInOptions & Partial<ClaimCheckInPartOptions<T, P, R>> = {}): StepFactory<T, unknown> {
  const { ttlMs, sweepEveryMs, concurrency = 16, part, replace } = options;
  return (context) => {
    const store = storeOf(context, options.store);
    const step = deliveryStep<T, unknown>(
      context,
      async (delivery, emit) => {
        const { message } = delivery;
        const data = encodeClaim(part === undefined ? message.body : part(message));
        const claimCheck = derivedMessageId(['claim-check', context.routeId, context.stepId, message.id, data]);
        await store.put(claimCheck, data, ttlMs === undefined ? {} : { ttlMs });
        context.count('checkedIn');
        const ticket: ClaimTicket<P> = { claimCheck };
        emit(delivery.with(withBody(message, replace === undefined ? ticket : replace(message, ticket))));
      },
      { concurrency },
    );
    return sweepEveryMs === undefined ? step : sweeping(context, store, Math.max(1, sweepEveryMs), step);
  };
}

/** `step`, with the store swept every `everyMs` on the context's scheduler while it is subscribed (not counted as pending work). */
function sweeping<I, O>(context: StepContext, store: ClaimCheckStore, everyMs: number, step: Step<I, O>): Step<I, O> {
  return (source) =>
    new Observable<Delivery<O>>((subscriber) => {
      const timers = new Set<Subscription>();
      const next = (): void =>
        scheduleTracked(context.scheduler, timers, everyMs, () => {
          store.sweep().then(
            (swept) => {
              if (swept > 0) context.count('swept', swept);
            },
            (error: unknown) => context.log.warn('claim check: sweeping expired claims failed', { route: context.routeId, step: context.stepId, error: toError(error).message }),
          );
          next();
        });
      next();
      const subscription = step(source).subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        for (const timer of timers) timer.unsubscribe();
        timers.clear();
      };
    });
}

/**
 * Claim check, check-out (Camel's `claimCheck(Pop/GetAndRemove/Get)`, Spring's `ClaimCheckOutTransformer`):
 * fetches the claim of the message's ticket (its body, or the `ticket` picked from it) and passes on
 * the stored body (or the body `restore` makes with the stored part), typed back.
 * - A missing or expired claim fails the message with `ClaimNotFoundError`, a ticket that is not one
 *   with `InvalidClaimIdError`: both permanent (never retried; dead-lettered by a dead-letter channel).
 *   A failed store read fails the message for the route's error handler (retryable).
 * - With `remove` (default), the claim is removed only after the message was acked downstream (the
 *   source acked first, then the claim removed: a crash between the two leaks the claim, never loses
 *   it; a failed removal is logged). A message rejected downstream, or failing here, leaves the claim
 *   in place for its redelivery.
 * - Stop/drain: nothing is held between messages; a read in flight completes (or fails) its message.
 * @example
 * from('amqp:queue/ocr').claimCheckOut<Scan>({ store }).process(ocr)
 * .claimCheckOut({ ticket: (m) => m.body.attachment, restore: (m, attachment) => ({ ...m.body, attachment }) })
 */
export function claimCheckOut<T, O = Claimed<T>>(options?: ClaimCheckOutOptions): StepFactory<T, O>;
export function claimCheckOut<T, P, O>(options: ClaimCheckOutPartOptions<T, P, O>): StepFactory<T, O>;
export function claimCheckOut<T, P, O>(options: ClaimCheckOutOptions & Partial<ClaimCheckOutPartOptions<T, P, O>> = {}): StepFactory<T, unknown> {
  const { remove = true, concurrency = 16, ticket, restore } = options;
  return (context) => {
    const store = storeOf(context, options.store);
    const removeClaim = (claimId: string, messageId: string): void => {
      store.remove(claimId).then(
        () => context.count('removed'),
        (error: unknown) => context.log.warn('claim check: a checked-out claim could not be removed; it stays until its ttl', { route: context.routeId, step: context.stepId, claimId, messageId, error: toError(error).message }),
      );
    };
    return deliveryStep<T, unknown>(
      context,
      async (delivery, emit) => {
        const { message } = delivery;
        const claimId = claimIdOf(ticket === undefined ? message.body : ticket(message));
        const data = await store.get(claimId);
        if (data === undefined) throw new ClaimNotFoundError(claimId);
        const value = decodeClaim(claimId, data);
        const restored = withBody(message, restore === undefined ? value : restore(message, value as P));
        context.count('checkedOut');
        if (!remove) {
          emit(delivery.with(restored));
          return;
        }
        // settles the source, then removes the claim; how a later step let the message go still reaches the route
        emit(relayDelivery(delivery, restored, { ack: () => removeClaim(claimId, message.id) }));
      },
      { concurrency },
    );
  };
}

/**
 * `.claimCheckIn(options)`: the claim check's check-in DSL entry (kind `claimCheckIn`).
 * @example claimCheckInStep<Order>({ ttlMs: 60_000 })
 */
export function claimCheckInStep<T>(options?: ClaimCheckInOptions): StepSpec<T, ClaimTicket<T>>;
export function claimCheckInStep<T, P, R>(options: ClaimCheckInPartOptions<T, P, R>): StepSpec<T, R>;
export function claimCheckInStep<T, P, R>(options?: ClaimCheckInOptions | ClaimCheckInPartOptions<T, P, R>): StepSpec<T, unknown> {
  return stepSpec('claimCheckIn', claimCheckIn<T, P, R>(options as ClaimCheckInPartOptions<T, P, R>));
}

/**
 * `.claimCheckOut(options)`: the claim check's check-out DSL entry (kind `claimCheckOut`).
 * @example claimCheckOutStep<ClaimTicket<Order>>({ remove: false })
 */
export function claimCheckOutStep<T, O = Claimed<T>>(options?: ClaimCheckOutOptions): StepSpec<T, O>;
export function claimCheckOutStep<T, P, O>(options: ClaimCheckOutPartOptions<T, P, O>): StepSpec<T, O>;
export function claimCheckOutStep<T, P, O>(options?: ClaimCheckOutOptions | ClaimCheckOutPartOptions<T, P, O>): StepSpec<T, unknown> {
  return stepSpec('claimCheckOut', claimCheckOut<T, P, O>(options as ClaimCheckOutPartOptions<T, P, O>));
}
