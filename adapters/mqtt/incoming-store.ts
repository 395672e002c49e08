import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { IPublishPacket, IStore, Packet } from 'mqtt';

type Done = (error?: Error) => void;
type PacketDone = (error?: Error, packet?: Packet) => void;

interface Saved {
  readonly topic: string;
  readonly messageId: number;
  readonly payload: string;
}

/**
 * The QoS 2 inbound state of one consumer session: PUBLISHes this process has processed and
 * PUBREC'd (or is about to), kept until the broker's PUBREL. mqtt.js calls it as its `incomingStore`.
 *
 * With a directory, each entry is a file written and fsynced BEFORE the PUBREC is sent, so after a
 * crash the next process of the same session knows what it already processed: a PUBLISH the broker
 * resends (its PUBREC was never received) is acknowledged without being processed again
 * (exactly-once for the route), and the broker's PUBREL finds its packet. Without a directory the
 * same holds within one process (a dropped connection), not across a crash.
 *
 * Entries are per session: when the broker reports no session, they are meaningless (packet ids
 * restart) and `clear` forgets them.
 */
export class IncomingStore implements IStore {
  private readonly packets = new Map<number, IPublishPacket>();
  /** File operations per packet id, in call order (an id is reused once its PUBCOMP is sent). */
  private readonly files = new Map<number, Promise<void>>();

  private constructor(private readonly directory: string | undefined) {}

  /** Opens the store (memory only without a directory); reads what a previous process left. */
  static open(directory?: string): IncomingStore {
    const store = new IncomingStore(directory);
    if (directory === undefined) return store;
    mkdirSync(directory, { recursive: true });
    for (const name of readdirSync(directory)) {
      if (!name.endsWith('.json')) continue;
      try {
        const saved = JSON.parse(readFileSync(join(directory, name), 'utf8')) as Saved;
        store.packets.set(saved.messageId, { cmd: 'publish', topic: saved.topic, messageId: saved.messageId, payload: Buffer.from(saved.payload, 'base64'), qos: 2, dup: false, retain: false });
      } catch {
        // torn by a crash mid-write: its PUBREC was never sent, so the broker resends the PUBLISH
      }
    }
    return store;
  }

  get size(): number {
    return this.packets.size;
  }

  /** The broker resent a PUBLISH that this session already processed. */
  has(messageId: number | undefined): boolean {
    return messageId !== undefined && this.packets.has(messageId);
  }

  put(packet: Packet, cb: Done): this {
    const publish = packet as IPublishPacket;
    if (publish.messageId === undefined) {
      cb(new Error('incoming store: packet without a packet id'));
      return this;
    }
    this.packets.set(publish.messageId, publish);
    if (this.directory === undefined) {
      cb();
      return this;
    }
    const saved: Saved = { topic: publish.topic, messageId: publish.messageId, payload: Buffer.from(publish.payload).toString('base64') };
    const path = this.fileOf(publish.messageId);
    this.onFile(publish.messageId, () => writeDurably(path, JSON.stringify(saved))).then(() => cb(), cb);
    return this;
  }

  get(packet: Pick<Packet, 'messageId'>, cb: PacketDone): this {
    const found = packet.messageId === undefined ? undefined : this.packets.get(packet.messageId);
    if (found === undefined) cb(new Error('missing packet'));
    else cb(undefined, found);
    return this;
  }

  del(packet: Pick<Packet, 'messageId'>, cb: PacketDone): this {
    const { messageId } = packet;
    const found = messageId === undefined ? undefined : this.packets.get(messageId);
    if (messageId === undefined || found === undefined) {
      cb(new Error('missing packet'));
      return this;
    }
    this.packets.delete(messageId);
    if (this.directory === undefined) cb(undefined, found);
    else {
      const path = this.fileOf(messageId);
      this.onFile(messageId, () => unlink(path).catch(() => undefined)).then(() => cb(undefined, found), () => cb(undefined, found));
    }
    return this;
  }

  /** The broker has no session for us: its packet ids start over, so these entries mean nothing. */
  clear(): void {
    for (const messageId of [...this.packets.keys()]) this.del({ messageId }, () => undefined);
  }

  /** (mqtt.js types this as readable-stream's Readable, which Node's implements.) */
  createStream(): ReturnType<IStore['createStream']> {
    return Readable.from([...this.packets.values()]) as unknown as ReturnType<IStore['createStream']>;
  }

  close(cb: Done): void {
    cb();
  }

  private onFile(messageId: number, operation: () => Promise<void>): Promise<void> {
    const done = (this.files.get(messageId) ?? Promise.resolve()).then(operation);
    const settled = done.catch(() => undefined);
    this.files.set(messageId, settled);
    void settled.then(() => {
      if (this.files.get(messageId) === settled) this.files.delete(messageId);
    });
    return done;
  }

  private fileOf(messageId: number): string {
    return join(this.directory as string, `${messageId}.json`);
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.write(text);
    await file.datasync();
  } finally {
    await file.close();
  }
}
