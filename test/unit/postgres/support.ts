import { randomBytes } from 'node:crypto';
import type { Message } from '../../../src/core/index.ts';
import type { Database, OutboxPublisher } from '../../../adapters/postgres/index.ts';
import { sleep, until as waitUntil } from '../../support/wait.ts';

/** Helpers shared by the PostgreSQL suites (PGlite in unit tests, a real server in integration tests). */

export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name of its own for each test: test files run in parallel on one database. */
export function uniqueSchema(label: string): string {
  return `t_${label}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function dropSchema(db: Database, schema: string): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

export { sleep };

/** `until` with the longer default the relay tests need (lease take-overs, 10k-event runs). */
export const until = (check: () => boolean | Promise<boolean>, describe: () => string, timeoutMs = 20_000): Promise<void> => waitUntil(check, describe, timeoutMs);

/** The body the ordering tests publish: a partition key and a sequence number within it. */
export interface Numbered {
  readonly key: string;
  readonly seq: number;
}

/**
 * Wraps the destination the relay publishes to (an in-process stand-in in unit tests, the real
 * transports in integration tests) and records what it confirmed, in order. It also checks the
 * relay's promises as they happen: a publish starting for a partition that already has one in
 * flight, or for a message already in flight, is a violation.
 */
export class RecordingPublisher implements OutboxPublisher {
  readonly confirmed: Message[] = [];
  readonly attempts = new Map<string, number>();
  readonly violations: string[] = [];
  private readonly inFlightKeys = new Set<string>();
  private readonly inFlightIds = new Set<string>();

  constructor(
    private readonly inner: OutboxPublisher | undefined = undefined,
    private readonly options: { delayMs?: number; fail?: (message: Message, attempt: number) => Error | undefined } = {},
  ) {}

  async publish(uri: string, messages: readonly Message[]): Promise<void> {
    const keys = new Set(messages.map((message) => keyOf(message)).filter((key): key is string => key !== undefined));
    for (const key of keys) {
      if (this.inFlightKeys.has(key)) this.violations.push(`partition ${key} published concurrently`);
      this.inFlightKeys.add(key);
    }
    for (const message of messages) {
      if (this.inFlightIds.has(message.id)) this.violations.push(`message ${message.id} published concurrently`);
      this.inFlightIds.add(message.id);
    }
    try {
      for (const message of messages) {
        const attempt = (this.attempts.get(message.id) ?? 0) + 1;
        this.attempts.set(message.id, attempt);
        const error = this.options.fail?.(message, attempt);
        if (error !== undefined) throw error;
      }
      if (this.options.delayMs !== undefined) await sleep(Math.random() * this.options.delayMs);
      else await new Promise((resolve) => setImmediate(resolve));
      await this.inner?.publish(uri, messages);
      this.confirmed.push(...messages);
    } finally {
      for (const key of keys) this.inFlightKeys.delete(key);
      for (const message of messages) this.inFlightIds.delete(message.id);
    }
  }

  bodies<T>(): T[] {
    return this.confirmed.map((message) => message.body as T);
  }
}

function keyOf(message: Message): string | undefined {
  const body = message.body as Partial<Numbered> | null;
  return typeof body === 'object' && body !== null && typeof body.key === 'string' ? body.key : undefined;
}

/** Per-partition sequences of numbered bodies, in the order given; throws if one goes backwards. */
export function assertOrderedPerPartition(bodies: readonly Numbered[]): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  for (const { key, seq } of bodies) {
    const list = byKey.get(key) ?? [];
    const last = list.at(-1);
    if (last !== undefined && seq <= last) throw new Error(`partition ${key}: ${seq} came after ${last}`);
    list.push(seq);
    byKey.set(key, list);
  }
  return byKey;
}
