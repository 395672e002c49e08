import { UnencodableMessageError } from '../../src/core/index.ts';

/**
 * One message cannot be a valid MQTT PUBLISH: a topic that is empty, has a wildcard or a character
 * brokers refuse, or is over 65,535 bytes; a user property, content type, response topic or
 * correlation data over 65,535 bytes or with a refused character; a body that cannot be serialized;
 * a packet over the maximum packet size. Permanent, and that message's alone: `MqttTransport.publish`
 * sends the others of the call and rejects with `PartialPublishError` naming this one — the
 * connection never sees the packet (a broker drops the connection of a client that sends a
 * malformed one, and mqtt.js would resend it after every reconnect).
 */
export class MqttUnencodableError extends UnencodableMessageError {
  override readonly name = 'MqttUnencodableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('MQTT_UNENCODABLE', message, options);
  }
}
