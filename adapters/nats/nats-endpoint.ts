import { createHash } from 'node:crypto';
import { defineOptions, EndpointError, positiveIntegerOption, type Endpoint } from '../../src/core/index.ts';
import { NatsUnencodableError } from './nats-errors.ts';

/** `nats:subject/<subject>`: core NATS, at-most-once, fan-out to every subscriber (or one per `queue` group). */
export interface CoreTarget {
  readonly kind: 'subject';
  readonly subject: string;
  /** Queue group: subscribers of one group share the messages (competing consumers). */
  readonly queue?: string;
}

/** `nats:jetstream/<stream>/<subject>`: a JetStream stream, published with acks, consumed by a durable pull consumer. */
export interface JetStreamTarget {
  readonly kind: 'jetstream';
  readonly stream: string;
  /** Publish subject (no wildcards), or the consumer's filter subject (wildcards allowed). */
  readonly subject: string;
  /** Durable consumer name: `?consumer=`, else `defaultConsumerName(stream, subject)`. */
  readonly consumer: string;
}

export type NatsTarget = CoreTarget | JetStreamTarget;

/** Endpoint options, as the query string carries them (validated by `natsEndpointOptions`). */
export interface NatsEndpointOptions {
  /** Core consume: the queue group. */
  readonly queue?: string;
  /** JetStream consume: the durable consumer's name (default: derived from the stream and subject). */
  readonly consumer?: string;
  /** JetStream: create the stream and consumer when absent (`true`, the default) or require them (`false`). */
  readonly provision?: 'true' | 'false';
  /** JetStream consumer: the server redelivers a message unacknowledged after this long (consumer `ack_wait`, default 30,000). */
  readonly ackWaitMs?: string;
  /** JetStream consume: deliveries of a message before it is dead-lettered (default: the transport's, 5). */
  readonly maxDeliveries?: string;
  /** Publish: `all` (default; id and typed headers), `none` (payload only), `trace` (payload and W3C trace context). Consume: see `InboundHeaders`. */
  readonly headers?: 'all' | 'none' | 'standard' | 'trace';
  /** Consume with `headers=standard`: NATS headers that become message headers (strings), comma-separated. */
  readonly allowHeaders?: string;
  /** Consume: a message over this many bytes (payload + headers) is refused at intake (default: the transport's, 1 MiB). */
  readonly maxMessageBytes?: string;
  /** Consume: `raw` gives the payload's bytes as the body, unparsed. */
  readonly payload?: 'raw' | 'decoded';
}

const NAME = '^[A-Za-z0-9_-]{1,64}$';
const HEADER_NAME = '[!-9;-~]{1,128}';

/** The endpoint options' schema: the one source of validation and of docs/transports/nats.md's table. */
export const natsEndpointOptions = defineOptions<NatsEndpointOptions>({
  type: 'object',
  additionalProperties: false,
  properties: {
    queue: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$', description: 'core subjects, consume: queue group (competing consumers)' },
    consumer: { type: 'string', pattern: NAME, description: 'JetStream, consume: durable consumer name (default derived from stream and subject)' },
    provision: { enum: ['true', 'false'], description: 'JetStream: create the stream and the durable consumer when absent (default true)' },
    ackWaitMs: positiveIntegerOption('JetStream consumer ack_wait in ms when the adapter creates it (default 30000)', 9),
    maxDeliveries: positiveIntegerOption('JetStream, consume: deliveries before a nacked message is dead-lettered (default 5)', 4),
    headers: { enum: ['all', 'none', 'standard', 'trace'], description: 'publish: all | none | trace; consume: standard | none | trace | all (trusted peers only)' },
    allowHeaders: { type: 'string', pattern: `^${HEADER_NAME}(?:,${HEADER_NAME})*$`, description: 'consume with headers=standard: NATS headers taken as message headers' },
    maxMessageBytes: positiveIntegerOption('consume: largest message taken (default 1048576)', 10),
    payload: { enum: ['raw', 'decoded'], description: 'consume: raw = the payload bytes as the body' },
  },
});

const TOKEN_FORBIDDEN = /[\s]/;
const WHOLE_PLACEHOLDER = /^\{[^}]+\}$/;

/**
 * The endpoint's target and validated options. Throws `EndpointError` for an unknown kind, a bad
 * stream name or subject, an unknown option, or an option of the other kind (`queue` on JetStream,
 * `consumer` on a core subject).
 * @example natsTarget(parseEndpoint('nats:jetstream/ORDERS/orders.created?consumer=billing'))
 */
export function natsTarget(endpoint: Endpoint): { target: NatsTarget; options: NatsEndpointOptions } {
  let parsed = parsedTargets.get(endpoint);
  if (parsed === undefined) {
    parsed = parseTarget(endpoint);
    parsedTargets.set(endpoint, parsed);
  }
  return parsed;
}

/** Parsed endpoints (publish parses its endpoint on every call): endpoints are immutable. */
const parsedTargets = new WeakMap<Endpoint, { target: NatsTarget; options: NatsEndpointOptions }>();

