import type { Client, IMessage } from '@stomp/stompjs';
import type { Subscriber } from 'rxjs';
import { clipErrorText, DeadLetterHeaders, redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeFrame, DESTINATION_HEADER, ID_HEADER, isWireReserved, TYPES_HEADER } from './stomp-codec.ts';
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
  readonly publishTimeoutMs: number;
  readonly tracker: AttemptTracker;
  readonly log: Logger;
}

/** One MESSAGE handed to the route, and its settlement (one allocation per message). */
class StompDelivery extends Settlement {
  constructor(
    message: Message,
    readonly frame: IMessage,
    readonly generation: number,
    readonly attempt: number,
    readonly trackerKey: string,
    readonly intakeError: Error | undefined,
    private readonly consumer: StompConsumer,
  ) {
    super(message);
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
 *   dead-letter destination (`/queue/DLQ.<name>`, with `x-interchange-reason`…, on its RECEIPT) and ACK —
 *   NACK again if that SEND fails. ActiveMQ (and other brokers): NACK, and the broker applies its policy
 *   — ActiveMQ 5 without a redeliveryPlugin moves the message to its DLQ (`DLQ.<queue>` here) at once.
 * - `attempt` = RabbitMQ's `x-delivery-count` + 1 on quorum queues (`queueType=quorum`; the header is
 *   trusted nowhere else); otherwise 1, or for a `redelivered` MESSAGE at least 2 and one more than this
 *   process last saw nacked.
 * - a MESSAGE over `maxMessageBytes` or not decodable is emitted with `intakeError`.
 * - `stopIntake` stops emitting (MESSAGEs arriving later stay unacknowledged); `dispose` ends the
 *   connection: the broker takes back every unacknowledged message (`redelivered`, and on quorum queues
 *   counted), to the next consumer.
 */
export class StompConsumer {
  private intake = true;
  private disposed = false;
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
    client.ack(delivery.frame.headers.ack as string, delivery.frame.headers.subscription as string);
  }

  /** @internal */
  nack(delivery: StompDelivery, reason: Error): void {
    const client = this.liveClient(delivery);
    if (client === undefined) return;
    const ackId = delivery.frame.headers.ack as string;
    const subscription = delivery.frame.headers.subscription as string;
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
    const frame = delivery.frame;
    this.link.send(this.target.deadLetter, deadLetterHeaders(frame.headers, this.target.destination, delivery.attempt, reason.message), frame.binaryBody, this.settings.publishTimeoutMs).then(
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
    if (this.disposed || !this.intake || generation !== this.link.generation) return; // left unacknowledged: taken back when the connection ends
    const headers = frame.headers;
    const redelivered = headers.redelivered === 'true';
    const brokerId = headers['message-id'] ?? '';
    const trackerKey = `${this.target.destination}\0${this.link.flavour === 'activemq' ? brokerId : (headers[ID_HEADER] ?? brokerId)}`;
    const count = this.quorum && this.link.flavour === 'rabbitmq' ? Number(headers['x-delivery-count'] ?? '0') : Number.NaN;
    let attempt = Number.isInteger(count) && count >= 0 ? count + 1 : redelivered ? 2 : 1;
    if (redelivered) {
      const seen = this.settings.tracker.last(trackerKey);
      if (seen !== undefined && seen + 1 > attempt) attempt = seen + 1;
    }
    let message: Message;
    let intakeError: Error | undefined;
    try {
      message = decodeFrame(headers, frame.binaryBody, { attempt, maxBytes: this.settings.maxMessageBytes }, this.target);
    } catch (error) {
      intakeError = toError(error);
      message = { id: brokerId === '' ? `${this.target.destination}/${generation}/${headers.ack ?? ''}` : brokerId, headers: { attempt, [DESTINATION_HEADER]: headers.destination ?? this.target.destination }, body: Buffer.from(frame.binaryBody) };
      this.settings.log.warn('stomp: a message cannot be taken whole; handed to the route as an intake error', { endpoint: this.target.uri, error: intakeError.message });
    }
    this.subscriber.next(new StompDelivery(message, frame, generation, attempt, trackerKey, intakeError, this));
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
