import type { IPublishPacket } from 'mqtt';
import { PendingReplies, toError, withHeaders, type Endpoint, type Logger, type Message, type RequestOptions } from '../../src/core/index.ts';
import { decodeMessage } from './message-codec.ts';
import { MqttConnection, type ConnectionConfig } from './mqtt-connection.ts';

/** What the requester needs of its transport. */
export interface MqttRequesterSettings {
  /** The private response topic, `interchange/replies/<clientId>`. */
  readonly topic: string;
  /** The reply connection's configuration (its own client id, a clean session). */
  readonly connection: ConnectionConfig;
  /** Publishes the request to its endpoint (the transport's `publish`, so encoding, limits and store-and-forward are the same). */
  readonly publish: (endpoint: Endpoint, message: Message) => Promise<void>;
  readonly log: Logger;
}

/**
 * MQTT 5 request-reply (response topic + correlation data): one connection of its own, opened on the
 * first request, subscribes once (QoS 1, again after each reconnect: a clean session) to the private
 * response topic; each request is published with Response Topic = that topic and Correlation Data =
 * its `correlationId` (header `replyTo`/`correlationId`, as `encodeMessage` maps them), and resolves
 * with the first PUBLISH arriving there with the same correlation data.
 *
 * The responder replies to the request's `replyTo` keeping `correlationId`, e.g.
 * `from('mqtt:services/price?headers=all').transform(…).to('mqtt:{replyTo}')` (consume with
 * `headers=all`: the default `standard` takes the response topic but not the correlation data).
 * A reply is decoded as from a trusted Interchange peer (`headers=all`): only a party that saw the
 * request knows its correlation data, and the deployment's ACL should keep the response topic to
 * its services. Unmatched (late) replies are dropped.
 *
 * Contract: rejects with `TimeoutError` after `timeoutMs`, `InterchangeError` `REQUEST_ABORTED` when
 * `signal` aborts, `REQUEST_IN_FLIGHT` for a correlation id already waiting, `NotConnectedError` when
 * the requester is closed meanwhile, or the publish's error (e.g. `MqttUnencodableError`).
 */
export class MqttRequester {
  private connection: MqttConnection | undefined;
  private subscribed: Promise<void> | undefined;
  private readonly pending = new PendingReplies('mqtt');

  constructor(private readonly settings: MqttRequesterSettings) {}

  request(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message> {
    const correlationId = message.headers.correlationId ?? message.id;
    return this.pending.wait(endpoint.uri, message.id, correlationId, options, () => this.listening().then(() => this.settings.publish(endpoint, withHeaders(message, { replyTo: this.settings.topic, correlationId }))));
  }

  /** Rejects every waiting request with `NotConnectedError` and disconnects. */
  async close(): Promise<void> {
    this.pending.close();
    const connection = this.connection;
    this.connection = undefined;
    this.subscribed = undefined;
    await connection?.end();
  }

  /** Connected and subscribed to the response topic (once; a failed attempt is tried again by the next request). */
  private listening(): Promise<void> {
    this.subscribed ??= this.subscribe().catch((error: unknown) => {
      this.subscribed = undefined;
      const connection = this.connection;
      this.connection = undefined;
      void connection?.end();
      throw error;
    });
    return this.subscribed;
  }

  private async subscribe(): Promise<void> {
    const { topic, log } = this.settings;
    const connection = new MqttConnection(this.settings.connection, log);
    this.connection = connection;
    connection.client.on('message', (_topic: string, _payload: Buffer, packet: IPublishPacket) => this.onReply(packet));
    let first = true;
    connection.onConnect(() => {
      if (first) return; // the first subscription is made below, and awaited
      connection.client.subscribe(topic, { qos: 1 }, (error) => {
        if (error) log.warn('mqtt request-reply: cannot subscribe to the response topic again after a reconnect', { topic, error: error.message });
      });
    });
    await connection.open();
    first = false;
    await connection.client.subscribeAsync(topic, { qos: 1 });
  }

  private onReply(packet: IPublishPacket): void {
    const data = packet.properties?.correlationData;
    let id: string | undefined;
    let reply: Message;
    try {
      reply = decodeMessage(packet, undefined, 1, false, { headers: 'all' });
      id = data === undefined ? reply.headers.correlationId : data.toString();
    } catch (error) {
      this.settings.log.warn('mqtt request-reply: undecodable reply dropped', { topic: packet.topic, error: toError(error).message });
      return;
    }
    if (id === undefined) return;
    this.pending.reply(id, withHeaders(reply, { correlationId: id, mqttTopic: undefined }));
  }
}
