import { createHash } from 'node:crypto';
import { clipErrorText, withHeaders, type Logger, type Message } from '../../src/core/index.ts';

/** The transport's side of the dead-letter topic: publishing one message, and creating the session that keeps them. */
export interface DeadLetterPort {
  /** Creates (once) the persistent session subscribed to `filter` that keeps dead letters, as `provision` does. */
  provision(filter: string, clientId: string): Promise<void>;
  publish(topic: string, message: Message): Promise<void>;
}

/** Topics longer than this are named by their hash under `<prefix>/_hashed/` (the full topic stays in `mqttTopic`). */
const MAX_TOPIC_CHARS = 512;

/**
 * The implicit dead-letter destination of MQTT consumers: where a message goes that failed
 * permanently and that its route did not dead-letter itself. MQTT keeps messages only for sessions
 * that exist, so a topic nobody subscribes to would drop them: before the first dead letter, a
 * persistent session `<clientId>` subscribed to `<prefix>/#` (QoS 1) is created, and the broker keeps
 * every dead letter for it — an operator reads them by connecting with that client id (or moves them
 * elsewhere); each one is logged at WARN naming the topic and the session. Mosquitto keeps at most
 * `max_queued_messages` per session (1,000 by default): raise it for a real deployment.
 *
 * A dead letter is the message with `x-interchange-error`, `x-interchange-error-code` and
 * `x-interchange-dead-letter-topic`, on `<prefix>/<original topic>` (or `<prefix>/_hashed/<sha256>`
 * for a topic over 512 characters).
 */
export class DeadLetterTopic {
  private provisioned: Promise<void> | undefined;

  constructor(
    readonly prefix: string,
    readonly clientId: string,
    private readonly port: DeadLetterPort,
    private readonly log: Logger,
  ) {}

  /** The dead-letter topic of a message that arrived on `topic`. */
  topicFor(topic: string): string {
    return topic.length <= MAX_TOPIC_CHARS ? `${this.prefix}/${topic}` : `${this.prefix}/_hashed/${createHash('sha256').update(topic).digest('hex')}`;
  }

  /** Publishes the dead letter (after the keeping session exists); resolves on the broker's confirm. */
  async send(message: Message, reason: Error): Promise<void> {
    this.provisioned ??= this.port.provision(`${this.prefix}/#`, this.clientId).catch((error: unknown) => {
      this.provisioned = undefined;
      throw error;
    });
    await this.provisioned;
    const source = String(message.headers.mqttTopic ?? 'unknown');
    const topic = this.topicFor(source);
    const code = (reason as { code?: unknown }).code;
    const dead = withHeaders(message, {
      'x-interchange-error': clipErrorText(reason.message),
      'x-interchange-error-code': typeof code === 'string' ? code : 'REJECTED',
      'x-interchange-dead-letter-topic': topic,
      attempt: undefined,
    });
    await this.port.publish(topic, dead);
    this.log.warn('mqtt message parked on the dead-letter topic', {
      topic: topic.length <= 200 ? topic : `${topic.slice(0, 200)}…`,
      keptForSession: this.clientId,
      messageId: message.id,
      code: typeof code === 'string' ? code : 'REJECTED',
      error: reason.message.slice(0, 300),
    });
  }
}
