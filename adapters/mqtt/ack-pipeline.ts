import type { IPublishPacket } from 'mqtt';
import { Settlement, withHeaders, type Message } from '../../src/core/index.ts';

/** What an inbound delivery reports to when it settles. */
export interface AckTarget {
  acked(slot: InboundDelivery): void;
  nacked(slot: InboundDelivery, reason: Error): void;
}

/**
 * One inbound PUBLISH as a delivery (the delivery is its own pipeline node: one allocation per
 * message). `ready` once the route acked it (or it was dead-lettered); its PUBACK/PUBREC is then
 * sent as soon as every PUBLISH received before it on the same connection is ready too.
 */
export class InboundDelivery extends Settlement {
  /** @internal */ next: InboundDelivery | undefined = undefined;
  /** @internal */ ready = false;
  /** How many times it has been emitted (local redeliveries after nacks). */
  /** @internal */ emitted = 1;
  /** Set when the PUBLISH was over the consumer's `maxMessageBytes` (`MqttMessageTooLargeError`): see `Delivery.intakeError`. */
  intakeError: Error | undefined = undefined;

  constructor(
    message: Message,
    readonly packet: IPublishPacket,
    /** The connection generation it arrived on: its acknowledgement is valid on that one only. */
    readonly generation: number,
    private readonly target: AckTarget,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.target.acked(this);
  }

  protected onNack(reason: Error): void {
    this.target.nacked(this, reason);
  }
}

/** A local redelivery of a nacked inbound PUBLISH: a new settle-once, the same pipeline slot. */
export class Redelivery extends Settlement {
  constructor(
    readonly slot: InboundDelivery,
    private readonly target: AckTarget,
  ) {
    super(withHeaders(slot.message, { attempt: (slot.message.headers.attempt ?? 1) + slot.emitted - 1 }));
  }

  /** The slot's: a message refused at intake stays refused on every delivery. */
  get intakeError(): Error | undefined {
    return this.slot.intakeError;
  }

  protected onAck(): void {
    this.target.acked(this.slot);
  }

  protected onNack(reason: Error): void {
    this.target.nacked(this.slot, reason);
  }
}

/** A QoS 0 PUBLISH the adapter could not take whole (`intakeError`): at-most-once, settling it does nothing. */
export class RefusedAtIntake extends Settlement {
  constructor(
    message: Message,
    readonly intakeError: Error,
  ) {
    super(message);
  }

  protected onAck(): void {}

  protected onNack(): void {}
}

/**
 * Acknowledgements in PUBLISH order (MQTT requires PUBACKs in the order the PUBLISHes arrived),
 * pipelined: any number of deliveries may be unsettled at once (bounded by Receive Maximum), each
 * settles whenever its route is done, and every run of ready deliveries at the head is acknowledged
 * at once — never one PUBLISH at a time behind an async confirm.
 *
 * QoS 1: PUBACK. QoS 2: the packet goes to the client's incoming store, then PUBREC; mqtt.js answers
 * the broker's PUBREL with PUBCOMP. QoS 0 is never queued here (at-most-once, nothing to send).
 */
export class AckPipeline {
  private head: InboundDelivery | undefined;
  private tail: InboundDelivery | undefined;
  size = 0;

  constructor(private readonly send: (slot: InboundDelivery) => void) {}

  push(slot: InboundDelivery): void {
    if (this.tail === undefined) this.head = slot;
    else this.tail.next = slot;
    this.tail = slot;
    this.size += 1;
  }

  /** Sends the acknowledgements of the ready deliveries at the head, in order. */
  flush(): void {
    let slot = this.head;
    while (slot !== undefined && slot.ready) {
      this.send(slot);
      const next = slot.next;
      slot.next = undefined;
      slot = next;
      this.size -= 1;
    }
    this.head = slot;
    if (slot === undefined) this.tail = undefined;
  }

  /** The deliveries not yet acknowledged, in arrival order. */
  unacknowledged(): InboundDelivery[] {
    const slots: InboundDelivery[] = [];
    for (let slot = this.head; slot !== undefined; slot = slot.next) if (!slot.ready) slots.push(slot);
    return slots;
  }

  /** Forgets everything (connection lost: the broker redelivers what was not acknowledged). */
  clear(): void {
    this.head = this.tail = undefined;
    this.size = 0;
  }
}
