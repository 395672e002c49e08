import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddOutcome, CompletedAggregate, PersistentAggregationRepository, StoredGroup } from '../../src/stores/persistent-aggregation-repository.ts';
import { foldInput, foldInputs, type Probe } from './aggregation-repository-child.ts';
import { ChildScript } from './child-script.ts';
import { until } from './wait.ts';

/**
 * The `PersistentAggregationRepository` contract: one suite every repository passes (like the
 * transport contract and MQTT.js's abstract store suite). The reference semantics are
 * `InMemoryPersistentAggregationRepository`'s (src/stores/persistent-aggregation-repository.ts).
 *
 * Runs on: memory (test/unit/aggregation-repository-memory.test.ts), PostgreSQL and PGlite
 * (test/integration/postgres-aggregation-repository.test.ts), Redis
 * (test/integration/redis-aggregation-repository.test.ts).
 *
 * How to call it:
 * ```ts
 * describeAggregationRepository('Redis', async () => ({
 *   open: ({ namespace, now, seenRetentionMs }) => Promise.resolve(new RedisAggregationRepository(redis, { name: namespace, now, seenRetentionMs })),
 *   child: { kind: 'redis', target: REDIS_URL },
 *   cleanup: async () => { … delete the keys … },
 * }), { crash: true, seenRetention: true });
 * ```
 * - `setup` runs once for the `describe` (`beforeAll`), `cleanup` after it (`afterAll`).
 * - Every case opens its repositories with a `namespace` of its own (unique per case and run): two
 *   `open`s with the same namespace are two instances on the SAME store — what two processes of one
 *   aggregator see — so their state must be shared. Give the namespace to the repository as its name.
 * - `now` is the case's clock (epoch ms) when it controls time; open with `Date.now` when absent.
 * - Features, known when the suite is declared: `crash` (needs `fixture.child`) kills a writer
 *   process mid-stream (test/support/aggregation-repository-child.ts, which opens `child.kind` at
 *   `child.target` with the namespace as name); `seenRetention` checks that an input id is forgotten
 *   `seenRetentionMs` after it was folded by the repository's `now` clock.
 */
export interface RepositoryFixture {
  /** A new instance on the same store as every other instance of `namespace`. */
  open(options: OpenOptions): Promise<PersistentAggregationRepository<Probe>>;
  /** What the crash child needs to reach the same store (required by the `crash` feature). */
  readonly child?: CrashChild;
  cleanup(): Promise<void>;
}

export interface OpenOptions {
  /** The repository's name: unique per case. */
  readonly namespace: string;
  readonly now?: () => number;
  readonly seenRetentionMs?: number;
}

export interface CrashChild {
  readonly kind: 'pg' | 'pglite' | 'redis';
  /** A URL (pg, redis) or a data directory (pglite). */
  readonly target: string;
  /** pg/pglite: the tables' schema, when not `public`. */
  readonly schema?: string;
  /** Before the child starts: PGlite is single-process, so the parent closes its database here. */
  beforeSpawn?(): Promise<void>;
  /** After the child is dead: the parent reopens what `beforeSpawn` closed. */
  afterExit?(): Promise<void>;
}

export interface SuiteFeatures {
  readonly crash?: boolean;
  readonly seenRetention?: boolean;
}

export type { Probe };

/** A clock the case moves by hand. */
class Clock {
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
}

const FAR_FUTURE = Number.MAX_SAFE_INTEGER;
const ALL = 100_000;

/** Every input id held by the open groups and the unconfirmed aggregates (claimed through `claimUnconfirmed(0, …)`: call it when no claim is held). */
async function everything(repository: PersistentAggregationRepository<Probe>): Promise<{ open: StoredGroup<Probe>[]; completed: CompletedAggregate<Probe>[]; inputs: string[] }> {
  const open = await repository.expired(FAR_FUTURE, ALL);
  const completed = await repository.claimUnconfirmed(0, ALL);
  const inputs = [...open.flatMap((group) => group.inputIds), ...completed.flatMap((aggregate) => aggregate.inputIds)];
  return { open, completed, inputs };
}

function group(key: string, inputIds: readonly string[], at: number, extra?: unknown): Omit<StoredGroup<Probe>, 'version'> {
  return { key, value: extra === undefined ? { inputs: inputIds } : { inputs: inputIds, extra }, inputIds, correlationId: inputIds[0] ?? key, firstAt: at, lastAt: at };
}

/** The version of an `added` outcome's group; throws on any other outcome (the case expected an add). */
export function versionOf<A>(outcome: AddOutcome<A>): number {
  if (outcome.kind !== 'added') throw new Error(`expected an added outcome, got ${JSON.stringify(outcome)}`);
  return outcome.group.version;
}

