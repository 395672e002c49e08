import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

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

/** MQTT 5 reason codes (PUBACK, PUBREC, SUBACK) by name, for messages. */
export const MQTT_REASON_NAMES: Readonly<Record<number, string>> = {
  0x80: 'unspecified error',
  0x83: 'implementation specific error',
  0x87: 'not authorized',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x97: 'quota exceeded',
  0x99: 'payload format invalid',
  0x9e: 'shared subscriptions not supported',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

/** Reason codes that say "the same request will be refused again" (not 0x80, 0x83, 0x91, 0x97). */
const PERMANENT_REASONS = new Set([0x87, 0x8f, 0x90, 0x99, 0x9e, 0xa1, 0xa2]);

/**
 * The broker refused a QoS ≥ 1 publish with an MQTT 5 reason code in its PUBACK/PUBREC — `0x87` not
 * authorized when its ACL forbids the topic. Permanent for not authorized, an invalid topic name or
 * payload format (the route dead-letters the message instead of retrying it); transient for quota
 * exceeded and unspecified errors. MQTT 3.1.1 has no such code: Mosquitto acknowledges a forbidden
 * publish as if it were delivered and drops it — that cannot be detected by the publisher.
 */
export class MqttPublishRefusedError extends InterchangeError {
  override readonly name = 'MqttPublishRefusedError';
  constructor(
    readonly topic: string,
    /** The MQTT 5 reason code (0x87 not authorized…). */
    readonly reasonCode: number,
  ) {
    super('MQTT_PUBLISH_REFUSED', `the MQTT broker refused a publish to '${quoteTopic(topic)}' (reason code 0x${reasonCode.toString(16)}: ${MQTT_REASON_NAMES[reasonCode] ?? 'unknown'})`, { permanent: PERMANENT_REASONS.has(reasonCode) });
  }
}

function quoteTopic(topic: string): string {
  return topic.length <= 200 ? topic : `${topic.slice(0, 200)}…`;
}