function parseTarget(endpoint: Endpoint): { target: NatsTarget; options: NatsEndpointOptions } {
  const options = natsEndpointOptions.validate(endpoint.options, endpoint);
  const slash = endpoint.path.indexOf('/');
  const kind = slash < 0 ? endpoint.path : endpoint.path.slice(0, slash);
  const rest = slash < 0 ? '' : endpoint.path.slice(slash + 1);
  if (kind === 'subject') {
    for (const name of ['consumer', 'provision', 'ackWaitMs', 'maxDeliveries'] as const) {
      if (options[name] !== undefined) throw new EndpointError(`'${endpoint.uri}': option '${name}' is for JetStream endpoints (nats:jetstream/<stream>/<subject>)`);
    }
    checkSubject(rest, true, endpoint.uri);
    return { target: options.queue === undefined ? { kind, subject: rest } : { kind, subject: rest, queue: options.queue }, options };
  }
  if (kind === 'jetstream') {
    if (options.queue !== undefined) throw new EndpointError(`'${endpoint.uri}': option 'queue' is for core subjects; JetStream consumers of one durable compete already`);
    const at = rest.indexOf('/');
    const stream = at < 0 ? rest : rest.slice(0, at);
    const subject = at < 0 ? '' : rest.slice(at + 1);
    if (!new RegExp(NAME).test(stream)) throw new EndpointError(`'${endpoint.uri}': stream name '${stream}' must be 1-64 of A-Z a-z 0-9 _ - (nats:jetstream/<stream>/<subject>)`);
    checkSubject(subject, true, endpoint.uri);
    return { target: { kind, stream, subject, consumer: options.consumer ?? defaultConsumerName(stream, subject) }, options };
  }
  throw new EndpointError(`'${endpoint.uri}': expected nats:subject/<subject> or nats:jetstream/<stream>/<subject>`);
}

/**
 * The durable consumer of a JetStream endpoint without `?consumer=`: every instance consuming the same
 * endpoint shares it (competing consumers), and a restarted one resumes it.
 * @example defaultConsumerName('ORDERS', 'orders.*') // 'ic-orders_x-…'
 */
export function defaultConsumerName(stream: string, subject: string): string {
  const readable = subject.replace(/\*/g, 'x').replace(/>/g, 'all').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  return `ic-${readable}-${createHash('sha256').update(`${stream}\0${subject}`).digest('hex').slice(0, 10)}`;
}

/** Largest subject accepted (NATS has no fixed limit; its control line is 4 KiB by default). */
const MAX_SUBJECT_CHARS = 1_024;

/**
 * Throws `EndpointError` (endpoint) unless `subject` is a NATS subject: dot-separated non-empty tokens
 * without whitespace, at most 1,024 characters; with `wildcards`, `*` as a whole token and `>` as the
 * last one. A `{name}` template token passes (it is checked once filled, see `publishSubject`).
 */
export function checkSubject(subject: string, wildcards: boolean, uri: string): void {
  const problem = subjectProblem(subject, wildcards);
  if (problem !== undefined) throw new EndpointError(`'${uri}': subject '${subject.slice(0, 200)}' ${problem}`);
}

function subjectProblem(subject: string, wildcards: boolean): string | undefined {
  if (subject === '') return 'is empty';
  if (subject.length > MAX_SUBJECT_CHARS) return `is over ${MAX_SUBJECT_CHARS} characters`;
  const tokens = subject.split('.');
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index] as string;
    if (token === '') return 'has an empty token';
    if (TOKEN_FORBIDDEN.test(token)) return 'has whitespace';
    if (token === '>' && index !== tokens.length - 1) return "has '>' before its last token";
    if (!wildcards && (token === '*' || token === '>')) return 'has a wildcard (publish subjects cannot)';
    if (token !== '*' && token !== '>' && (token.includes('*') || token.includes('>'))) return "has '*' or '>' inside a token";
  }
  return undefined;
}

/**
 * The subject one message is published to: the target's, or its template filled from the message. A
 * placeholder inside a subject must fill one token (a value with `.` would steer the message elsewhere);
 * a template that is one placeholder alone (`nats:subject/{replyTo}`, answering a request) takes a whole
 * subject. Wildcards and whitespace are refused either way, and so is a filled subject starting with `$`:
 * the server's own API lives there (a foreign requester naming `$JS.API.STREAM.DELETE.ORDERS` as its reply
 * subject must not make a route delete a stream). Throws `NatsUnencodableError` for a subject that cannot
 * be published to.
 */
export function publishSubject(template: string, fill: ((text: string) => string) | undefined): string {
  const subject = fill === undefined ? template : fill(template);
  if (fill !== undefined && !WHOLE_PLACEHOLDER.test(template) && subject.split('.').length !== template.split('.').length) {
    throw new NatsUnencodableError(`subject '${subject.slice(0, 200)}': a template value may not contain '.'`);
  }
  if (fill !== undefined && subject.startsWith('$')) throw new NatsUnencodableError(`subject '${subject.slice(0, 200)}': a template may not fill a '$' (server API) subject`);
  const problem = subjectProblem(subject, false);
  if (problem !== undefined) throw new NatsUnencodableError(`subject '${subject.slice(0, 200)}' ${problem}`);
  return subject;
}
