import { AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiCodes, JetStreamApiError, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { NatsTopologyError } from './nats-errors.ts';
import type { NatsStreamDeclaration } from './nats-options.ts';

/** A durable pull consumer as the adapter creates it when absent. */
export interface ConsumerDeclaration {
  readonly stream: string;
  readonly durable: string;
  readonly filterSubject: string;
  readonly ackWaitMs: number;
  /** The server sends at most this many unacknowledged messages to all instances of the durable together. */
  readonly maxAckPending: number;
}

/**
 * Creates JetStream streams and durable consumers when absent, each once per transport (concurrent
 * callers share the first call). An existing stream or consumer is left as it is — it may be an
 * operator's — except that a consumer whose filter subject differs from the endpoint's is refused
 * (`NatsTopologyError`): it would deliver other messages than the endpoint names.
 *
 * Consumers are created with explicit acks, `deliver_policy: all` (what the stream holds when the
 * consumer is first created is delivered), `max_deliver: -1` (the adapter counts deliveries and
 * dead-letters; the server never drops a message silently), `ack_wait` and `max_ack_pending`.
 */
export class JetStreamTopology {
  private readonly streams = new Map<string, Promise<void>>();
  private readonly consumers = new Map<string, Promise<void>>();
  /** Streams known to exist (their ensuring resolved): a publish to them needs no turn of the event loop. */
  private readonly readyStreams = new Set<string>();

  constructor(private readonly jsm: () => Promise<JetStreamManager>) {}

  /** Ensures `stream` exists: created capturing `subjects` when absent and `create`; else `NatsTopologyError`. */
  ensureStream(declaration: NatsStreamDeclaration, create: boolean): Promise<void> {
    const key = declaration.name;
    let ensured = this.streams.get(key);
    if (ensured === undefined) {
      ensured = this.createStream(declaration, create).then(
        () => {
          this.readyStreams.add(key);
        },
        (error: unknown) => {
          this.streams.delete(key);
          throw error;
        },
      );
      this.streams.set(key, ensured);
    }
    return ensured;
  }

  /** Ensures the durable consumer exists (see the class contract). */
  ensureConsumer(declaration: ConsumerDeclaration, create: boolean): Promise<void> {
    const key = `${declaration.stream}\0${declaration.durable}`;
    let ensured = this.consumers.get(key);
    if (ensured === undefined) {
      ensured = this.createConsumer(declaration, create).catch((error: unknown) => {
        this.consumers.delete(key);
        throw error;
      });
      this.consumers.set(key, ensured);
    }
    return ensured;
  }

  /** Whether the stream is known to exist (an `ensureStream` of it resolved). */
  isReady(stream: string): boolean {
    return this.readyStreams.has(stream);
  }

  /** Forgets what was ensured (a stream or consumer deleted behind the adapter's back is created again on next use). */
  forget(): void {
    this.readyStreams.clear();
    this.streams.clear();
    this.consumers.clear();
  }

  private async createStream(declaration: NatsStreamDeclaration, create: boolean): Promise<void> {
    const jsm = await this.jsm();
    try {
      await jsm.streams.info(declaration.name);
      return;
    } catch (error) {
      if (!isNotFound(error, JetStreamApiCodes.StreamNotFound)) throw new NatsTopologyError(`JetStream stream '${declaration.name}': ${(error as Error).message}`, { cause: error });
    }
    if (!create) throw new NatsTopologyError(`JetStream stream '${declaration.name}' does not exist (provision=false)`);
    try {
      await jsm.streams.add({
        name: declaration.name,
        subjects: [...declaration.subjects],
        storage: declaration.storage === 'memory' ? StorageType.Memory : StorageType.File,
        discard: DiscardPolicy.Old,
        ...(declaration.maxAgeMs === undefined ? {} : { max_age: nanos(declaration.maxAgeMs) }),
        ...(declaration.maxMessages === undefined ? {} : { max_msgs: declaration.maxMessages }),
        ...(declaration.maxBytes === undefined ? {} : { max_bytes: declaration.maxBytes }),
        ...(declaration.duplicateWindowMs === undefined ? {} : { duplicate_window: nanos(declaration.duplicateWindowMs) }),
      });
    } catch (error) {
      // another instance may have created it meanwhile
      try {
        await jsm.streams.info(declaration.name);
      } catch {
        throw new NatsTopologyError(`cannot create JetStream stream '${declaration.name}' for ${declaration.subjects.join(', ')}: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  private async createConsumer(declaration: ConsumerDeclaration, create: boolean): Promise<void> {
    const jsm = await this.jsm();
    const { stream, durable, filterSubject } = declaration;
    try {
      const info = await jsm.consumers.info(stream, durable);
      const filter = info.config.filter_subject ?? '';
      if (filter !== '' && filter !== filterSubject) throw new NatsTopologyError(`JetStream consumer '${durable}' of stream '${stream}' filters '${filter}', not '${filterSubject}'`);
      return;
    } catch (error) {
      if (error instanceof NatsTopologyError) throw error;
      if (!isNotFound(error, JetStreamApiCodes.ConsumerNotFound)) throw new NatsTopologyError(`JetStream consumer '${durable}' of stream '${stream}': ${(error as Error).message}`, { cause: error });
    }
    if (!create) throw new NatsTopologyError(`JetStream consumer '${durable}' of stream '${stream}' does not exist (provision=false)`);
    try {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: filterSubject,
        ack_wait: nanos(declaration.ackWaitMs),
        max_deliver: -1,
        max_ack_pending: declaration.maxAckPending,
      });
    } catch (error) {
      // another instance may have created it meanwhile (with another max_ack_pending: its own prefetch)
      const existing = await jsm.consumers.info(stream, durable).catch(() => undefined);
      if (existing !== undefined && (existing.config.filter_subject ?? filterSubject) === filterSubject) return;
      throw new NatsTopologyError(`cannot create JetStream consumer '${durable}' of stream '${stream}': ${(error as Error).message}`, { cause: error });
    }
  }
}

function isNotFound(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}
