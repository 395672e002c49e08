import type { Headers } from '../../src/core/message.ts';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as message headers: a strict parser and
 * a formatter of `traceparent`, and a well-formedness check of `tracestate`.
 *
 * Interchange reads and writes these itself rather than through `@opentelemetry/api`'s `propagation`:
 * the global propagator is a no-op until an SDK registers one, and trace context must cross every
 * transport whichever propagator (if any) the user configured. Headers arrive from untrusted
 * publishers, so parsing is strict and bounded: anything not exactly well-formed is treated as absent.
 */

/** The identity of a span as `traceparent` carries it. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** The trace flags byte (bit 0: sampled). */
  readonly traceFlags: number;
}

/** The longest `tracestate` taken (the W3C limit a vendor must propagate: 512 characters). */
export const MAX_TRACESTATE_LENGTH = 512;
/** The most list members a `tracestate` may have (W3C: 32). */
const MAX_TRACESTATE_MEMBERS = 32;

/** `00-<trace id>-<span id>-<flags>`, lowercase only (W3C §3.2.2: uppercase is invalid). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** One `tracestate` list member: a simple or multi-tenant key, `=`, a value of printable ASCII without `,` and `=` that does not end in a space. */
const TRACESTATE_MEMBER = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Parses a `traceparent` header value; undefined unless it is exactly version `00`, 55 characters,
 * lowercase hex, with a trace id and a span id that are not all zero. Later versions (`01`–`fe`) are
 * not taken (a strict reading: their format is not known yet), `ff` is invalid by definition.
 * @example parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
 */
export function parseTraceparent(value: unknown): TraceParent | undefined {
  if (typeof value !== 'string' || value.length !== 55) return undefined;
  const match = TRACEPARENT.exec(value);
  if (match === null) return undefined;
  const [, traceId = '', spanId = '', flags = ''] = match;
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) };
}

/**
 * The `traceparent` header value of a span context (version `00`). Throws `RangeError` on ids or
 * flags that are not valid: a formatter must never send what `parseTraceparent` would refuse.
 * @example formatTraceparent({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 })
 */
export function formatTraceparent({ traceId, spanId, traceFlags }: TraceParent): string {
  const value = `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  if (!Number.isInteger(traceFlags) || traceFlags < 0 || traceFlags > 0xff || parseTraceparent(value) === undefined) {
    throw new RangeError(`not a valid span context for traceparent: trace id '${String(traceId).slice(0, 40)}', span id '${String(spanId).slice(0, 20)}', flags ${String(traceFlags)}`);
  }
  return value;
}

/**
 * Whether a `tracestate` header value is well-formed enough to pass on: a string of at most 512
 * characters, at most 32 comma-separated list members, each `key=value` as W3C §3.3.1 defines them
 * (empty members and optional spaces or tabs around members allowed). Duplicate keys are not looked for.
 * @example isValidTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')
 */
export function isValidTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_TRACESTATE_LENGTH) return false;
  const members = value.split(',');
  if (members.length > MAX_TRACESTATE_MEMBERS) return false;
  for (const member of members) {
    const trimmed = member.replace(/^[ \t]+|[ \t]+$/g, '');
    if (trimmed !== '' && !TRACESTATE_MEMBER.test(trimmed)) return false;
  }
  return true;
}

/** The W3C trace context headers of a message: `traceparent` and, when there is one, `tracestate`. */
export interface TraceHeaders extends Headers {
  readonly traceparent: string;
  readonly tracestate?: string;
}
