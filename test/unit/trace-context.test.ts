import { describe, expect, it } from 'vitest';
import { isTraceparent, isTracestate } from '../../adapters/mqtt/message-codec.ts';
import { formatTraceparent, isValidTracestate, parseTraceparent } from '../../facade/observability/trace-context.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('parseTraceparent', () => {
  it('reads version 00: trace id, span id and flags', () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
    expect(isTraceparent(VALID)).toBe(true);
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.traceFlags).toBe(0);
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-ff`)?.traceFlags).toBe(255);
  });

  it.each([
    ['uppercase hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['uppercase flags', `00-${TRACE_ID}-${SPAN_ID}-0A`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['an all-zero span id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['a later version (not known yet)', `01-${TRACE_ID}-${SPAN_ID}-01`],
    ['a later version with extra fields', `cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-holds`],
    ['trailing data on version 00', `${VALID}-00`],
    ['a short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['a short span id', `00-${TRACE_ID}-${SPAN_ID.slice(1)}-01`],
    ['one-digit flags', `00-${TRACE_ID}-${SPAN_ID}-1`],
    ['non-hex characters', `00-${TRACE_ID.slice(0, 31)}g-${SPAN_ID}-01`],
    ['other separators', `00_${TRACE_ID}_${SPAN_ID}_01`],
    ['surrounding spaces', ` ${VALID} `],
    ['a trailing newline', `${VALID}\n`],
    ['an empty string', ''],
    ['a 100,000-character string', `${VALID}${'a'.repeat(100_000)}`],
    ['a long string of the right characters', '0'.repeat(1_000_000)],
  ])('refuses %s', (_case, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
    expect(isTraceparent(value)).toBe(false); // the MQTT adapter's copy of the rules agrees
  });

  it('refuses what is not a string', () => {
    for (const value of [undefined, null, 1, true, { traceId: TRACE_ID }, [VALID]]) expect(parseTraceparent(value)).toBeUndefined();
  });
});

describe('formatTraceparent', () => {
  it('writes version 00 with two-digit flags, and round-trips through the parser', () => {
    const value = formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
    expect(value).toBe(VALID);
    expect(parseTraceparent(value)).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
    expect(formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 })).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`);
  });

  it('throws RangeError rather than write what a parser would refuse', () => {
    expect(() => formatTraceparent({ traceId: '0'.repeat(32), spanId: SPAN_ID, traceFlags: 1 })).toThrow(RangeError);
    expect(() => formatTraceparent({ traceId: TRACE_ID, spanId: 'xyz', traceFlags: 1 })).toThrow(RangeError);
    expect(() => formatTraceparent({ traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID, traceFlags: 1 })).toThrow(RangeError);
    expect(() => formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 256 })).toThrow(RangeError);
    expect(() => formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1.5 })).toThrow(RangeError);
  });
});

describe('isValidTracestate', () => {
  it.each([
    ['one member', 'rojo=00f067aa0ba902b7'],
    ['several members with spaces and tabs', 'rojo=00f067aa0ba902b7 ,\tcongo=t61rcWkgMzE'],
    ['a multi-tenant key', 'tenant1@vendor=value'],
    ['an empty member', 'a=1,,b=2'],
    ['an empty string', ''],
    ['a value with inner spaces', 'a=hello world'],
    ['32 members', Array.from({ length: 32 }, (_, index) => `k${index}=v`).join(',')],
    ['512 characters', `a=${'v'.repeat(254)},b=${'v'.repeat(253)}`],
  ])('takes %s', (_case, value) => {
    expect(isValidTracestate(value)).toBe(true);
    expect(isTracestate(value)).toBe(true);
  });

  it.each([
    ['513 characters', `a=${'v'.repeat(254)},b=${'v'.repeat(254)}`],
    ['a value over 256 characters', `k=${'v'.repeat(257)}`],
    ['33 members', Array.from({ length: 33 }, (_, index) => `k${index}=v`).join(',')],
    ['an uppercase key', 'Rojo=1'],
    ['a key starting with a digit (not multi-tenant)', '1abc=1'],
    ['a member without =', 'rojo'],
    ['an empty value', 'rojo='],
    ['a value with =', 'rojo=a=b'],
    ['a value ending in a space', 'rojo=abc \u0000'],
    ['a control character', 'rojo=a\u0001b'],
    ['non-ASCII', 'rojo=é'],
    ['a 1,000,000-character string', 'a'.repeat(1_000_000)],
  ])('refuses %s', (_case, value) => {
    expect(isValidTracestate(value)).toBe(false);
    expect(isTracestate(value)).toBe(false);
  });

  it('refuses what is not a string', () => {
    expect(isValidTracestate(undefined)).toBe(false);
    expect(isValidTracestate(42)).toBe(false);
  });
});
