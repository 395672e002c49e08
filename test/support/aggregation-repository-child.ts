// The writer the crash case of aggregation-repository-suite.ts kills with SIGKILL; also the fold the
// suite's own cases use (`foldInput`), so the child and the suite write groups the same way.
//
// Run as a child (see child-script.ts): <kind pg|pglite|redis> <target: URL or data dir> <name> [schema]
// Opens the repository of that kind on that store under `name`, prints "ready", then folds inputs
// in-0, in-1, … into keys k0…k4 with four concurrent writers (conflicts retried), completing a group
// at 4 inputs with leaseMs 0, and prints "ack <key> <input id>" once each add is acknowledged
// (added or completed). It never ends by itself.
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
 * Reads the key's group, folds `inputId` in and writes it at the version read, retrying on conflict
 * (the aggregator's loop). Resolves with the final outcome: added, completed or duplicate.
 */
export async function foldInput(repository: PersistentAggregationRepository<Probe>, key: string, inputId: string, options: FoldOptions = {}): Promise<AddOutcome<Probe>> {
  const { at = Date.now(), completeAt = Number.POSITIVE_INFINITY, leaseMs = 0, correlationId = inputId, extra } = options;
  for (let attempt = 0; attempt < 1_000; attempt += 1) {
    const group = await repository.get(key);
    const inputs = [...(group?.inputIds ?? []), inputId];
    const outcome = await repository.add({
      key,
      inputId,
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
  throw new Error(`foldInput: ${inputId} conflicted 1,000 times on ${key}`);
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
  const writer = async (): Promise<void> => {
    for (;;) {
      const n = next++;
      const key = `k${n % 5}`;
      const inputId = `in-${n}`;
      const outcome = await foldInput(repository, key, inputId, { completeAt: 4, leaseMs: 0 });
      process.stdout.write(outcome.kind === 'duplicate' ? `duplicate ${key} ${inputId}\n` : `ack ${key} ${inputId}\n`);
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
