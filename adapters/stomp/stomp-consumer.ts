import { createHash } from 'node:crypto';
import type { Client, IMessage } from '@stomp/stompjs';
import type { Subscriber } from 'rxjs';
import { clipErrorText, DeadLetterHeaders, redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeFrame, DESTINATION_HEADER, ID_HEADER, isWireReserved, TYPES_HEADER } from './stomp-codec.ts';
import { isPermanentBrokerMessage, StompDecodeError, StompSubscribeRefusedError } from './stomp-errors.ts';
import type { StompTarget } from './stomp-endpoint.ts';
import type { StompLink } from './stomp-link.ts';

/** This process's count of deliveries per message for queues whose broker only flags `redelivered` (bounded; oldest dropped first). */
export class AttemptTracker {
  private readonly attempts = new Map<string, number>();
  constructor(private readonly capacity = 10_000) {}

  record(key: string, attempt: number): void {
    this.attempts.delete(key);
    this.attempts.set(key, attempt);
    if (this.attempts.size > this.capacity) this.attempts.delete(this.attempts.keys().next().value as string);
  }

  last(key: string): number | undefined {
    return this.attempts.get(key);
  }

  forget(key: string): void {
    this.attempts.delete(key);
  }
}

export interface ConsumerSettings {
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly maxMessageBytes: number;
  readonly tracker: AttemptTracker;
  /** SENDs a dead letter on another connection than the consumer's (the transport's publishing one), resolved on its RECEIPT. */
  readonly deadLetter: (destination: string, headers: Readonly<Record<string, string>>, body: Uint8Array) => Promise<void>;
  readonly log: Logger;
}

/** One MESSAGE handed to the route, and its settlement (one allocation per message). */
class StompDelivery extends Settlement {
  constructor(
    message: Message,
    readonly headers: Readonly<Record<string, string>>,
    /** The bytes received (empty for a MESSAGE over `maxMessageBytes`: not kept). */
    readonly body: Uint8Array,
    readonly generation: number,
    readonly attempt: number,
    private key: string | undefined,
    readonly intakeError: Error | undefined,
    private readonly consumer: StompConsumer,
  ) {
    super(message);
  }

  /** The attempt tracker's key, computed when first needed (a hash of the body for some). */
  get trackerKey(): string {
    return (this.key ??= this.consumer.trackerKey(this.headers, this.body));
  }

  protected onAck(): void {
    this.consumer.ack(this);
  }

  protected onNack(reason: Error): void {
    this.consumer.nack(this, reason);
  }
}

/**
 * One `consume` subscription, on a STOMP connection of its own (`StompLink`): SUBSCRIBE with
 * `ack:client-individual` and the prefetch as the broker spells it (RabbitMQ `prefetch-count`, ActiveMQ
 * `activemq.prefetchSize`), again after every reconnect.
 *
 * Contract:
 * - at most `prefetch` unacknowledged MESSAGEs per connection (the broker's flow control).
 * - ack → ACK. Settlements of a delivery from a connection that has since dropped, or after the
 *   subscription ended, send nothing: the broker took the message back and delivers it again.
 * - nack → RabbitMQ: NACK (requeued, `attempt` + 1) while `attempt < maxDeliveries`; then SEND to the
 *   dead-letter destination (`/queue/DLQ.<name>`, with `x-interchange-reason`…) on the transport's
 *   publishing connection — never the consumer's, which a broker ERROR (dead-letter destination missing,
 *   refused) would close, taking back every message in flight — and on its RECEIPT ACK; NACK that
 *   message alone if the SEND fails. Nothing is sent for a delivery whose connection has dropped. ActiveMQ (and other brokers): NACK, and the broker applies its policy
 *   — ActiveMQ 5 without a redeliveryPlugin moves the message to its DLQ (`DLQ.<queue>` here) at once.
 * - `attempt` = 1 for a MESSAGE not `redelivered` (whatever its headers say: a producer can write
 *   `x-delivery-count`); for a `redelivered` one RabbitMQ's `x-delivery-count` + 1 on quorum queues
 *   (`queueType=quorum`; trusted nowhere else), else at least 2 and one more than this process last saw
 *   nacked — keyed by `ic-id`, ActiveMQ's `message-id`, or (RabbitMQ without `ic-id`: its `message-id`
 *   is per delivery) a SHA-256 of destination, headers and body.
 * - a MESSAGE over `maxMessageBytes` or not decodable is emitted with `intakeError`; one over
 *   `maxMessageBytes` with an empty body (its bytes are not kept).
 * - an ERROR frame with a permanent verdict (`isPermanentBrokerMessage`) on a connection no MESSAGE came
 *   on — the SUBSCRIBE refused — fails the Observable with `StompSubscribeRefusedError`.
 * - `stopIntake` stops emitting (MESSAGEs arriving later stay unacknowledged); `dispose` ends the
 *   connection: the broker takes back every unacknowledged message (`redelivered`, and on quorum queues
 *   counted), to the next consumer.
 */
