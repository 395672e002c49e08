import type { IPublishPacket } from 'mqtt';
import type { Subscriber } from 'rxjs';
import { createDelivery, InterchangeError, withHeaders, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { AckPipeline, InboundDelivery, Redelivery, type AckTarget } from './ack-pipeline.ts';
import { IncomingStore } from './incoming-store.ts';
import { decodeMessage } from './message-codec.ts';
import type { ConnectionConfig } from './mqtt-connection.ts';
import { MqttConnection } from './mqtt-connection.ts';
import type { TopicPattern } from './topic-pattern.ts';

export interface SubscriptionSettings {
  readonly pattern: TopicPattern;
  readonly qos: 0 | 1 | 2;
  /** The consumer's connection (its own client id and session; `receiveMaximum` = prefetch). */
  readonly connection: Omit<ConnectionConfig, 'onPublish'>;
  readonly maxDeliveries: number;
  /** Deliveries emitted and unsettled at most; further PUBLISHes wait here unacknowledged (the receive window, also where the broker cannot enforce Receive Maximum: MQTT 3.1.1). */
  readonly prefetch: number;
  readonly log: Logger;
  /** Sends a message nacked `maxDeliveries` times to the dead-letter topic; resolves on confirm. */
  readonly deadLetter: (message: Message, reason: Error) => Promise<void>;
  /**
   * Attempts of messages this session was given before and did not acknowledge (by message id), so a
   * redelivery counts as one even from brokers that do not set DUP (aedes). Entries are consumed.
   */
  readonly handedBack: Map<string, number>;
  /** Bodies are the payload bytes as sent (endpoint option `payload=raw`), not parsed. */
  readonly rawPayload?: boolean;
  /** Directory keeping this session's QoS 2 inbound state across restarts (default: memory). */
  readonly qos2Directory?: string;
}

/** A subscription the broker refused (SUBACK failure code), or a fatal consumer error. */
export class MqttSubscribeError extends InterchangeError {
  override readonly name = 'MqttSubscribeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('MQTT_SUBSCRIBE', message, options);
  }
}

const noSettle = { ack: (): void => {}, nack: (): void => {} };

/**
 * One consumer of an MQTT endpoint: its own connection and session, a subscription made whenever
 * the broker has none (first connect, expired session), and the ordered acknowledgement pipeline.
 *
 * Contract:
 * - QoS 1/2: a PUBLISH is acknowledged only after its delivery is acked (or dead-lettered), in
 *   arrival order; at most `receiveMaximum` (= prefetch, MQTT 5) are unacknowledged at once.
 * - QoS 0: at-most-once; settling does nothing.
 * - nack: redelivered locally (`attempt` + 1, same pipeline slot, still unacknowledged to the broker)
 *   until `maxDeliveries`, then published to the dead-letter topic and acknowledged once confirmed.
 * - Intake stopped (`stopIntake`): later PUBLISHes are neither emitted nor acknowledged, so the
 *   broker keeps them for this session. `close` disconnects: whatever is unacknowledged is
 *   redelivered by the broker to the session's next connection (`attempt` 2, from the DUP flag);
 *   late settlements of the old connection's deliveries are ignored.
 * - A lost connection reconnects (backoff + jitter); deliveries of the lost connection are no longer
 *   acknowledgeable (the broker redelivers them: at-least-once, duplicates possible).
 */
export class MqttSubscription implements AckTarget {
  readonly connection: MqttConnection;
  private readonly pipeline: AckPipeline;
  private readonly incoming: IncomingStore;
  private intakeOpen = true;
  private closed = false;
  /** Emitted, not yet ready. */
  private outstanding = 0;
  /** Received but not yet emitted (window full), in arrival order. */
  private waiting: InboundDelivery[] = [];

  constructor(
    private readonly settings: SubscriptionSettings,
    private readonly subscriber: Subscriber<Delivery>,
  ) {
    this.incoming = IncomingStore.open(settings.qos2Directory);
    this.connection = new MqttConnection({ ...settings.connection, incomingStore: this.incoming, onPublish: (packet) => this.onPublish(packet) }, settings.log);
    this.pipeline = new AckPipeline((slot) => this.acknowledge(slot));
    this.connection.onConnect((sessionPresent) => {
      this.reset();
      if (!sessionPresent) this.incoming.clear();
      if (!sessionPresent || !settings.connection.persistent) this.subscribe();
    });
    this.connection.onClose(() => this.reset());
    this.connection.client.on('message', (_topic, _payload, packet) => {
      if (packet.qos === 0 && this.intakeOpen) this.subscriber.next(createDelivery(this.decode(packet, 1), noSettle));
    });
  }

  /** Connects; a broker that does not answer in time fails the consumer's stream. */
  start(): void {
    this.connection.open().catch((error: unknown) => {
      if (!this.closed) this.subscriber.error(error);
    });
  }

  stopIntake(): void {
    this.intakeOpen = false;
  }

