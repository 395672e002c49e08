import { describe, expect, it } from 'vitest';
import type { IdempotencyStore } from '../../../src/stores/idempotency-store.ts';
import { sleep } from './support.ts';

/**
 * The `IdempotencyStore` contract (like MQTT.js's abstract store suite): every store passes it —
 * memory (test/unit/idempotent-consumer.test.ts), PostgreSQL (the PGlite and server suites), Redis.
 * `make(leaseMs)` returns a fresh, empty store whose claims hold for `leaseMs`.
 */
export function idempotencyStoreCases(name: string, make: (leaseMs: number) => Promise<IdempotencyStore> | IdempotencyStore): void {
  describe(`IdempotencyStore contract: ${name}`, { timeout: 30_000 }, () => {
    it('a claimed key is in progress until confirmed, then a duplicate', async () => {
      const store = await make(30_000);
      expect(await store.claim('m-1')).toBe('claimed');
      expect(await store.claim('m-1')).toBe('in-progress');
      await store.confirm('m-1');
      expect(await store.claim('m-1')).toBe('duplicate');
      expect(await store.claim('m-2')).toBe('claimed');
    });

    it('a released claim can be claimed again; a confirmed key is never released', async () => {
      const store = await make(30_000);
      expect(await store.claim('m-1')).toBe('claimed');
      await store.release('m-1');
      expect(await store.claim('m-1')).toBe('claimed');
      await store.confirm('m-1');
      await store.release('m-1');
      expect(await store.claim('m-1')).toBe('duplicate');
    });

    it('of concurrent claims of one key, exactly one wins', async () => {
      const store = await make(30_000);
      const results = await Promise.all(Array.from({ length: 8 }, () => store.claim('race')));
      expect(results.filter((result) => result === 'claimed')).toHaveLength(1);
      expect(results.filter((result) => result === 'in-progress')).toHaveLength(7);
    });

    it('a claim nobody confirms or releases (its process died) expires after the lease', async () => {
      const store = await make(150);
      expect(await store.claim('orphan')).toBe('claimed');
      expect(await store.claim('orphan')).toBe('in-progress');
      await sleep(400);
      expect(await store.claim('orphan')).toBe('claimed');
    });

    it('confirming without a claim records the key', async () => {
      const store = await make(30_000);
      await store.confirm('direct');
      expect(await store.claim('direct')).toBe('duplicate');
    });
  });
}
