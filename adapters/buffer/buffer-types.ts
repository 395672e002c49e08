import type { SchedulerLike } from 'rxjs';
import type { BackoffOptions, Delivery, Logger } from '../../src/core/index.ts';
import type { BufferDelivery } from './buffer-delivery.ts';

/** One buffer's depth and counters, as `BufferTransport.stats()` and its status report them. */
export interface BufferStats {
  readonly name: string;
  /** Entries not yet acknowledged (queued, in delivery, or waiting for redelivery). */
  readonly entries: number;
  /** Their bytes on disk. */
  readonly bytes: number;
  readonly capacityEntries: number;
  readonly capacityBytes: number;
  /** Publishers are held: the buffer has no room for their next entry. */
  readonly full: boolean;
  /** Deliveries handed to the consumer and not settled yet. */
  readonly unsettled: number;
  /** Entries made durable since the buffer was opened. */
  readonly written: number;
  /** Entries acknowledged by the consumer since the buffer was opened. */
  readonly forwarded: number;
}

export interface BufferLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

export interface BufferSettings {
  readonly segmentBytes: number;
  readonly logger: Logger;
  readonly redelivery: BackoffOptions;
  readonly scheduler: SchedulerLike;
  readonly cursorIntervalMs: number;
  /** Called when the buffer's stats changed (the transport samples them for its status). */
  readonly onChange: () => void;
}

/** The one consumer a buffer has at a time. */
export interface BufferConsumer {
  readonly prefetch: number;
  /** False once its intake stopped (abort): it takes nothing more, but may still settle. */
  intake: boolean;
  readonly unsettled: Set<BufferDelivery>;
  emit(delivery: Delivery): void;
  /** The buffer cannot go on reading (an I/O error): fatal for this consumer. */
  fail(error: Error): void;
}
