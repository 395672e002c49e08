import type { IPublishPacket } from 'mqtt';
import type { Subscriber } from 'rxjs';
import { createDelivery, InterchangeError, redeliveryDecision, withHeaders, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { AckPipeline, InboundDelivery, Redelivery, RefusedAtIntake, type AckTarget } from './ack-pipeline.ts';
import { IncomingStore } from './incoming-store.ts';
import { decodeMessage, type InboundPolicy } from './message-codec.ts';
import type { ConnectionConfig } from './mqtt-connection.ts';
import { MqttConnection } from './mqtt-connection.ts';
import { MQTT_REASON_NAMES } from './mqtt-errors.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, MqttMessageTooLargeError, oversizeOf, withTruncation } from './oversize-publish.ts';
import type { TopicPattern } from './topic-pattern.ts';

export interface SubscriptionSettings {
  readonly pattern: TopicPattern;
  readonly qos: 0 | 1 | 2;
  /** The consumer's connection (its own client id and session; `receiveMaximum` = prefetch). */
  readonly connection: Omit<ConnectionConfig, 'onPublish'>;
  /** Immediate local redeliveries of a transiently failed delivery; later ones wait `redeliveryDelayMs`. */
  readonly maxDeliveries: number;
  /** Backoff of redeliveries beyond `maxDeliveries` (exponential with jitter, from `initialMs` up to `maxMs`). */
  readonly redeliveryDelayMs: { readonly initialMs: number; readonly maxMs: number };
  /** Deliveries emitted and unsettled at most; further PUBLISHes wait here unacknowledged (the receive window, also where the broker cannot enforce Receive Maximum: MQTT 3.1.1). */
  readonly prefetch: number;
  readonly log: Logger;
  /** Sends a permanently failed message to the durable dead-letter topic; resolves on confirm. */
  readonly deadLetter: (message: Message, reason: Error) => Promise<void>;
  /**
   * Attempts of messages this session was given before and did not acknowledge (by packet id and topic), so a
   * redelivery counts as one even from brokers that do not set DUP (aedes). Entries are consumed.
   */
  readonly handedBack: Map<string, number>;
  /** Bodies are the payload bytes as sent (endpoint option `payload=raw`), not parsed. */
  readonly rawPayload?: boolean;
  /** What of a PUBLISH besides its payload becomes headers (endpoint options `headers`, `userProperties`); default `STANDARD_INBOUND`. */
  readonly inbound?: InboundPolicy;
  /** Directory keeping this session's QoS 2 inbound state across restarts (default: memory). */
  readonly qos2Directory?: string;
}

/**
 * A subscription the broker refused (SUBACK failure code: MQTT 5 `0x87` not authorized when its ACL
 * forbids the filter, `0x8F` invalid filter…; MQTT 3.1.1 `0x80` failure), or a fatal consumer error.
 * A refusal ends the consumer's stream (the route fails) and its connection: it is not retried.
 * Permanent, except quota exceeded (0x97) and packet identifier in use (0x91).
 */
export class MqttSubscribeError extends InterchangeError {
  override readonly name = 'MqttSubscribeError';
  /** The topic filter refused, when the broker refused one. */
  readonly filter: string | undefined;
  /** The SUBACK reason code, when the broker refused the subscription. */
  readonly reasonCode: number | undefined;
  constructor(message: string, options?: { cause?: unknown; filter?: string; reasonCode?: number }) {
    const reasonCode = options?.reasonCode;
    super('MQTT_SUBSCRIBE', message, { cause: options?.cause, permanent: reasonCode !== undefined && reasonCode !== 0x97 && reasonCode !== 0x91 });
    this.filter = options?.filter;
    this.reasonCode = reasonCode;
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
 * - nack, transient reason: redelivered locally (`attempt` + 1, same pipeline slot, still
 *   unacknowledged to the broker) — at once up to `maxDeliveries`, then with backoff, until it is
 *   delivered or the subscription closes (the broker keeps it for the session): never acknowledged
 *   undelivered. Permanent reason (`isPermanentFailure`): published to the transport's durable
 *   dead-letter topic and acknowledged once the broker confirmed it.
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
  /** Delayed redeliveries pending (cleared when the connection ends). */
  private readonly timers = new Set<NodeJS.Timeout>();
  /** QoS 1 PUBACKs due, in order, written together at the end of the current burst of settlements (see `acknowledge`). */
  private pubacks: number[] = [];

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
      if (packet.qos !== 0 || !this.intakeOpen) return;
      const tooLarge = this.tooLarge(packet);
      this.subscriber.next(tooLarge === undefined ? createDelivery(this.decode(packet, 1), noSettle) : new RefusedAtIntake(this.decode(packet, 1), tooLarge));
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
    this.writePubacks(); // acknowledgements already due go out before the disconnect (they are queued for a microtask)
    const { handedBack } = this.settings;
    for (const slot of this.pipeline.unacknowledged()) {
      if (handedBack.size >= 10_000) break;
      handedBack.set(handBackKey(slot.packet), (slot.message.headers.attempt ?? 1) + slot.emitted - 1);
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
    // Permanent: dead-lettered at once. Transient: never acknowledged until delivered — at once up to
    // maxDeliveries, then later, with backoff; the slot keeps its place in the acknowledgement order
    // and its share of the receive window, so a long outage stops intake (the broker keeps the rest)
    // instead of losing anything.
    const { maxDeliveries, redeliveryDelayMs } = this.settings;
    const decision = redeliveryDecision({ attempt: slot.emitted, maxDeliveries, reason, backoff: redeliveryDelayMs, permanentAtOnce: true });
    if (decision.action === 'deadLetter') {
      this.park(slot, reason);
      return;
    }
    const { delayMs } = decision;
    if (slot.emitted === maxDeliveries) {
      this.settings.log.warn('mqtt message failed transiently maxDeliveries times; kept unacknowledged and redelivered with backoff until it succeeds', {
        topic: truncate(slot.packet.topic),
        messageId: slot.message.id,
        attempts: slot.emitted,
        error: reason.message,
      });
    }
    slot.emitted += 1;
    const redeliver = (): void => {
      if (this.intakeOpen && !this.closed && slot.generation === this.connection.generation) this.subscriber.next(new Redelivery(slot, this));
    };
    if (delayMs === 0) queueMicrotask(redeliver);
    else {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        redeliver();
      }, delayMs);
      this.timers.add(timer);
    }
  }

  /**
   * A permanent failure the route did not dead-letter itself: published to the transport's durable
   * dead-letter topic, then acknowledged. If even that fails the message stays unacknowledged (the
   * broker redelivers it on the next connection): nothing is acknowledged that is not kept somewhere.
   */
  private park(slot: InboundDelivery, reason: Error): void {
    this.settings.deadLetter(slot.message, reason).then(
      () => this.acked(slot),
      (error: unknown) => this.settings.log.error('mqtt dead-letter publish failed; the message stays unacknowledged until reconnect', { topic: truncate(slot.packet.topic), error }),
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
    const { handedBack } = this.settings;
    if (handedBack.size > 0) {
      const key = handBackKey(packet);
      const before = handedBack.get(key);
      if (before !== undefined) {
        handedBack.delete(key);
        if (before + 1 > (message.headers.attempt ?? 1)) message = withHeaders(message, { attempt: before + 1 });
      }
    }
    const slot = new InboundDelivery(message, packet, this.connection.generation, this);
    slot.intakeError = this.tooLarge(packet); // over maxMessageBytes: a delivery like any other, for the route's error handler
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

  private readonly writePubacks = (): void => {
    const ids = this.pubacks;
    if (ids.length === 0) return;
    this.pubacks = [];
    const bytes = Buffer.allocUnsafe(4 * ids.length);
    for (let index = 0, at = 0; index < ids.length; index += 1, at += 4) {
      const id = ids[index] as number;
      bytes[at] = 0x40;
      bytes[at + 1] = 0x02;
      bytes[at + 2] = id >> 8;
      bytes[at + 3] = id & 0xff;
    }
    this.connection.sendBytes(bytes);
  };

  /** A connection ended: nothing of it can be acknowledged any more. */
  private reset(): void {
    this.pubacks = [];
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.pipeline.clear();
    this.waiting = [];
    this.outstanding = 0;
  }

  /** An oversized PUBLISH's body is its payload's first 4 KiB, as bytes (`withTruncation` says so in headers). */
  private decode(packet: IPublishPacket, attempt: number): Message {
    const { pattern } = this.settings;
    const oversized = oversizeOf(packet);
    return withTruncation(decodeMessage(packet, pattern.hasParams ? pattern.paramsOf(packet.topic) : undefined, attempt, this.settings.rawPayload === true || oversized !== undefined, this.settings.inbound), oversized);
  }

  /** The intake error of a PUBLISH that was over the connection's `maxMessageBytes` (see `limitPublishSize`). */
  private tooLarge(packet: IPublishPacket): MqttMessageTooLargeError | undefined {
    const oversized = oversizeOf(packet);
    return oversized === undefined ? undefined : new MqttMessageTooLargeError(packet.topic, oversized.size, this.settings.connection.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  }

  /**
   * QoS 1: the PUBACK is queued and the queue written as one buffer in a microtask — a confirm settles a
   * whole batch of deliveries in one synchronous burst, and mqtt.js would encode, emit and write each
   * PUBACK on its own (~2 µs each here). The bytes are MQTT's PUBACK with success and no properties
   * (`0x40 0x02 <packet id>`; MQTT 5 §3.4.2.1 allows the short form), in the order queued.
   */
  private acknowledge(slot: InboundDelivery): void {
    const { messageId, qos } = slot.packet;
    if (qos === 1) {
      if (this.pubacks.push(messageId ?? 0) === 1) queueMicrotask(this.writePubacks);
    } else if (qos === 2) {
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
      const refusedCode = refusalCodeOf(error, granted);
      if (refusedCode !== undefined) {
        if (this.closed) return;
        const refusal = new MqttSubscribeError(
          `MQTT broker refused the subscription '${truncate(pattern.filter)}' of client '${this.settings.connection.clientId}' (reason code 0x${refusedCode.toString(16)}: ${MQTT_REASON_NAMES[refusedCode] ?? 'failure'})`,
          { filter: pattern.filter, reasonCode: refusedCode },
        );
        this.settings.log.error('mqtt subscription refused; not retrying', { filter: truncate(pattern.filter), clientId: this.settings.connection.clientId, reasonCode: refusedCode });
        this.subscriber.error(refusal); // the teardown ends the connection: no reconnect
        return;
      }
      if (error !== null && error !== undefined) {
        this.settings.log.warn('mqtt subscribe interrupted; retrying on reconnect', { filter: pattern.filter, error: error.message });
      }
    });
  }
}

/**
 * The SUBACK failure code (≥ 0x80) of a subscribe callback, if the broker refused: mqtt.js reports a
 * refusal as an error carrying the SUBACK packet (`packet.granted`: reason codes) or its `code`, or
 * as a grant with that code.
 */
function refusalCodeOf(error: unknown, granted: readonly { readonly qos: number }[] | undefined): number | undefined {
  const failure = (code: unknown): code is number => typeof code === 'number' && code >= 0x80;
  if (error !== null && typeof error === 'object') {
    const { code, packet } = error as { code?: unknown; packet?: { granted?: unknown } };
    if (failure(code)) return code;
    const codes = packet?.granted;
    if (Array.isArray(codes)) {
      const refused = codes.map((entry: unknown) => (typeof entry === 'object' && entry !== null ? (entry as { qos?: unknown }).qos : entry)).find(failure);
      if (refused !== undefined) return refused;
    }
  }
  return granted?.find((grant) => failure(grant.qos))?.qos;
}

/** A topic as it may appear in a log line (a device chooses its length). */
function truncate(topic: string): string {
  return topic.length <= 200 ? topic : `${topic.slice(0, 200)}… (${topic.length} chars)`;
}

/**
 * A PUBLISH handed back unacknowledged, as the broker resends it to the same session: the same packet
 * identifier on the same topic (MQTT 3.1.1 §4.4, MQTT 5 §4.4) — not the message id, which is fresh for
 * every delivery unless the publisher is trusted (`headers=all`).
 */
function handBackKey(packet: IPublishPacket): string {
  return `${packet.messageId ?? 0}:${packet.topic}`;
}
