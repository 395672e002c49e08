import { Settlement, type Message } from '../../src/core/index.ts';

/** What a buffer does when one of its deliveries is settled. */
export interface SettlementSink {
  acked(delivery: BufferDelivery): void;
  nacked(delivery: BufferDelivery, reason: Error): void;
}

/** One entry of a buffer delivered to its consumer: the delivery is its own settlement (one allocation per entry). */
export class BufferDelivery extends Settlement {
  constructor(
    message: Message,
    /** The entry's sequence number in the buffer's log. */
    readonly seq: number,
    /** Its bytes on disk. */
    readonly size: number,
    private readonly sink: SettlementSink,
    /** Set when the stored record could not be read back as a message (`BufferRecordError`). */
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.sink.acked(this);
  }

  protected onNack(reason: Error): void {
    this.sink.nacked(this, reason);
  }
}
