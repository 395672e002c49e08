// The writer the crash case of aggregation-repository-suite.ts kills with SIGKILL; also the fold the
// suite's own cases use (`foldInput`), so the child and the suite write groups the same way.
//
// Run as a child (see child-script.ts): <kind pg|pglite|redis> <target: URL or data dir> <name> [schema]
// Opens the repository of that kind on that store under `name`, prints "ready", then folds inputs
// in-0, in-1, … into keys k0…k4 with four concurrent writers (conflicts retried), in batches of 1 to 5
// inputs per write, completing a group once it holds 4 inputs or more, with leaseMs 0, and prints
// "ack <key> <id>,<id>,…" once each batch's add is acknowledged (added or completed). It never ends
// by itself.
import { pathToFileURL } from 'node:url';
import type { AddOutcome, PersistentAggregationRepository } from '../../src/stores/persistent-aggregation-repository.ts';

/** The aggregate value every case folds: the input ids in fold order (so a group's value must equal its `inputIds`), plus anything. */
export interface Probe {
  readonly inputs: readonly string[];
  readonly extra?: unknown;
}

export interface FoldOptions {
  /** The fold's clock (the group's firstAt/lastAt). */
  readonly at?: number;
  /** Complete the group once it holds this many inputs. */
  readonly completeAt?: number;
  readonly leaseMs?: number;
  readonly correlationId?: string;
  readonly extra?: unknown;
}

/**
 * Reads the key's group, folds `inputIds` in (one write, in order) at the version read, retrying on
 * conflict (the aggregator's loop). Resolves with the final outcome: added, completed or duplicate
 * (then nothing was written: the caller decides what to fold again). The group completes when it
 * holds `completeAt` inputs or more after the write, its aggregate id `agg:<key>:<ids joined by ,>`.
 */
export async function foldInputs(repository: PersistentAggregationRepository<Probe>, key: string, inputIds: readonly string[], options: FoldOptions = {}): Promise<AddOutcome<Probe>> {
  const { at = Date.now(), completeAt = Number.POSITIVE_INFINITY, leaseMs = 0, correlationId = inputIds[0] ?? key, extra } = options;
  for (let attempt = 0; attempt < 1_000; attempt += 1) {
    const group = await repository.get(key);
    const inputs = [...(group?.inputIds ?? []), ...inputIds];
    const outcome = await repository.add({
      key,
      inputIds,
      expectedVersion: group?.version ?? 0,
      next: {
        key,
        value: extra === undefined ? { inputs } : { inputs, extra },
        inputIds: inputs,
        correlationId: group?.correlationId ?? correlationId,
        firstAt: group?.firstAt ?? at,
        lastAt: at,
      },
      completion: inputs.length >= completeAt ? { id: `agg:${key}:${inputs.join(',')}`, completedBy: 'size', leaseMs } : undefined,
    });
    if (outcome.kind !== 'conflict') return outcome;
  }
  throw new Error(`foldInputs: ${inputIds.join(',')} conflicted 1,000 times on ${key}`);
}

/** `foldInputs` of one input. */
export function foldInput(repository: PersistentAggregationRepository<Probe>, key: string, inputId: string, options: FoldOptions = {}): Promise<AddOutcome<Probe>> {
  return foldInputs(repository, key, [inputId], options);
}

/** What the child needs of a repository module that may not exist yet (Redis). */
type RepositoryConstructor = new (client: unknown, options: { name: string }) => PersistentAggregationRepository<Probe>;

async function openRepository(kind: string, target: string, name: string, schema: string | undefined): Promise<PersistentAggregationRepository<Probe>> {
  if (kind === 'redis') {
    const { Redis } = await import('ioredis');
    const path = '../../adapters/redis/redis-aggregation-repository.ts';
    const { RedisAggregationRepository } = (await import(path)) as { RedisAggregationRepository: RepositoryConstructor };
    return new RedisAggregationRepository(new Redis(target), { name });
  }
  const { openDatabase, openEmbeddedDatabase, PostgresAggregationRepository } = await import('../../adapters/postgres/index.ts');
  const { silentLogger } = await import('../../src/core/index.ts');
  const database = kind === 'pglite' ? await openEmbeddedDatabase({ dataDir: target }) : await openDatabase({ url: target, log: silentLogger });
  return PostgresAggregationRepository.open<Probe>(database, { name, schema });
}

async function main(): Promise<void> {
  const [kind = '', target = '', name = '', schema] = process.argv.slice(2);
  if (!['pg', 'pglite', 'redis'].includes(kind) || target === '' || name === '') throw new Error(`usage: <pg|pglite|redis> <target> <name> [schema], got ${process.argv.slice(2).join(' ')}`);
  const repository = await openRepository(kind, target, name, schema === '' ? undefined : schema);
  process.stdout.write('ready\n');
  let next = 0;
  let batches = 0;
  const writer = async (): Promise<void> => {
    for (;;) {
      const batch = batches++;
      const key = `k${batch % 5}`;
      const size = 1 + ((batch + Math.floor(batch / 5)) % 5); // 1..5, every size on every key
      const inputIds = Array.from({ length: size }, () => `in-${next++}`);
      const outcome = await foldInputs(repository, key, inputIds, { completeAt: 4, leaseMs: 0 });
      process.stdout.write(`${outcome.kind === 'duplicate' ? 'duplicate' : 'ack'} ${key} ${inputIds.join(',')}\n`);
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`aggregation-repository-child: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