/** A new group's version: random in [1, 2^30] (versions never repeat across a key's groups), so cases compare versions relatively. */
export function expectInitialVersion(version: number): void {
  expect(Number.isSafeInteger(version), `version ${version}`).toBe(true);
  expect(version).toBeGreaterThanOrEqual(1);
  expect(version).toBeLessThanOrEqual(2 ** 30);
}

/** The shared suite; see `RepositoryFixture` for how to call it. */
export function describeAggregationRepository(label: string, setup: () => Promise<RepositoryFixture>, features: SuiteFeatures = {}): void {
  describe(`PersistentAggregationRepository contract: ${label}`, { timeout: 60_000 }, () => {
    let fixture: RepositoryFixture;
    let cases = 0;
    const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const namespace = (): string => `agg-${run}-${(cases += 1)}`;

    beforeAll(async () => {
      fixture = await setup();
    }, 60_000);
    afterAll(async () => {
      await fixture?.cleanup();
    }, 60_000);

    it('folds inputs into a group: added, a new group at a random version that counts writes from there, get returns the group as stored', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      expect(await repository.get('k')).toBeUndefined();
      const first = await repository.add({ key: 'k', inputIds: ['i1'], expectedVersion: 0, next: { ...group('k', ['i1'], 100), correlationId: 'corr-1' } });
      const v1 = versionOf(first);
      expectInitialVersion(v1);
      expect(first).toEqual({ kind: 'added', group: { key: 'k', value: { inputs: ['i1'] }, inputIds: ['i1'], correlationId: 'corr-1', firstAt: 100, lastAt: 100, version: v1 } });
      expect(await repository.get('k')).toEqual({ key: 'k', value: { inputs: ['i1'] }, inputIds: ['i1'], correlationId: 'corr-1', firstAt: 100, lastAt: 100, version: v1 });
      const second = await repository.add({ key: 'k', inputIds: ['i2'], expectedVersion: v1, next: { ...group('k', ['i1', 'i2'], 100), correlationId: 'corr-1', lastAt: 250 } });
      expect(second).toEqual({ kind: 'added', group: { key: 'k', value: { inputs: ['i1', 'i2'] }, inputIds: ['i1', 'i2'], correlationId: 'corr-1', firstAt: 100, lastAt: 250, version: v1 + 1 } });
      expect(await repository.get('k')).toEqual({ key: 'k', value: { inputs: ['i1', 'i2'] }, inputIds: ['i1', 'i2'], correlationId: 'corr-1', firstAt: 100, lastAt: 250, version: v1 + 1 });
      const third = await foldInput(repository, 'k', 'i3', { at: 300 });
      expect(third.kind === 'added' && third.group.version).toBe(v1 + 2);
      expect(await repository.get('other')).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 1, completed: 0 });
    });

    it('an input id folded before is a duplicate — in its open group, after its group completed, whatever the version — and changes nothing', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      await foldInput(repository, 'k', 'i1');
      await foldInput(repository, 'k', 'i2');
      const before = await repository.get('k');
      const current = before?.version ?? 0;
      expect(await repository.add({ key: 'k', inputIds: ['i1'], expectedVersion: current, next: group('k', ['i1', 'i2', 'i1'], 1) })).toEqual({ kind: 'duplicate', inputIds: ['i1'] });
      // duplicate is checked before the version: a stale version still says duplicate
      expect(await repository.add({ key: 'k', inputIds: ['i2'], expectedVersion: current - 1, next: group('k', ['x'], 1) })).toEqual({ kind: 'duplicate', inputIds: ['i2'] });
      expect(await repository.get('k')).toEqual(before);

      const completed = await foldInput(repository, 'k', 'i3', { completeAt: 3 });
      expect(completed.kind).toBe('completed');
      expect(await repository.add({ key: 'k', inputIds: ['i2'], expectedVersion: 0, next: group('k', ['i2'], 1) })).toEqual({ kind: 'duplicate', inputIds: ['i2'] });
      expect(await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: 0, next: group('k', ['i3'], 1), completion: { id: 'again', completedBy: 'size', leaseMs: 0 } })).toEqual({ kind: 'duplicate', inputIds: ['i3'] });
      expect(await repository.get('k')).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      // the id is remembered per key: another key folds it
      expect((await repository.add({ key: 'other', inputIds: ['i1'], expectedVersion: 0, next: group('other', ['i1'], 1) })).kind).toBe('added');
    });

    it('a write at a stale version is a conflict and changes nothing, not even the seen input ids', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      await foldInput(repository, 'k', 'i1');
      await foldInput(repository, 'k', 'i2');
      const before = await repository.get('k');
      const current = before?.version ?? 0;
      expect(await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: current - 1, next: group('k', ['i1', 'i3'], 1) })).toEqual({ kind: 'conflict' });
      expect(await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: 0, next: group('k', ['i3'], 1) })).toEqual({ kind: 'conflict' });
      expect(await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: current + 1, next: group('k', ['i3'], 1), completion: { id: 'c', completedBy: 'size', leaseMs: 0 } })).toEqual({ kind: 'conflict' });
      expect(await repository.add({ key: 'none', inputIds: ['i4'], expectedVersion: 1, next: group('none', ['i4'], 1) })).toEqual({ kind: 'conflict' });
      expect(await repository.get('k')).toEqual(before);
      expect(await repository.get('none')).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 1, completed: 0 });
      // i3 was not remembered by the failed writes: at the right version it folds in
      const added = await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: current, next: group('k', ['i1', 'i2', 'i3'], 1) });
      expect(added.kind === 'added' && added.group.version).toBe(current + 1);
      expect((await repository.add({ key: 'none', inputIds: ['i4'], expectedVersion: 0, next: group('none', ['i4'], 1) })).kind).toBe('added');
    });

    it('a batch of inputs folds in one write (one version), and every id of it is remembered', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      const v1 = versionOf(await foldInput(repository, 'k', 'i0'));
      const batch = ['b1', 'b2', 'b3', 'b4', 'b5'];
      const added = await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1, next: group('k', ['i0', ...batch], 1) });
      expect(added).toEqual({ kind: 'added', group: { ...group('k', ['i0', ...batch], 1), version: v1 + 1 } });
      const before = await repository.get('k');
      expect(before?.version).toBe(v1 + 1);
      for (const inputId of batch) {
        expect(await repository.add({ key: 'k', inputIds: [inputId], expectedVersion: v1 + 1, next: group('k', ['i0', ...batch, inputId], 1) }), inputId).toEqual({ kind: 'duplicate', inputIds: [inputId] });
      }
      expect(await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1 + 1, next: group('k', [...batch], 1) })).toEqual({ kind: 'duplicate', inputIds: batch });
      expect(await repository.get('k')).toEqual(before);
      // remembered per key: another key folds the same batch
      expect((await repository.add({ key: 'other', inputIds: batch, expectedVersion: 0, next: group('other', batch, 1) })).kind).toBe('added');
    });

    it('a batch with ids seen before is a duplicate naming exactly those, in the write\'s order, and writes nothing; without them it folds', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      const v1 = versionOf(await foldInputs(repository, 'k', ['a', 'b', 'c']));
      const before = await repository.get('k');
      expect(before?.version).toBe(v1);
      const batch = ['x1', 'b', 'x2', 'a', 'x3'];
      expect(await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1, next: group('k', ['a', 'b', 'c', ...batch], 1) })).toEqual({ kind: 'duplicate', inputIds: ['b', 'a'] });
      // checked before the version, and before a completion: nothing completes
      expect(await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1 + 9, next: group('k', batch, 1) })).toEqual({ kind: 'duplicate', inputIds: ['b', 'a'] });
      expect(await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1, next: group('k', ['a', 'b', 'c', ...batch], 1), completion: { id: 'no', completedBy: 'size', leaseMs: 0 } })).toEqual({ kind: 'duplicate', inputIds: ['b', 'a'] });
      expect(await repository.get('k')).toEqual(before);
      expect(await repository.counts()).toEqual({ open: 1, completed: 0 });
      // the others were not remembered: the write of the three others succeeds, at the version it read
      const rest = ['x1', 'x2', 'x3'];
      const added = await repository.add({ key: 'k', inputIds: rest, expectedVersion: v1, next: group('k', ['a', 'b', 'c', ...rest], 1) });
      expect(added).toEqual({ kind: 'added', group: { ...group('k', ['a', 'b', 'c', ...rest], 1), version: v1 + 1 } });
      expect(await repository.add({ key: 'k', inputIds: ['x3', 'new', 'x1'], expectedVersion: v1 + 1, next: group('k', ['x'], 1) })).toEqual({ kind: 'duplicate', inputIds: ['x3', 'x1'] });
    });

    it('a batch completes its group: the aggregate holds every input id of the group, and the batch is remembered', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      const v1 = versionOf(await foldInput(repository, 'k', 'i1', { at: 10 }));
      clock.t += 1;
      const batch = ['i2', 'i3', 'i4'];
      const outcome = await repository.add({ key: 'k', inputIds: batch, expectedVersion: v1, next: { ...group('k', ['i1', ...batch], 10), lastAt: 20 }, completion: { id: 'agg-batch', completedBy: 'size', leaseMs: 1_000 } });
      expect(outcome).toEqual({
        kind: 'completed',
        aggregate: { id: 'agg-batch', key: 'k', value: { inputs: ['i1', 'i2', 'i3', 'i4'] }, inputIds: ['i1', 'i2', 'i3', 'i4'], correlationId: 'i1', firstAt: 10, lastAt: 20, completedBy: 'size', completedAt: clock.t, attempts: 1 },
      });
      expect(await repository.get('k')).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      expect(await repository.add({ key: 'k', inputIds: ['i5', ...batch], expectedVersion: 0, next: group('k', ['i5', ...batch], 1) })).toEqual({ kind: 'duplicate', inputIds: batch });
      // a first write may be a batch that completes at once
      const solo = await repository.add({ key: 'solo', inputIds: ['s1', 's2'], expectedVersion: 0, next: group('solo', ['s1', 's2'], 30), completion: { id: 'agg-solo', completedBy: 'predicate', leaseMs: 0 } });
      expect(solo.kind === 'completed' && solo.aggregate.inputIds).toEqual(['s1', 's2']);
      expect(await repository.counts()).toEqual({ open: 0, completed: 2 });
    });

    it('an input completes its group: the group is gone and the aggregate is stored, claimed by the caller (attempts 1)', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      const v1 = versionOf(await foldInput(repository, 'k', 'i1', { at: 10, correlationId: 'corr' }));
      clock.t += 5;
      const outcome = await repository.add({
        key: 'k',
        inputIds: ['i2'],
        expectedVersion: v1,
        next: { ...group('k', ['i1', 'i2'], 10), correlationId: 'corr', lastAt: 20 },
        completion: { id: 'agg-1', completedBy: 'size', leaseMs: 1_000 },
      });
      const aggregate = { id: 'agg-1', key: 'k', value: { inputs: ['i1', 'i2'] }, inputIds: ['i1', 'i2'], correlationId: 'corr', firstAt: 10, lastAt: 20, completedBy: 'size', completedAt: clock.t, attempts: 1 };
      expect(outcome).toEqual({ kind: 'completed', aggregate });
      expect(await repository.get('k')).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      expect(await repository.claimUnconfirmed(1_000, 10)).toEqual([]); // claimed by the completion
      // a first input may complete its group at once (expectedVersion 0)
      const single = await repository.add({ key: 'solo', inputIds: ['s1'], expectedVersion: 0, next: group('solo', ['s1'], 30), completion: { id: 'agg-solo', completedBy: 'predicate', leaseMs: 0 } });
      expect(single).toEqual({ kind: 'completed', aggregate: { id: 'agg-solo', key: 'solo', value: { inputs: ['s1'] }, inputIds: ['s1'], correlationId: 's1', firstAt: 30, lastAt: 30, completedBy: 'predicate', completedAt: clock.t, attempts: 1 } });
      expect(await repository.get('solo')).toBeUndefined();
      // a key completed may open a new group
      expect((await repository.add({ key: 'k', inputIds: ['i3'], expectedVersion: 0, next: group('k', ['i3'], 40) })).kind).toBe('added');
      expect(await repository.counts()).toEqual({ open: 1, completed: 2 });
    });

    it('complete() completes an open group at its version only; a stale version or a missing group leaves everything as it was', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      const v1 = versionOf(await foldInput(repository, 'k', 'i1', { at: 10 }));
      expect(versionOf(await foldInput(repository, 'k', 'i2', { at: 20 }))).toBe(v1 + 1);
      expect(await repository.complete('k', v1, { id: 'stale', completedBy: 'timeout', leaseMs: 0 })).toBeUndefined();
      expect(await repository.complete('k', v1 + 2, { id: 'ahead', completedBy: 'timeout', leaseMs: 0 })).toBeUndefined();
      expect(await repository.complete('missing', v1, { id: 'missing', completedBy: 'timeout', leaseMs: 0 })).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 1, completed: 0 });
      clock.t += 1;
      const aggregate = await repository.complete('k', v1 + 1, { id: 'agg-k', completedBy: 'timeout', leaseMs: 500 });
      expect(aggregate).toEqual({ id: 'agg-k', key: 'k', value: { inputs: ['i1', 'i2'] }, inputIds: ['i1', 'i2'], correlationId: 'i1', firstAt: 10, lastAt: 20, completedBy: 'timeout', completedAt: clock.t, attempts: 1 });
      expect(await repository.get('k')).toBeUndefined();
      expect(await repository.complete('k', v1 + 1, { id: 'twice', completedBy: 'timeout', leaseMs: 0 })).toBeUndefined();
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
    });

    it('two instances racing to complete the same group: exactly one gets it, every round', async () => {
      const name = namespace();
      const [a, b] = await Promise.all([fixture.open({ namespace: name }), fixture.open({ namespace: name })]);
      const rounds = 25;
      for (let round = 0; round < rounds; round += 1) {
        const key = `k${round}`;
        const version = versionOf(await foldInput(a, key, `${key}-i1`));
        const viaAdd = round % 2 === 1; // odd rounds: a completes with a new input while b completes by timeout
        const [first, second] = await Promise.all([
          viaAdd
            ? a.add({ key, inputIds: [`${key}-i2`], expectedVersion: version, next: group(key, [`${key}-i1`, `${key}-i2`], 1), completion: { id: `${key}-a`, completedBy: 'size', leaseMs: 60_000 } }).then((outcome) => (outcome.kind === 'completed' ? outcome.aggregate : undefined))
            : a.complete(key, version, { id: `${key}-a`, completedBy: 'timeout', leaseMs: 60_000 }),
          b.complete(key, version, { id: `${key}-b`, completedBy: 'timeout', leaseMs: 60_000 }),
        ]);
        expect([first, second].filter((aggregate) => aggregate !== undefined), `round ${round}`).toHaveLength(1);
        expect(await a.get(key)).toBeUndefined();
      }
      expect(await b.counts()).toEqual({ open: 0, completed: rounds });
    });

    it('ABA: a stale view of a key\'s completed group never matches the key\'s next group — the stale write is a conflict and the new group is unchanged, round after round', async () => {
      // A reads group G1 of k; B completes G1 and opens G2 on k with as many writes as A saw. Were a new
      // group to start at a fixed version, G2 would be at A's stale version and A's write would overwrite it.
      const name = namespace();
      const [a, b] = await Promise.all([fixture.open({ namespace: name }), fixture.open({ namespace: name })]);
      const rounds = 50;
      const initialVersions = new Set<number>();
      for (let round = 0; round < rounds; round += 1) {
        const writes = 1 + (round % 3);
        const id = (who: string, n: number): string => `r${round}-${who}${n}`;
        let stale: StoredGroup<Probe> | undefined;
        for (let n = 0; n < writes; n += 1) {
          const outcome = await foldInput(a, 'k', id('a', n));
          stale = outcome.kind === 'added' ? outcome.group : undefined;
        }
        if (stale === undefined) throw new Error(`round ${round}: A's group was not added`);
        expect(stale.inputIds, `round ${round}`).toHaveLength(writes);
        // B completes G1: by timeout on even rounds, with an input on odd ones
        const closed = round % 2 === 0
          ? await b.complete('k', stale.version, { id: `${name}-${round}-g1`, completedBy: 'timeout', leaseMs: 0 })
          : await foldInput(b, 'k', id('b-close', 0), { completeAt: writes + 1 }).then((outcome) => (outcome.kind === 'completed' ? outcome.aggregate : undefined));
        expect(closed?.inputIds.slice(0, writes), `round ${round}: G1 completed by B`).toEqual(stale.inputIds);
        // B opens G2 on the same key, written as many times as A's view of G1
        const first = versionOf(await foldInput(b, 'k', id('b', 0)));
        expectInitialVersion(first);
        initialVersions.add(first);
        for (let n = 1; n < writes; n += 1) expect(versionOf(await foldInput(b, 'k', id('b', n))), `round ${round}`).toBe(first + n);
        const g2 = await b.get('k');
        expect(g2?.inputIds, `round ${round}`).toEqual(Array.from({ length: writes }, (_, n) => id('b', n)));

        // A writes on its stale view of G1: a conflict, whether it folds, completes, or completes without an input
        const late = id('a-late', 0);
        const inputs = [...stale.inputIds, late];
        const staleWrite = { key: 'k', inputIds: [late], expectedVersion: stale.version, next: { ...stale, value: { inputs }, inputIds: inputs, lastAt: stale.lastAt + 1 } };
        expect(await a.add(staleWrite), `round ${round}: stale add`).toEqual({ kind: 'conflict' });
        expect(await a.add({ ...staleWrite, completion: { id: `${name}-${round}-stale`, completedBy: 'size', leaseMs: 0 } }), `round ${round}: stale completing add`).toEqual({ kind: 'conflict' });
        expect(await a.complete('k', stale.version, { id: `${name}-${round}-stale-timeout`, completedBy: 'timeout', leaseMs: 0 }), `round ${round}: stale complete`).toBeUndefined();
        expect(await a.get('k'), `round ${round}: G2 unchanged`).toEqual(g2);

        // A reads again and folds its input into G2 (not remembered by the conflicts), completing it
        const retried = await foldInput(a, 'k', late, { completeAt: writes + 1 });
        expect(retried.kind === 'completed' && retried.aggregate.inputIds, `round ${round}`).toEqual([...(g2?.inputIds ?? []), late]);
        expect(await a.get('k')).toBeUndefined();
      }
      expect(initialVersions.size, 'new groups all started at one version').toBeGreaterThan(1);
      expect(await a.counts()).toEqual({ open: 0, completed: 2 * rounds });
    });

    it('two instances folding into the same keys at once, retrying on conflict: every input in exactly one group, no fold lost', async () => {
      const name = namespace();
      const [a, b] = await Promise.all([fixture.open({ namespace: name }), fixture.open({ namespace: name })]);
      const inputs = Array.from({ length: 60 }, (_, n) => `in-${n}`);
      const writer = async (repository: PersistentAggregationRepository<Probe>, mine: readonly string[]): Promise<void> => {
        for (const input of mine) {
          const outcome = await foldInput(repository, `k${Number(input.slice(3)) % 2}`, input, { completeAt: 7, leaseMs: 0 });
          expect(outcome.kind).not.toBe('duplicate');
        }
      };
      await Promise.all([
        writer(a, inputs.filter((_, n) => n % 4 === 0)),
        writer(b, inputs.filter((_, n) => n % 4 === 1)),
        writer(a, inputs.filter((_, n) => n % 4 === 2)),
        writer(b, inputs.filter((_, n) => n % 4 === 3)),
      ]);
      const { open, completed, inputs: stored } = await everything(a);
      expect([...stored].sort()).toEqual([...inputs].sort());
      for (const held of [...open, ...completed]) expect(held.value.inputs).toEqual(held.inputIds); // each write folded on the latest group
      expect(completed.length).toBeGreaterThanOrEqual(6);
      expect(completed.every((aggregate) => aggregate.inputIds.length === 7)).toBe(true);
    });

    it('two instances folding batches into the same keys at once, retrying on conflict: every input in exactly one group', async () => {
      const name = namespace();
      const [a, b] = await Promise.all([fixture.open({ namespace: name }), fixture.open({ namespace: name })]);
      const batches = Array.from({ length: 24 }, (_, n) => Array.from({ length: 1 + (n % 4) }, (__, m) => `in-${n}-${m}`));
      const writer = async (repository: PersistentAggregationRepository<Probe>, mine: readonly (readonly string[])[]): Promise<void> => {
        for (const [n, batch] of mine.entries()) {
          const outcome = await foldInputs(repository, `k${n % 2}`, batch, { completeAt: 6, leaseMs: 0 });
          expect(outcome.kind).not.toBe('duplicate');
        }
      };
      await Promise.all([0, 1, 2, 3].map((w) => writer(w % 2 === 0 ? a : b, batches.filter((_, n) => n % 4 === w))));
      const { open, completed, inputs: stored } = await everything(b);
      expect([...stored].sort()).toEqual(batches.flat().sort());
      for (const held of [...open, ...completed]) expect(held.value.inputs).toEqual(held.inputIds);
      expect(completed.length).toBeGreaterThan(0);
      expect(completed.every((aggregate) => aggregate.inputIds.length >= 6)).toBe(true);
    });

    it('claimUnconfirmed: nothing before the lease expires, then claimed again with attempts counted; released at once; confirm forgets', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      const version = versionOf(await foldInput(repository, 'k', 'i1', { at: clock.t }));
      const aggregate = await repository.complete('k', version, { id: 'agg', completedBy: 'timeout', leaseMs: 1_000 });
      expect(aggregate?.attempts).toBe(1);
      expect(await repository.claimUnconfirmed(500, 10)).toEqual([]);
      clock.t += 999;
      expect(await repository.claimUnconfirmed(500, 10)).toEqual([]);
      clock.t += 1;
      expect(await repository.claimUnconfirmed(500, 10)).toEqual([{ ...aggregate, attempts: 2 }]);
      expect(await repository.claimUnconfirmed(500, 10)).toEqual([]); // claimed for 500 ms now
      clock.t += 500;
      expect((await repository.claimUnconfirmed(60_000, 10)).map((claimed) => claimed.attempts)).toEqual([3]);
      await repository.release('agg');
      await repository.release('agg'); // idempotent
      expect((await repository.claimUnconfirmed(60_000, 10)).map((claimed) => claimed.attempts)).toEqual([4]);
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      await repository.confirm('agg');
      await repository.confirm('agg'); // idempotent
      await repository.release('agg'); // nothing to release
      await repository.confirm('never-there');
      expect(await repository.counts()).toEqual({ open: 0, completed: 0 });
      clock.t += 120_000;
      expect(await repository.claimUnconfirmed(0, 10)).toEqual([]);
    });

    it('claimUnconfirmed takes the oldest completions first, at most `limit`', async () => {
      const clock = new Clock();
      const repository = await fixture.open({ namespace: namespace(), now: clock.now });
      for (const [n, key] of ['c', 'a', 'b'].entries()) {
        const version = versionOf(await foldInput(repository, key, `${key}-1`, { at: clock.t }));
        clock.t += 10;
        await repository.complete(key, version, { id: `agg-${key}`, completedBy: 'timeout', leaseMs: 100 - n * 40 }); // leases end out of order
      }
      clock.t += 1_000;
      expect((await repository.claimUnconfirmed(60_000, 2)).map((claimed) => claimed.id)).toEqual(['agg-c', 'agg-a']);
      expect((await repository.claimUnconfirmed(60_000, 2)).map((claimed) => claimed.id)).toEqual(['agg-b']);
      expect(await repository.claimUnconfirmed(60_000, 2)).toEqual([]);
    });

    it('concurrent claimers never get the same aggregate', async () => {
      const clock = new Clock();
      const name = namespace();
      const [a, b] = await Promise.all([fixture.open({ namespace: name, now: clock.now }), fixture.open({ namespace: name, now: clock.now })]);
      const total = 30;
      for (let n = 0; n < total; n += 1) {
        clock.t += 1;
        await foldInput(a, `k${n}`, `i${n}`, { at: clock.t, completeAt: 1, leaseMs: 0 });
      }
      clock.t += 1;
      const claimed: string[] = [];
      for (let round = 0; round < total; round += 1) {
        const batches = await Promise.all([a.claimUnconfirmed(60_000, 4), b.claimUnconfirmed(60_000, 4), a.claimUnconfirmed(60_000, 3), b.claimUnconfirmed(60_000, 3)]);
        const got = batches.flat();
        if (got.length === 0) break;
        claimed.push(...got.map((aggregate) => aggregate.id));
        expect(got.every((aggregate) => aggregate.attempts === 2)).toBe(true);
      }
      expect(claimed).toHaveLength(total);
      expect(new Set(claimed).size).toBe(total);
    });

    it('expired() lists open groups whose lastAt is at or before the time, oldest first, at most `limit`', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      await foldInput(repository, 'late', 'l1', { at: 300 });
      await foldInput(repository, 'early', 'e1', { at: 100 });
      await foldInput(repository, 'middle', 'm1', { at: 200 });
      await foldInput(repository, 'done', 'd1', { at: 50, completeAt: 1 }); // completed: not open
      const keys = async (before: number, limit: number): Promise<string[]> => (await repository.expired(before, limit)).map((stored) => stored.key);
      expect(await keys(200, 10)).toEqual(['early', 'middle']);
      expect(await keys(300, 2)).toEqual(['early', 'middle']);
      expect(await keys(FAR_FUTURE, 10)).toEqual(['early', 'middle', 'late']);
      expect(await keys(99, 10)).toEqual([]);
      expect(await keys(FAR_FUTURE, 0)).toEqual([]);
      // a fold moves lastAt
      await foldInput(repository, 'early', 'e2', { at: 400 });
      expect(await keys(FAR_FUTURE, 10)).toEqual(['middle', 'late', 'early']);
      expect((await repository.expired(FAR_FUTURE, 1))[0]).toEqual(await repository.get('middle'));
    });

    it('counts() counts open groups and unconfirmed aggregates of this repository only', async () => {
      const name = namespace();
      const repository = await fixture.open({ namespace: name });
      const neighbour = await fixture.open({ namespace: namespace() });
      await foldInput(neighbour, 'n', 'n1', { completeAt: 1 });
      expect(await repository.counts()).toEqual({ open: 0, completed: 0 });
      for (const key of ['a', 'b', 'c']) await foldInput(repository, key, `${key}1`);
      await foldInput(repository, 'd', 'd1', { completeAt: 1 });
      await foldInput(repository, 'a', 'a2', { completeAt: 2 });
      expect(await repository.counts()).toEqual({ open: 2, completed: 2 });
      expect(await (await fixture.open({ namespace: name })).counts()).toEqual({ open: 2, completed: 2 });
      expect(await neighbour.counts()).toEqual({ open: 0, completed: 1 });
    });

    it('values come back as JSON round-trips them, open and completed', async () => {
      const repository = await fixture.open({ namespace: namespace() });
      const extra = {
        text: 'quotes " \' backslash \\ newline \n tab \t nul \u0000 unicode é ü 中文 🎉',
        numbers: [0, -1, 1.5, 1e21, Number.MAX_SAFE_INTEGER, -0.000001],
        flags: [true, false, null],
        nested: { deep: { deeper: [[], {}, [{ a: 1 }]] }, empty: '' },
        dropped: undefined,
        date: new Date(0),
        'weird key \u0001': 'x',
      };
      const expected = JSON.parse(JSON.stringify({ inputs: ['j1'], extra })) as Probe;
      const added = await foldInput(repository, 'json', 'j1', { extra });
      expect(added.kind === 'added' && added.group.value).toStrictEqual(expected);
      expect((await repository.get('json'))?.value).toStrictEqual(expected);
      expect((await repository.expired(FAR_FUTURE, 10))[0]?.value).toStrictEqual(expected);
      const completed = await repository.complete('json', versionOf(added), { id: 'agg-json', completedBy: 'stop', leaseMs: 0 });
      expect(completed?.value).toStrictEqual(expected);
      expect((await repository.claimUnconfirmed(0, 10))[0]?.value).toStrictEqual(expected);
      // an awkward key and input id survive too
      const key = 'key with spaces, "quotes", ✓ and \\';
      expect((await foldInput(repository, key, 'id ✓ "1"')).kind).toBe('added');
      expect((await repository.get(key))?.inputIds).toEqual(['id ✓ "1"']);
      expect((await foldInput(repository, key, 'id ✓ "1"')).kind).toBe('duplicate');
    });

    if (features.seenRetention === true) {
      it('an input id is forgotten seenRetentionMs after it was folded (by the repository clock)', async () => {
        const clock = new Clock();
        const repository = await fixture.open({ namespace: namespace(), now: clock.now, seenRetentionMs: 1_000 });
        await foldInput(repository, 'k', 'i1', { at: clock.t });
        clock.t += 999;
        expect((await foldInput(repository, 'k', 'i1', { at: clock.t })).kind).toBe('duplicate');
        clock.t += 1;
        const again = await foldInput(repository, 'k', 'i1', { at: clock.t });
        expect(again.kind === 'added' && again.group.inputIds).toEqual(['i1', 'i1']);
        expect((await foldInput(repository, 'k', 'i1', { at: clock.t })).kind).toBe('duplicate'); // remembered again from now
      });
    }

    if (features.crash === true) {
      it('crash: a writer killed with SIGKILL mid-stream — every acknowledged input is in exactly one group, and is a duplicate when redelivered', async () => {
        const child = fixture.child;
        if (child === undefined) throw new Error('the crash feature needs fixture.child');
        const name = namespace();
        await child.beforeSpawn?.();
        const acked = (lines: readonly string[]): Array<{ key: string; inputs: string[] }> =>
          lines.filter((line) => line.startsWith('ack ')).map((line) => {
            const [, key = '', inputs = ''] = line.split(' ');
            return { key, inputs: inputs.split(',') };
          });
        const ackedInputs = (lines: readonly string[]): number => acked(lines).reduce((total, batch) => total + batch.inputs.length, 0);
        const writer = new ChildScript('test/support/aggregation-repository-child.ts', [child.kind, child.target, name, child.schema ?? '']);
        let exited = false;
        void writer.exited.then(() => (exited = true));
        try {
          await until(() => ackedInputs(writer.lines) >= 80 || exited, () => `child: ${writer.lines.slice(-3).join(' | ') || 'no output'}`, 45_000);
        } finally {
          await writer.kill();
        }
        await child.afterExit?.();
        const acknowledged = acked(writer.lines);
        expect(ackedInputs(writer.lines), 'the child exited before it was killed').toBeGreaterThanOrEqual(80);
        expect(acknowledged.some((batch) => batch.inputs.length > 1), 'the child wrote batches').toBe(true);
        expect(writer.lines.filter((line) => line.startsWith('duplicate '))).toEqual([]);

        const repository = await fixture.open({ namespace: name });
        const { open, completed, inputs } = await everything(repository);
        expect(new Set(inputs).size, 'an input is in two groups').toBe(inputs.length);
        const stored = new Set(inputs);
        expect(acknowledged.flatMap((batch) => batch.inputs).filter((input) => !stored.has(input)), 'acknowledged inputs lost').toEqual([]);
        for (const held of [...open, ...completed]) expect(held.value.inputs).toEqual(held.inputIds);
        expect(completed.length).toBeGreaterThan(0);
        for (const { key, inputs: batch } of acknowledged) {
          const current = await repository.get(key);
          const redeliver = async (ids: readonly string[]): Promise<unknown> => repository.add({ key, inputIds: ids, expectedVersion: current?.version ?? 0, next: group(key, [...(current?.inputIds ?? []), ...ids], 1) });
          expect(await redeliver(batch), `${batch.join(',')} redelivered`).toEqual({ kind: 'duplicate', inputIds: batch });
          for (const input of batch) expect(await redeliver([input]), `${input} redelivered`).toEqual({ kind: 'duplicate', inputIds: [input] });
        }
      });
    }
  });
}
