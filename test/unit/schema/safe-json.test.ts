import { describe, expect, it } from 'vitest';
import { assertAllowedKeys, assertDepth, JsonSchemaRegistry, parseJsonSafely, PayloadParseError, PayloadTooDeepError, PayloadTooLargeError, textDepth } from '../../../src/schema/index.ts';
import { withinLimits } from '../../../src/schema/safe-json.ts';
import { shippedRegistry } from './fixtures.ts';

describe('withinLimits (the one-walk check of an object body)', () => {
  it('passes a plain body, and says false wherever assertDepth or assertAllowedKeys would throw', () => {
    expect(withinLimits({ deviceId: 'd1', readings: [1, { c: 2 }], tags: null })).toBe(true);
    expect(withinLimits('text')).toBe(true);
    let deep: unknown = 1;
    for (let n = 0; n < 65; n += 1) deep = { next: deep };
    expect(withinLimits(deep, 64)).toBe(false);
    expect(withinLimits({ next: { next: 1 } }, 2)).toBe(true);
    expect(withinLimits({ next: { next: {} } }, 2)).toBe(false);
    expect(withinLimits(JSON.parse('{"a":[{"__proto__":{}}]}'))).toBe(false);
    expect(withinLimits({ list: [{}, { constructor: 1 }] })).toBe(false);
  });

  it('the registry still names the precise error for an object body it refuses', () => {
    const registry = new JsonSchemaRegistry({ contracts: [{ subject: 'open', version: 1, schema: { $id: 'urn:open:1', type: 'object' } }] });
    expect(catchError(() => registry.validate('open@1', JSON.parse('{"a":{"__proto__":{}}}')))).toMatchObject({ code: 'PAYLOAD_UNPARSEABLE', message: "key '__proto__' at /a is not allowed" });
    let deep: unknown = 1;
    for (let n = 0; n < 100; n += 1) deep = { next: deep };
    expect(() => registry.validate('open@1', deep)).toThrow(PayloadTooDeepError);
    expect(registry.validate('open@1', { kind: 'constructor' })).toEqual({ kind: 'constructor' });
  });
});

describe('safe JSON parsing', () => {
  it('parses text and bytes', () => {
    expect(parseJsonSafely('{"a":[1,{"b":"}"}]}')).toEqual({ a: [1, { b: '}' }] });
    expect(parseJsonSafely(new TextEncoder().encode('{"x":1}'))).toEqual({ x: 1 });
  });

  it('refuses a __proto__ key with a permanent PAYLOAD_UNPARSEABLE naming it and where it is, instead of dropping it', () => {
    const error = catchError(() => parseJsonSafely('{"a":{"b":{"__proto__":{"polluted":true}}}}'));
    expect(error).toBeInstanceOf(PayloadParseError);
    expect(error).toMatchObject({ code: 'PAYLOAD_UNPARSEABLE', permanent: true, message: "key '__proto__' at /a/b is not allowed" });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a constructor key, at the top level and inside arrays', () => {
    expect(catchError(() => parseJsonSafely('{"constructor":{"prototype":{"polluted":true}}}'))).toMatchObject({ message: "key 'constructor' at / is not allowed" });
    expect(catchError(() => parseJsonSafely('{"list":[{},{"constructor":1}]}'))).toMatchObject({ message: "key 'constructor' at /list/1 is not allowed" });
  });

  it('sees a forbidden key spelt with \\u escapes, and escapes the pointer', () => {
    expect(catchError(() => parseJsonSafely('{"a/b":{"\\u005f_proto__":{}}}'))).toMatchObject({ message: "key '__proto__' at /a~1b is not allowed" });
  });

  it('lets forbidden words through as values and inside longer keys', () => {
    expect(parseJsonSafely('{"kind":"constructor","__proto__x":1,"prototype":true,"s":"\\u0041"}')).toEqual({ kind: 'constructor', __proto__x: 1, prototype: true, s: 'A' });
  });

  it('refuses a forbidden own key in an object body too', () => {
    expect(() => assertAllowedKeys(JSON.parse('{"a":[{"__proto__":{}}]}'))).toThrow("key '__proto__' at /a/0 is not allowed");
    expect(() => assertAllowedKeys({ a: [{ b: 1 }], c: new Uint8Array(4) })).not.toThrow();
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

  it('the registry refuses a __proto__ key before the contract sees it, even where the contract allows any property', () => {
    const registry = new JsonSchemaRegistry({ contracts: [{ subject: 'open', version: 1, schema: { $id: 'urn:open:1', type: 'object' } }] });
    const body = '{"__proto__":{"polluted":true},"deviceId":"d"}';
    expect(catchError(() => registry.validate('open@1', body))).toMatchObject({ code: 'PAYLOAD_UNPARSEABLE', message: "key '__proto__' at / is not allowed" });
    expect(catchError(() => registry.validate('open@1', JSON.parse(body)))).toMatchObject({ code: 'PAYLOAD_UNPARSEABLE' });
    expect(registry.validate('open@1', '{"deviceId":"d"}')).toEqual({ deviceId: 'd' });
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
