import { NotConnectedError, type Logger } from '../../src/core/index.ts';
import type { ForwardStore, HeldPublish, PublishBatch } from './forward-store.ts';
import type { MqttConnection } from './mqtt-connection.ts';
import { MqttPublishRefusedError } from './mqtt-errors.ts';

/** Settles one `publish` call once every message of it has been confirmed (one object per batch, not per message). */
class Batch implements PublishBatch {
  private remaining: number;
  private failed = false;

  constructor(
    size: number,
    private readonly resolve: () => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.remaining = size;
  }

  settle(error?: Error | null): void {
    if (this.failed) return;
    if (error !== undefined && error !== null) {
      this.failed = true;
      this.reject(error);
      return;
    }
    this.remaining -= 1;
    if (this.remaining === 0) this.resolve();
  }
}

/**
 * The publishing side: one connection, QoS ≥ 1 messages in flight up to the broker's Receive
 * Maximum, sent in call order.
 *
 * Contract: `publish` resolves when the broker has confirmed every message (PUBACK for QoS 1,
 * PUBCOMP for QoS 2; QoS 0: written to the socket). While the broker is unreachable QoS ≥ 1
 * messages go to the store-and-forward buffer: memory only → `publish` stays pending until they are
 * confirmed after reconnect; with a disk store → it resolves once they are fsynced (the file is then
 * the confirm). A full buffer rejects with `CapacityError`; QoS 0 while disconnected rejects with
 * `NotConnectedError`. Messages in flight when the connection drops are resent by mqtt.js after
 * reconnect (at-least-once). A PUBACK/PUBREC with a failure reason code (MQTT 5: 0x87 not authorized
 * when the broker's ACL forbids the topic) rejects with `MqttPublishRefusedError`; the broker has
 * answered, so the message is not held or resent.
 */
export class MqttPublisher {
  private inflight = 0;
  /** QoS 0 publishes written while the socket buffer was full: settled together on its next `drain`. */
  private drainWaiters: PublishBatch[] = [];

  constructor(
    private readonly connection: MqttConnection,
    private readonly store: ForwardStore,
    private readonly log: Logger,
  ) {
    connection.onConnect(() => this.pump());
    connection.onClose(() => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const batch of waiters) batch.settle(new NotConnectedError('MQTT connection closed before QoS 0 messages were written'));
    });
  }

  get held(): number {
    return this.store.size;
  }

  /** Takes ownership of `messages` (fills in their batch). */
  publish(messages: readonly HeldPublish[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const batch = new Batch(messages.length, resolve, reject);
      const connected = this.connection.connected;
      if (!connected && messages.some((message) => message.qos === 0)) {
        batch.settle(new NotConnectedError('MQTT broker unreachable: QoS 0 messages are not stored (at-most-once)'));
        return;
      }
      if (connected && this.store.size === 0 && this.inflight + messages.length <= this.connection.serverReceiveMaximum) {
        for (const message of messages) {
          message.batch = batch;
          this.send(message);
        }
        return;
      }
      const durable = this.store.path !== undefined && !connected;
      for (const message of messages) {
        message.batch = durable ? undefined : batch;
        message.durable = durable;
      }
      this.store.hold(messages, !connected).then(() => {
        if (durable) resolve();
        this.pump();
      }, reject);
    });
  }

  /** Sends held messages, in order, while connected and under the broker's Receive Maximum. */
  pump(): void {
    while (this.connection.connected && this.inflight < this.connection.serverReceiveMaximum) {
      const item = this.store.shift();
      if (item === undefined) return;
      this.send(item);
    }
  }

  private send(item: HeldPublish): void {
    const { client } = this.connection;
    const options = item.properties === undefined ? { qos: item.qos, retain: item.retain } : { qos: item.qos, retain: item.retain, properties: item.properties };
    if (item.qos === 0) {
      // Without a callback: mqtt.js adds one `drain` listener per QoS 0 callback while the socket is
      // full, and removing each from thousands is quadratic. One listener settles them all instead.
      client.publish(item.topic, item.payload, options);
      const batch = item.batch;
      if (batch === undefined) return;
      if (client.stream.writableNeedDrain !== true) {
        batch.settle();
        return;
      }
      if (this.drainWaiters.push(batch) === 1) {
        client.stream.once('drain', () => {
          const waiters = this.drainWaiters;
          this.drainWaiters = [];
          for (const waiter of waiters) waiter.settle();
        });
      }
      return;
    }
    this.inflight += 1;
    client.publish(item.topic, item.payload, options, (error) => {
      this.inflight -= 1;
      const reasonCode = (error as { code?: unknown } | null | undefined)?.code;
      if (typeof reasonCode === 'number' && reasonCode >= 0x80) {
        // the broker answered with a refusal (mqtt.js: "Publish error: Not authorized", code 135)
        const refusal = new MqttPublishRefusedError(item.topic, reasonCode);
        this.log.error('mqtt publish refused by the broker', { topic: item.topic.slice(0, 200), reasonCode, error: refusal.message });
        this.store.confirmed(item);
        item.batch?.settle(refusal);
      } else {
        if (error !== undefined && error !== null) this.log.warn('mqtt publish failed', { topic: item.topic, error: error.message });
        else this.store.confirmed(item);
        item.batch?.settle(error);
      }
      if (this.store.size > 0) this.pump();
    });
  }
}
