import { describe, expect, it } from 'vitest';
import { assertDepth, parseJsonSafely, PayloadParseError, PayloadTooDeepError, PayloadTooLargeError, textDepth } from '../../../src/schema/index.ts';
import { shippedRegistry } from './fixtures.ts';

describe('safe JSON parsing', () => {
  it('parses text and bytes', () => {
    expect(parseJsonSafely('{"a":[1,{"b":"}"}]}')).toEqual({ a: [1, { b: '}' }] });
    expect(parseJsonSafely(new TextEncoder().encode('{"x":1}'))).toEqual({ x: 1 });
  });

  it('a __proto__ or constructor payload does not pollute any prototype, even when merged later', () => {
    const parsed = parseJsonSafely('{"a":1,"__proto__":{"polluted":true},"nested":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['a', 'nested']);
    expect(Object.hasOwn(parsed.nested as object, 'constructor')).toBe(false);
    const merged = Object.assign({}, parsed, parsed.nested as object);
    const deep: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(parsed)) deep[key] = value;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((merged as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
  });

  it('rejects an oversized payload before parsing, with PAYLOAD_TOO_LARGE', () => {
    const error = catchError(() => parseJsonSafely(`"${'x'.repeat(2_000)}"`, { maxBytes: 1_000 }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', size: 2_002, limit: 1_000 });
    // counted in UTF-8 bytes, not characters
    expect(() => parseJsonSafely('"°°°°"', { maxBytes: 8 })).toThrow(PayloadTooLargeError);
  });

  it('rejects an over-deep payload before parsing, with PAYLOAD_TOO_DEEP, even a depth bomb', () => {
    const bomb = '['.repeat(200_000) + ']'.repeat(200_000);
    const error = catchError(() => parseJsonSafely(bomb, { maxBytes: 1_000_000 }));
    expect(error).toBeInstanceOf(PayloadTooDeepError);
    expect(error).toMatchObject({ code: 'PAYLOAD_TOO_DEEP', limit: 64 });
    expect(() => parseJsonSafely('{"a":{"b":{"c":1}}}', { maxDepth: 2 })).toThrow(PayloadTooDeepError);
    expect(parseJsonSafely('{"a":{"b":{"c":1}}}', { maxDepth: 3 })).toEqual({ a: { b: { c: 1 } } });
    expect(textDepth('{"s":"[[[[{{{{\\"[["}')).toBe(1);
  });

  it('checks the depth of already-parsed bodies', () => {
    let deep: unknown = 1;
    for (let n = 0; n < 100; n += 1) deep = { next: deep };
    expect(() => assertDepth(deep, 64)).toThrow(PayloadTooDeepError);
    expect(() => assertDepth({ a: [{ b: 1 }] }, 3)).not.toThrow();
    expect(() => assertDepth({ a: [{ b: {} }] }, 3)).toThrow(PayloadTooDeepError);
  });

  it('invalid JSON is a typed PAYLOAD_UNPARSEABLE error', () => {
    expect(catchError(() => parseJsonSafely('{"a":'))).toMatchObject({ code: 'PAYLOAD_UNPARSEABLE', name: 'PayloadParseError' });
    expect(catchError(() => parseJsonSafely('{"a":'))).toBeInstanceOf(PayloadParseError);
  });

  it('the registry parses text bodies within its limits before validating', () => {
    const registry = shippedRegistry({ limits: { maxBytes: 200, maxDepth: 3 } });
    expect(registry.validate('device.telemetry@1', '{"deviceId":"d","ts":"2026-11-23T09:00:00Z","temperature":1}')).toEqual({ deviceId: 'd', ts: '2026-11-23T09:00:00Z', temperature: 1 });
    expect(catchError(() => registry.validate('device.telemetry@1', `{"deviceId":"${'d'.repeat(300)}"}`))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(catchError(() => registry.validate('device.telemetry@1', '{"a":{"b":{"c":{"d":1}}}}'))).toMatchObject({ code: 'PAYLOAD_TOO_DEEP' });
    expect(catchError(() => registry.validate('device.telemetry@1', { a: { b: { c: { d: 1 } } } }))).toMatchObject({ code: 'PAYLOAD_TOO_DEEP' });
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
