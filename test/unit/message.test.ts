import { describe, expect, it } from 'vitest';
import { combineMessages, createMessage, deriveMessage, withBody, withHeaders } from '../../facade/index.ts';
import { isExpired } from '../../src/spi.ts';

describe('message model', () => {
  it('creates a message with a fresh id and a timestamp, keeping given headers', () => {
    const a = createMessage({ n: 1 }, { headers: { contentType: 'application/json', region: 'eu' } });
    const b = createMessage({ n: 1 });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.headers.timestamp).toBeTypeOf('number');
    expect(a.headers.contentType).toBe('application/json');
    expect(a.headers.region).toBe('eu');
  });

  it('withBody keeps id and headers but drops the schema header (the new body is unchecked)', () => {
    const m = createMessage({ c: 20 }, { headers: { schema: 'reading@1', correlationId: 'k' } });
    const t = withBody(m, { f: 68 });
    expect(t.id).toBe(m.id);
    expect(t.body).toEqual({ f: 68 });
    expect(t.headers.correlationId).toBe('k');
    expect('schema' in t.headers).toBe(false);
    expect(m.headers.schema).toBe('reading@1');
  });

  it('withHeaders adds and replaces without touching the original', () => {
    const m = createMessage('x', { headers: { a: 1 } });
    const n = withHeaders(m, { a: 2, b: true });
    expect(n.headers).toMatchObject({ a: 2, b: true });
    expect(m.headers.a).toBe(1);
  });

  it('deriveMessage sets causation to the parent, keeps correlation, and makes keyed ids deterministic', () => {
    const parent = createMessage('order', { headers: { correlationId: 'conv-1', attempt: 3, schema: 'order@1' } });
    const child = deriveMessage(parent, 'line', { key: '0' });
    expect(child.id).toBe(`${parent.id}/0`);
    expect(deriveMessage(parent, 'line', { key: '0' }).id).toBe(child.id);
    expect(child.headers.causationId).toBe(parent.id);
    expect(child.headers.correlationId).toBe('conv-1');
    expect(child.headers.attempt).toBeUndefined();
    expect(child.headers.schema).toBeUndefined();
    const orphan = createMessage('x');
    expect(deriveMessage(orphan, 'y').headers.correlationId).toBe(orphan.id);
    expect(deriveMessage(orphan, 'y').id).not.toBe(deriveMessage(orphan, 'y').id);
  });

  it('combineMessages derives the id from the constituents, in order', () => {
    const [a, b] = [createMessage(1), createMessage(2)];
    const ab = combineMessages([a, b], 3);
    expect(ab.id).toBe(combineMessages([a, b], 99).id);
    expect(ab.id).not.toBe(combineMessages([b, a], 3).id);
    expect(ab.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ab.headers.causationId).toBe(a.id);
  });

  it('isExpired compares expiresAt with now', () => {
    const m = createMessage(1, { headers: { expiresAt: 1_000 } });
    expect(isExpired(m, 999)).toBe(false);
    expect(isExpired(m, 1_000)).toBe(true);
    expect(isExpired(createMessage(1), Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
