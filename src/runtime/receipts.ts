import { createMessage, parseEndpoint, toError, type Logger, type Message } from '../core/index.ts';
import type { DeliveryPolicy, ReceiptOptions } from '../dsl/route-definition.ts';
import type { ExecutionOutcome } from './route-observer.ts';

/**
 * How a message's way through a route ended, as its receipt says: `delivered` (every output
 * confirmed), `filtered`, `discarded`, `dead-lettered` (with the reason), or `rejected` — only on an
 * `at-most-once` route, where a rejection is final (elsewhere a rejected message is redelivered, and
 * its receipt waits for the outcome of a later delivery).
 */
export type ReceiptOutcome = 'delivered' | 'filtered' | 'discarded' | 'dead-lettered' | 'rejected';

/** The body of a receipt message; its `correlationId` header is `messageId`. */
export interface ReceiptBody {
  /** The id of the message the receipt is about (as the route's source delivered it). */
  readonly messageId: string;
  readonly outcome: ReceiptOutcome;
  /** Why it was dead-lettered, discarded or rejected: the error handler's reason and the error. */
  readonly reason?: string;
  readonly routeId: string;
  /** Epoch ms when the outcome was known. */
  readonly at: number;
}

/** The headers a sender sets to ask for a receipt. */
export const ReceiptHeaders = Object.freeze({
  /** The endpoint URI to send the receipt to (honoured only where the route's `receipts.allow` allows it). */
  to: 'receiptTo',
  /** Which outcomes to be told of, comma-separated (`delivered,dead-lettered`); default all. */
  on: 'receiptOn',
} as const);

const OUTCOMES: ReadonlySet<string> = new Set<ReceiptOutcome>(['delivered', 'filtered', 'discarded', 'dead-lettered', 'rejected']);

/** One message's request for a receipt, taken when the route admitted it. */
export interface ReceiptRequest {
  /**
   * Sends the receipt for this outcome if the sender asked for it; resolves once the destination
   * confirmed it or refused it (a failure is logged, never thrown: the message's own outcome stands).
   */
  send(outcome: ExecutionOutcome, reason: string | undefined): Promise<void>;
}

/** Publishes to an endpoint URI; resolves on the destination's confirm. */
export type Publish = (uri: string, messages: readonly Message[]) => Promise<void>;

/**
 * A route's receipts (`from(uri, { receipts: { allow } })`): reads each admitted message's
 * `receiptTo`/`receiptOn` headers and, once the message's outcome is known, publishes a receipt
 * (`ReceiptBody`, `correlationId` = the message's id) to `receiptTo` — before the source delivery is
 * settled, so a crash before then redelivers the message and its receipt comes again (receipts are
 * at-least-once too). A `receiptTo` the route does not allow, or one that is not a string, is
 * ignored (one WARN line per URI, up to 100 URIs).
 * @example new Receipts('orders', { allow: ['amqp:queue/receipts.'] }, 'at-least-once', transports.publish, log)
 */
export class Receipts {
  private readonly allowed: (uri: string) => boolean;
  private readonly refused = new Set<string>();
  private readonly timeoutMs: number;

  constructor(
    private readonly routeId: string,
    { allow, timeoutMs = 10_000 }: ReceiptOptions,
    private readonly policy: DeliveryPolicy,
    private readonly publish: Publish,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.allowed = typeof allow === 'function' ? allow : (uri) => allow.some((prefix) => uri.startsWith(prefix));
    this.timeoutMs = timeoutMs;
  }

  /** The message's receipt request, or undefined when it asks for none the route honours. */
  requested(message: Message): ReceiptRequest | undefined {
    const asked = message.headers[ReceiptHeaders.to];
    if (asked === undefined) return undefined;
    const uri = typeof asked === 'string' ? plainDestination(asked) : undefined;
    if (uri === undefined || !this.allows(uri)) {
      this.refuse(String(asked), message.id);
      return undefined;
    }
    const on = message.headers[ReceiptHeaders.on];
    const wanted = typeof on === 'string' ? new Set(on.split(',').map((outcome) => outcome.trim()).filter((outcome) => OUTCOMES.has(outcome))) : undefined;
    return new Request(this, uri, message.id, wanted);
  }

  /** @internal sends one receipt (see `ReceiptRequest.send`) */
  async send(uri: string, messageId: string, wanted: ReadonlySet<string> | undefined, outcome: ExecutionOutcome, reason: string | undefined): Promise<void> {
    const said = receiptOutcome(outcome, this.policy);
    if (said === undefined || (wanted !== undefined && !wanted.has(said))) return;
    const body: ReceiptBody = { messageId, outcome: said, ...(reason === undefined ? {} : { reason }), routeId: this.routeId, at: this.now() };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`not confirmed within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      // bounded: a destination that never confirms (full, down, hung) must not hold the message's settlement
      await Promise.race([this.publish(uri, [createMessage(body, { headers: { correlationId: messageId } })]), late]);
    } catch (error) {
      this.log.warn('receipt not sent', { route: this.routeId, messageId, uri, outcome: said, error: toError(error).message });
    } finally {
      clearTimeout(timer);
    }
  }

  private allows(uri: string): boolean {
    try {
      return this.allowed(uri);
    } catch (error) {
      this.log.warn('receipts.allow threw; no receipt', { route: this.routeId, uri, error: toError(error).message });
      return false;
    }
  }

  private refuse(uri: string, messageId: string): void {
    if (this.refused.has(uri) || this.refused.size >= 100) return;
    this.refused.add(uri);
    this.log.warn('receipt requested to a destination the route does not allow; ignored', { route: this.routeId, uri: uri.slice(0, 200), messageId });
  }
}

/** The receipt outcome of an execution outcome; undefined when it is not final (a rejection redelivered). */
export function receiptOutcome(outcome: ExecutionOutcome, policy: DeliveryPolicy): ReceiptOutcome | undefined {
  switch (outcome) {
    case 'completed':
      return 'delivered';
    case 'rejected':
      return policy === 'at-most-once' ? 'rejected' : undefined;
    default:
      return outcome;
  }
}

class Request implements ReceiptRequest {
  constructor(
    private readonly receipts: Receipts,
    private readonly uri: string,
    private readonly messageId: string,
    private readonly wanted: ReadonlySet<string> | undefined,
  ) {}

  send(outcome: ExecutionOutcome, reason: string | undefined): Promise<void> {
    return this.receipts.send(this.uri, this.messageId, this.wanted, outcome, reason);
  }
}

/**
 * A sender's `receiptTo` as the destination it may name: `scheme:path`, or undefined when it carries
 * endpoint options (`?capacity=1`, `?maxLen=1`: the sender would choose how the endpoint is declared,
 * bounded or trimmed), a `{placeholder}`, or is no endpoint URI at all.
 */
function plainDestination(asked: string): string | undefined {
  if (asked.length > 1_000 || asked.includes('{') || asked.includes('?')) return undefined;
  try {
    const endpoint = parseEndpoint(asked);
    if (Object.keys(endpoint.options).length > 0) return undefined;
    return `${endpoint.scheme}:${endpoint.path}`;
  } catch {
    return undefined;
  }
}
