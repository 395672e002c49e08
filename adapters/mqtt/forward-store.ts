import { mkdirSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IClientPublishOptions } from 'mqtt';
import { CapacityError } from '../../src/core/index.ts';

/** The `publish` call a message belongs to: told once per message when it is confirmed or failed. */
export interface PublishBatch {
  settle(error?: Error | null): void;
}

/** One outgoing PUBLISH (a class, not a literal per message: the publisher fills in its batch). */
export class HeldPublish {
  /** Settles the publish call it belongs to (absent for messages reloaded from disk). */
  batch: PublishBatch | undefined = undefined;
  /** Written to the disk store: its publish already resolved; the file forgets it once the broker confirms. */
  durable = false;

  constructor(
    readonly topic: string,
    readonly payload: Buffer | string,
    readonly qos: 0 | 1 | 2,
    readonly retain: boolean,
    readonly properties: IClientPublishOptions['properties'],
  ) {}
}

interface Line {
  readonly t: string;
  readonly p: string;
  readonly q: 0 | 1 | 2;
  readonly r: boolean;
  readonly pr?: Record<string, unknown>;
}

/**
 * Store-and-forward for outgoing QoS ≥ 1 messages while the broker is unreachable: a bounded FIFO,
 * optionally backed by an append-only file so a restart keeps what it held.
 *
 * Contract: `hold` admits a whole batch or refuses it with `CapacityError` (never unbounded memory);
 * with a file, it resolves once the batch is written and fsynced, and the file is emptied only when
 * every message it held has been confirmed by the broker (a crash in between resends some:
 * at-least-once). Messages leave in the order they were held; `load` (at start) puts the file's
 * messages first.
 */
export class ForwardStore {
  private items: HeldPublish[] = [];
  private head = 0;
  private file: FileHandle | undefined;
  private writes: Promise<void> = Promise.resolve();
  /** Durable messages not yet confirmed (held or in flight). */
  private durablePending = 0;

  constructor(
    readonly capacity: number,
    readonly path: string | undefined,
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Reads what a previous process left in the file; call once, before any `hold`. */
  async load(): Promise<number> {
    if (this.path === undefined) return 0;
    mkdirSync(dirname(this.path), { recursive: true });
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let loaded = 0;
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue; // a torn last line from a crash mid-write: its publish never resolved
      }
      const item = new HeldPublish(line.t, Buffer.from(line.p, 'base64'), line.q, line.r, revive(line.pr));
      item.durable = true;
      this.items.push(item);
      loaded += 1;
    }
    this.durablePending = loaded;
    this.file = await open(this.path, 'a');
    return loaded;
  }

  /**
   * Admits a batch: resolves when held (written and fsynced, with a file); `CapacityError` when it
   * does not fit. `bounded: false` while connected: the messages only wait for a send window.
   */
  hold(batch: readonly HeldPublish[], bounded = true): Promise<void> {
    if (bounded && this.size + batch.length > this.capacity) {
      return Promise.reject(new CapacityError(`MQTT store-and-forward is full (${this.size} of ${this.capacity} held while the broker is unreachable)`));
    }
    for (const item of batch) this.items.push(item);
    if (this.file === undefined) return Promise.resolve();
    const file = this.file;
    this.durablePending += batch.length;
    const text = batch.map((item) => JSON.stringify(toLine(item))).join('\n') + '\n';
    const written = this.writes.then(async () => {
      await file.write(text);
      await file.datasync();
    });
    this.writes = written.catch(() => undefined);
    return written;
  }

  shift(): HeldPublish | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as HeldPublish;
    this.items[this.head] = undefined as never;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** A durable message was confirmed by the broker; empties the file once none is left. */
  confirmed(item: HeldPublish): void {
    if (!item.durable || this.file === undefined) return;
    this.durablePending -= 1;
    if (this.durablePending > 0) return;
    const file = this.file;
    this.writes = this.writes.then(async () => {
      if (this.durablePending === 0) await file.truncate(0);
    }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.writes;
    await this.file?.close();
    this.file = undefined;
  }
}

function toLine(item: HeldPublish): Line {
  const payload = typeof item.payload === 'string' ? Buffer.from(item.payload) : item.payload;
  const properties = item.properties === undefined ? undefined : { ...item.properties, ...(item.properties.correlationData === undefined ? {} : { correlationData: { $base64: item.properties.correlationData.toString('base64') } }) };
  return { t: item.topic, p: payload.toString('base64'), q: item.qos, r: item.retain, ...(properties === undefined ? {} : { pr: properties }) };
}

function revive(properties: Record<string, unknown> | undefined): IClientPublishOptions['properties'] {
  if (properties === undefined) return undefined;
  const correlation = properties.correlationData as { $base64?: string } | undefined;
  return { ...properties, ...(correlation?.$base64 === undefined ? {} : { correlationData: Buffer.from(correlation.$base64, 'base64') }) } as IClientPublishOptions['properties'];
}
