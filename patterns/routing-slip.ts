import { InterchangeError, stepSpec, withHeaders, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { checkMaxHops, DEFAULT_MAX_HOPS, HopLimitError, hopRouter } from './dynamic-router.ts';

/** The slip of one message: endpoint URIs, as a list or one string joined by the delimiter; `undefined` = none. */
export type SlipExpression<T> = (message: Message<T>) => string | readonly string[] | undefined;

export interface RoutingSlipOptions {
  /** What separates the URIs of a slip given as one string (default `,`). Blank entries are skipped. */
  readonly delimiter?: string;
  /** At most this many endpoints per slip (default 32); a longer slip fails the message with `HopLimitError` before any send. */
  readonly maxHops?: number;
  /**
   * The header each copy sent carries with its position in the slip (0-based; default
   * `routingSlipIndex`, Camel's slip endpoint property), so a receiver knows where it is; `false`:
   * none. The message passed on after the slip does not carry it.
   */
  readonly indexHeader?: string | false;
  /**
   * The endpoints a slip may name: a predicate, or URI prefixes (`['amqp:queue/steps.']`). A slip read
   * from a header comes from whoever sent the message — give `allow` unless every sender is trusted. A
   * slip naming any other endpoint fails the message before anything is sent (`ROUTING_SLIP_REFUSED`,
   * permanent: dead-lettered, never retried). Default: any endpoint.
   */
  readonly allow?: ((uri: string) => boolean) | readonly string[];
}

/** The header a routing slip is read from by default (Camel's examples use one header the same way). */
export const ROUTING_SLIP_HEADER = 'routingSlip';

/**
 * Routing slip (Camel's `routingSlip`): the message carries the list of endpoints it must visit — in
 * the header `slip` names (default `routingSlip`, URIs separated by `delimiter`), or as computed by a
 * function — and is sent to each of them in turn, each send waiting for its confirm before the next.
 * Then it goes on unchanged. A message with no slip (or an empty one) goes on unsent.
 *
 * Semantics, where Camel's differ: Camel pipes each endpoint's reply into the next (request-reply);
 * here every endpoint receives the message as it entered the slip (one-way sends), each copy stamped
 * with its position (`indexHeader`). The whole slip is done by this step — it is not advanced across
 * routes: a receiving route that runs a routing slip on the same header starts it again.
 *
 * At-least-once: the source is acked only once every endpoint of the slip has confirmed (and the rest
 * of the route settled the message). A failed send stops the slip there: the message fails with
 * `HopFailedError` naming the endpoint and its index (its `code` is the cause's), and a retry the
 * error handler asks for resumes at that endpoint. A throwing `slip` function fails the message as it
 * threw; a slip header that is not a string fails it with `ROUTING_SLIP_INVALID` (permanent); a slip
 * longer than `maxHops` with `HopLimitError` (permanent), before any send. Endpoints come per
 * message, so none is checked at build time: an unknown scheme fails the message (`EndpointError`).
 * Counts `hops` (confirmed sends).
 * Stop: in-flight slips finish while the route drains; after that no further endpoint is sent to.
 * @example from('memory:orders').routingSlip().to('memory:done') // header routingSlip: 'memory:check,memory:pack'
 * @example from('memory:orders').routingSlip((m) => m.body.steps, { maxHops: 8 })
 */
export function routingSlip<T>(slip: string | SlipExpression<T> = ROUTING_SLIP_HEADER, { delimiter = ',', maxHops = DEFAULT_MAX_HOPS, indexHeader = 'routingSlipIndex', allow }: RoutingSlipOptions = {}): StepFactory<T, T> {
  checkMaxHops('routingSlip', maxHops);
  const allowed = allow === undefined ? undefined : typeof allow === 'function' ? allow : (uri: string) => allow.some((prefix) => uri.startsWith(prefix));
  const read: SlipExpression<T> = typeof slip === 'function' ? slip : (message) => headerSlip(message, slip);
  const endpoints = (message: Message<T>): readonly string[] => {
    const value = read(message);
    if (value === undefined) return [];
    const list = typeof value === 'string' ? value.split(delimiter) : value;
    return list.map((uri) => uri.trim()).filter((uri) => uri !== '');
  };
  const stamp = indexHeader === false ? undefined : (message: Message<T>, hop: number): Message => withHeaders(message, { [indexHeader]: hop });
  return (context) =>
    hopRouter<T>(
      context,
      (message) => {
        const uris = endpoints(message);
        if (uris.length > maxHops) throw new HopLimitError('routingSlip', maxHops, uris.length, message.id);
        const refused = allowed === undefined ? undefined : uris.find((uri) => !allowed(uri));
        if (refused !== undefined) throw new InterchangeError('ROUTING_SLIP_REFUSED', `routingSlip: message ${message.id} names '${refused.slice(0, 200)}', which the slip's allow list does not allow; nothing sent`, { permanent: true });
        return (hop) => uris[hop];
      },
      { pattern: 'routingSlip', maxHops, ...(stamp === undefined ? {} : { stamp }) },
    );
}

function headerSlip(message: Message<unknown>, header: string): string | undefined {
  const value = message.headers[header];
  if (value === undefined || typeof value === 'string') return value;
  throw new InterchangeError('ROUTING_SLIP_INVALID', `routingSlip: header '${header}' of message ${message.id} is a ${typeof value}, not a list of endpoint URIs`, { permanent: true });
}

/** `.routingSlip(slip, options)`: the routing slip's DSL entry (kind `routingSlip`; sends, to endpoints each message names). */
export function routingSlipStep<T>(slip?: string | SlipExpression<T>, options?: RoutingSlipOptions): StepSpec<T, T> {
  return stepSpec('routingSlip', routingSlip(slip, options), { sends: true });
}