export class StompConsumer {
  private intake = true;
  private disposed = false;
  /** The generation of the connection the last MESSAGE came on. */
  private receivedOn = 0;
  private readonly quorum: boolean;

  constructor(
    private readonly target: StompTarget,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly link: StompLink,
    private readonly settings: ConsumerSettings,
  ) {
    this.quorum = target.queueType === 'quorum';
    link.onConnected = (client, generation) => this.subscribe(client, generation);
    link.onRefused = (error) => {
      if (!this.disposed) subscriber.error(error);
    };
    link.onBrokerError = (error) => {
      if (this.disposed || this.receivedOn === link.generation || !isPermanentBrokerMessage(error.brokerMessage)) return;
      this.settings.log.error('stomp: the broker refused the subscription', { endpoint: target.uri, error: error.message });
      subscriber.error(new StompSubscribeRefusedError(error.brokerMessage, error.detail));
    };
  }

  start(): void {
    this.link.start();
  }

  stopIntake(): void {
    this.intake = false;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.intake = false;
    await this.link.close();
  }

  /** @internal */
  ack(delivery: StompDelivery): void {
    const client = this.liveClient(delivery);
    if (client === undefined) return;
    if (delivery.attempt > 1) this.settings.tracker.forget(delivery.trackerKey);
    client.ack(delivery.headers.ack as string, delivery.headers.subscription as string);
  }

  /** @internal */
  nack(delivery: StompDelivery, reason: Error): void {
    const client = this.liveClient(delivery);
    if (client === undefined) return;
    const ackId = delivery.headers.ack as string;
    const subscription = delivery.headers.subscription as string;
    if (this.link.flavour !== 'rabbitmq') {
      this.settings.log.warn('stomp: delivery nacked; the broker applies its redelivery policy (ActiveMQ without a redeliveryPlugin: its DLQ at once)', { endpoint: this.target.uri, id: delivery.message.id, reason: reason.message });
      client.nack(ackId, subscription);
      return;
    }
    const decision = redeliveryDecision({ attempt: delivery.attempt, maxDeliveries: this.target.maxDeliveries ?? this.settings.maxDeliveries, reason });
    if (decision.action === 'redeliver') {
      this.settings.tracker.record(delivery.trackerKey, delivery.attempt);
      client.nack(ackId, subscription);
      return;
    }
    this.settings.tracker.forget(delivery.trackerKey);
    this.settings.log.warn('stomp: delivery moved to the dead-letter destination', { endpoint: this.target.uri, id: delivery.message.id, deadLetter: this.target.deadLetter, attempt: delivery.attempt, reason: reason.message });
    this.settings.deadLetter(this.target.deadLetter, deadLetterHeaders(delivery.headers, this.target.destination, delivery.attempt, reason.message), delivery.body).then(
      () => this.liveClient(delivery)?.ack(ackId, subscription),
      (error: unknown) => {
        this.settings.log.error('stomp: cannot dead-letter a delivery; it is requeued', { endpoint: this.target.uri, id: delivery.message.id, error: toError(error).message });
        this.liveClient(delivery)?.nack(ackId, subscription);
      },
    );
  }

  /** The client to settle `delivery` on: its own connection's, while that is up and the subscription lives. */
  private liveClient(delivery: StompDelivery): Client | undefined {
    if (this.disposed || delivery.generation !== this.link.generation) return undefined;
    return this.link.current;
  }

  private subscribe(client: Client, generation: number): void {
    if (this.disposed) return;
    const flavour = this.link.flavour;
    const headers: Record<string, string> = { ack: 'client-individual', id: 'ic-sub' };
    const prefetch = String(this.settings.prefetch);
    if (flavour !== 'activemq') headers['prefetch-count'] = prefetch;
    if (flavour !== 'rabbitmq') headers['activemq.prefetchSize'] = prefetch;
    if (flavour === 'rabbitmq' && this.target.queueType !== undefined) headers['x-queue-type'] = this.target.queueType;
    client.subscribe(this.target.destination, (frame) => this.received(frame, generation), headers);
  }