  /** Stops intake and disconnects; resolves once the connection has ended. */
  close(): Promise<void> {
    this.intakeOpen = false;
    this.closed = true;
    const { handedBack } = this.settings;
    for (const slot of this.pipeline.unacknowledged()) {
      if (handedBack.size >= 10_000) break;
      handedBack.set(slot.message.id, (slot.message.headers.attempt ?? 1) + slot.emitted - 1);
    }
    this.reset();
    return this.connection.end();
  }

  acked(slot: InboundDelivery): void {
    if (this.closed || slot.generation !== this.connection.generation) return;
    slot.ready = true;
    this.outstanding -= 1;
    this.pipeline.flush();
    this.emitWaiting();
  }

  nacked(slot: InboundDelivery, reason: Error): void {
    if (this.closed || slot.generation !== this.connection.generation) return;
    if (!this.intakeOpen) return; // stays unacknowledged: the broker redelivers it to the session
    if (slot.emitted < this.settings.maxDeliveries) {
      slot.emitted += 1;
      queueMicrotask(() => {
        if (this.intakeOpen && slot.generation === this.connection.generation) this.subscriber.next(new Redelivery(slot, this));
      });
      return;
    }
    this.settings.deadLetter(slot.message, reason).then(
      () => this.acked(slot),
      (error: unknown) => this.settings.log.error('mqtt dead-letter publish failed; the message stays unacknowledged until reconnect', { topic: slot.packet.topic, error }),
    );
  }

  private onPublish(packet: IPublishPacket): void {
    if (!this.intakeOpen) return; // held: neither emitted nor acknowledged
    let message = this.decode(packet, packet.dup ? 2 : 1);
    if (packet.qos === 2 && this.incoming.has(packet.messageId)) {
      // Processed before (by this process, or one that crashed before the broker got its PUBREC):
      // acknowledged again, in order, without being processed twice.
      const slot = new InboundDelivery(message, packet, this.connection.generation, this);
      slot.ready = true;
      this.pipeline.push(slot);
      this.pipeline.flush();
      return;
    }
    const before = this.settings.handedBack.get(message.id);
    if (before !== undefined) {
      this.settings.handedBack.delete(message.id);
      if (before + 1 > (message.headers.attempt ?? 1)) message = withHeaders(message, { attempt: before + 1 });
    }
    const slot = new InboundDelivery(message, packet, this.connection.generation, this);
    this.pipeline.push(slot);
    if (this.outstanding < this.settings.prefetch && this.waiting.length === 0) {
      this.outstanding += 1;
      this.subscriber.next(slot);
    } else this.waiting.push(slot);
  }

  private emitWaiting(): void {
    while (this.intakeOpen && this.outstanding < this.settings.prefetch && this.waiting.length > 0) {
      const slot = this.waiting.shift() as InboundDelivery;
      this.outstanding += 1;
      this.subscriber.next(slot);
    }
  }

  /** A connection ended: nothing of it can be acknowledged any more. */
  private reset(): void {
    this.pipeline.clear();
    this.waiting = [];
    this.outstanding = 0;
  }

  private decode(packet: IPublishPacket, attempt: number): Message {
    const { pattern } = this.settings;
    return decodeMessage(packet, pattern.hasParams ? pattern.paramsOf(packet.topic) : undefined, attempt, this.settings.rawPayload === true);
  }

  private acknowledge(slot: InboundDelivery): void {
    const { messageId, qos } = slot.packet;
    if (qos === 1) this.connection.send({ cmd: 'puback', messageId });
    else if (qos === 2) {
      const connection = this.connection;
      connection.client.incomingStore.put(slot.packet, (error) => {
        // Not kept (disk error): acknowledged all the same — a crash now would mean a duplicate, a
        // stalled acknowledgement pipeline would stop the consumer.
        if (error !== undefined && error !== null) this.settings.log.warn('mqtt QoS 2 state not saved; a crash before PUBREL may redeliver the message', { topic: slot.packet.topic, error: error.message });
        if (slot.generation === connection.generation) connection.send({ cmd: 'pubrec', messageId });
      });
    }
  }

  private subscribe(): void {
    const { pattern, qos } = this.settings;
    this.connection.client.subscribe(pattern.filter, { qos }, (error, granted) => {
      // A connection lost mid-SUBSCRIBE is retried on reconnect (the session has no subscription yet);
      // a refusal in the SUBACK is final.
      if (error !== null && error !== undefined) {
        this.settings.log.warn('mqtt subscribe interrupted; retrying on reconnect', { filter: pattern.filter, error: error.message });
        return;
      }
      const refused = granted?.find((grant) => grant.qos >= 0x80);
      if (refused !== undefined && !this.closed) this.subscriber.error(new MqttSubscribeError(`MQTT broker refused the subscription '${pattern.filter}' (reason code 0x${refused.qos.toString(16)})`));
    });
  }
}
