import { EndpointError } from '../../src/core/index.ts';
import { MqttUnencodableError } from './mqtt-errors.ts';

/**
 * An endpoint path as an MQTT subscription: named wildcards (`+deviceId`, `#rest`) become plain
 * `+`/`#` in the filter, and the topic levels they match become message headers named after them.
 *
 * `devices/+deviceId/telemetry` → filter `devices/+/telemetry`; topic `devices/d1/telemetry` →
 * `{ deviceId: 'd1' }`. A `#name` header holds the rest of the topic, `/`-joined.
 * `$share/<group>/<filter>` (or `?group=`) is a shared subscription; the publish topic drops the prefix.
 */
export class TopicPattern {
  /** The filter to SUBSCRIBE with (`$share/<group>/` included). */
  readonly filter: string;
  /** The topic filter without the shared-subscription prefix. */
  readonly topic: string;
  readonly group: string | undefined;
  private readonly params: readonly { readonly name: string; readonly level: number; readonly rest: boolean }[];

  constructor(path: string, group?: string) {
    let levels = path.split('/');
    let shareGroup = group;
    if (levels[0] === '$share') {
      if (levels.length < 3 || levels[1] === '') throw new EndpointError(`'${path}': a shared subscription is $share/<group>/<topic filter>`);
      shareGroup = levels[1];
      levels = levels.slice(2);
    }
    const params: { name: string; level: number; rest: boolean }[] = [];
    const plain = levels.map((level, index) => {
      if (level.startsWith('+') || level.startsWith('#')) {
        const name = level.slice(1);
        const rest = level[0] === '#';
        if (rest && index !== levels.length - 1) throw new EndpointError(`'${path}': '#' must be the last topic level`);
        if (name !== '') {
          if (!/^[A-Za-z_$][\w$-]*$/.test(name)) throw new EndpointError(`'${path}': topic parameter '${name}' must be an identifier`);
          if (ADAPTER_HEADERS.test(name)) throw new EndpointError(`'${path}': topic parameter '${name}' would let a publisher set a header that only Interchange sets (x-interchange-*, mqttTopic, attempt, timestamp, expiresAt)`);
          params.push({ name, level: index, rest });
        }
        return level[0] as string;
      }
      if (level.includes('+') || level.includes('#')) throw new EndpointError(`'${path}': a wildcard must fill a whole topic level`);
      return level;
    });
    this.topic = plain.join('/');
    this.group = shareGroup;
    this.filter = shareGroup === undefined ? this.topic : `$share/${shareGroup}/${this.topic}`;
    this.params = params;
  }

  get hasParams(): boolean {
    return this.params.length > 0;
  }

  get hasWildcards(): boolean {
    return this.topic.includes('+') || this.topic.includes('#');
  }

  /** The named parameters' values in a concrete topic that matched the filter. */
  paramsOf(topic: string): Record<string, string> {
    const levels = topic.split('/');
    const values: Record<string, string> = {};
    for (const param of this.params) values[param.name] = param.rest ? levels.slice(param.level).join('/') : (levels[param.level] ?? '');
    return values;
  }
}

/**
 * Header names a topic parameter may not take: the value of a parameter is chosen by whoever
 * publishes on the topic, and these are Interchange's own (or numbers by definition).
 */
const ADAPTER_HEADERS = /^(x-interchange-.*|mqtttopic|attempt|timestamp|expiresat)$/i;

/** Characters brokers refuse in a topic (Mosquitto disconnects the client): C0/C1 controls (NUL included), non-characters, lone surrogates. */
const REFUSED_IN_TOPIC = /[\p{Cc}\p{NChar}\p{Cs}]/u;

/**
 * The topic to PUBLISH to for an endpoint path: no shared prefix. Throws `MqttUnencodableError`
 * (permanent) for a topic no broker takes: empty, with a wildcard (`+`, `#`), with a control
 * character (NUL included), a Unicode non-character or a lone surrogate (it would be sent as U+FFFD:
 * another topic), or over 65,535 bytes of UTF-8.
 */
export function publishTopic(path: string): string {
  const levels = path.split('/');
  const topic = levels[0] === '$share' ? levels.slice(2).join('/') : path;
  if (topic.includes('+') || topic.includes('#')) throw new MqttUnencodableError(`cannot publish to '${shown(path)}': wildcards are for subscribing (use a {placeholder} template)`);
  if (topic === '') throw new MqttUnencodableError(`cannot publish to an empty topic ('${path}')`);
  if (REFUSED_IN_TOPIC.test(topic)) throw new MqttUnencodableError(`cannot publish to '${shown(path)}': a topic may not contain control characters, Unicode non-characters or lone surrogates`);
  if (topic.length > 0x3fff && Buffer.byteLength(topic) > 0xffff) throw new MqttUnencodableError(`cannot publish to '${shown(path)}': the topic is ${Buffer.byteLength(topic)} bytes of UTF-8, over MQTT's 65,535`);
  return topic;
}

/** A topic as an error message may quote it (its length is the publisher's choice). */
function shown(topic: string): string {
  return topic.length <= 200 ? JSON.stringify(topic).slice(1, -1) : `${JSON.stringify(topic.slice(0, 200)).slice(1, -1)}… (${topic.length} chars)`;
}