  private received(frame: IMessage, generation: number): void {
    if (this.disposed || generation !== this.link.generation) return;
    this.receivedOn = generation;
    if (!this.intake) return; // left unacknowledged: taken back when the connection ends
    const headers = frame.headers;
    const redelivered = headers.redelivered === 'true';
    const brokerId = headers['message-id'] ?? '';
    const count = redelivered && this.quorum && this.link.flavour === 'rabbitmq' ? Number(headers['x-delivery-count'] ?? '0') : Number.NaN;
    let trackerKey: string | undefined;
    let attempt = Number.isInteger(count) && count >= 1 ? count + 1 : redelivered ? 2 : 1;
    if (redelivered) {
      trackerKey = this.trackerKey(headers, frame.binaryBody);
      const seen = this.settings.tracker.last(trackerKey);
      if (seen !== undefined && seen + 1 > attempt) attempt = seen + 1;
    }
    let message: Message;
    let intakeError: Error | undefined;
    let body = frame.binaryBody;
    try {
      message = decodeFrame(headers, frame.binaryBody, { attempt, maxBytes: this.settings.maxMessageBytes }, this.target);
    } catch (error) {
      intakeError = toError(error);
      if (error instanceof StompDecodeError && error.oversized) {
        trackerKey ??= this.trackerKey(headers, body);
        body = new Uint8Array(0); // not kept: maxMessageBytes bounds what deliveries hold
      }
      message = { id: brokerId === '' ? `${this.target.destination}/${generation}/${headers.ack ?? ''}` : brokerId, headers: { attempt, [DESTINATION_HEADER]: headers.destination ?? this.target.destination }, body: Buffer.from(body) };
      this.settings.log.warn('stomp: a message cannot be taken whole; handed to the route as an intake error', { endpoint: this.target.uri, error: intakeError.message });
    }
    this.subscriber.next(new StompDelivery(message, headers, body, generation, attempt, trackerKey, intakeError, this));
  }

  /** @internal What identifies a message across its deliveries (see the class contract). */
  trackerKey(headers: Readonly<Record<string, string>>, body: Uint8Array): string {
    const brokerId = headers['message-id'] ?? '';
    if (this.link.flavour === 'activemq') return `${this.target.destination}\0${brokerId}`;
    const id = headers[ID_HEADER];
    if (id !== undefined) return `${this.target.destination}\0${id}`;
    if (this.link.flavour !== 'rabbitmq') return `${this.target.destination}\0${brokerId}`;
    const hash = createHash('sha256').update(this.target.destination).update('\0');
    for (const name of Object.keys(headers).sort()) {
      if (name === 'message-id' || name === 'ack' || name === 'subscription' || name === 'redelivered' || name === 'x-delivery-count') continue;
      hash.update(name).update('\0').update(headers[name] as string).update('\0');
    }
    return `${this.target.destination}\0#${hash.update(body).digest('base64')}`;
  }
}

/**
 * The headers of a message as it goes to the dead-letter destination: the original ones a SEND may
 * carry (Interchange's `ic-*`, `content-type`, and every header no broker owns; any `x-interchange-*`
 * of the original dropped), `persistent:true`, then `x-interchange-reason` (clipped), `-attempts`,
 * `-failed-at` (epoch ms) and `x-interchange-source` (the destination), typed in `ic-types`.
 */
export function deadLetterHeaders(original: Readonly<Record<string, string>>, source: string, attempts: number, reason: string): Record<string, string> {
  const headers: Record<string, string> = {};
  let types: Record<string, unknown> = {};
  for (const name in original) {
    if (name === TYPES_HEADER) {
      try {
        const parsed: unknown = JSON.parse(original[name] as string);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) types = parsed as Record<string, unknown>;
      } catch {
        types = {};
      }
      continue;
    }
    if (name.toLowerCase().startsWith('x-interchange-')) continue;
    if (name.startsWith('ic-') || name === 'content-type' || !isWireReserved(name)) headers[name] = original[name] as string;
  }
  headers.persistent = 'true';
  headers[DeadLetterHeaders.reason] = encodeURIComponent(clipErrorText(reason));
  headers[DeadLetterHeaders.attempts] = String(attempts);
  headers[DeadLetterHeaders.failedAt] = String(Date.now());
  headers['x-interchange-source'] = source;
  headers[TYPES_HEADER] = JSON.stringify({ ...types, [DeadLetterHeaders.reason]: 'e', [DeadLetterHeaders.attempts]: 'n', [DeadLetterHeaders.failedAt]: 'n' });
  return headers;
}
