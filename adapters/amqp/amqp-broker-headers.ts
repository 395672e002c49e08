/**
 * Message headers RabbitMQ or its common plugins act on when a message is published — routing,
 * delaying, deduplicating, dead-letter and federation cycle detection, protocol conversion — or
 * that the broker itself writes on delivery. A header that came from input (a device, a foreign
 * system, a message consumed elsewhere) must not steer the broker: `encodeMessage` drops them unless
 * the endpoint allow-lists them with `?brokerHeaders=`.
 *
 * Names are exact and case-sensitive, as RabbitMQ reads them (`CC` acts, `cc` is a plain header).
 * - `CC`, `BCC`: sender-selected distribution (extra routing keys; `BCC` is removed before delivery).
 * - `x-delay`: delayed-message exchange plugin.
 * - `x-death`, `x-first-death-*`, `x-last-death-*`: dead-lettering history (cycle detection).
 * - `x-delivery-count`: quorum queues (delivery limit); `x-received-from`: federation (loop detection).
 * - `x-stream-filter-value`: stream filtering.
 * - `x-deduplication-header`, `x-cache-ttl`: message-deduplication plugin (`x-message-deduplication`
 *   is its exchange type and queue argument, dropped as a header name too).
 * - `x-shovelled`, `x-shovelled-timestamp`: shovel provenance; `x-mqtt-publish-qos`: the MQTT plugin's QoS.
 * - `x-amqp-1.0-*`, `x-basic-*`: AMQP 1.0 sections and annotations that RabbitMQ before 4.4 restores
 *   when it converts a message.
 */
export const BROKER_HEADERS: readonly string[] = [
  'CC',
  'BCC',
  'x-delay',
  'x-death',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-first-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-last-death-exchange',
  'x-delivery-count',
  'x-received-from',
  'x-stream-filter-value',
  'x-deduplication-header',
  'x-cache-ttl',
  'x-message-deduplication',
  'x-shovelled',
  'x-shovelled-timestamp',
  'x-mqtt-publish-qos',
];

/** Families of broker headers, by prefix (any name that starts with one is a broker header). */
export const BROKER_HEADER_PREFIXES: readonly string[] = ['x-first-death-', 'x-last-death-', 'x-amqp-1.0-', 'x-basic-'];

const EXACT = new Set(BROKER_HEADERS);

/** Whether RabbitMQ or a common plugin acts on a message header of this name. Cheap for the usual names. */
export function isBrokerHeader(name: string): boolean {
  const first = name.charCodeAt(0);
  if (first === 0x78 /* x */) {
    if (EXACT.has(name)) return true;
    for (const prefix of BROKER_HEADER_PREFIXES) if (name.startsWith(prefix)) return true;
    return false;
  }
  return (first === 0x43 /* C */ || first === 0x42) /* B */ && (name === 'CC' || name === 'BCC');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const ONE_NAME = `(?:${[...BROKER_HEADERS.map(escape), ...BROKER_HEADER_PREFIXES.map((prefix) => `${escape(prefix)}[A-Za-z0-9._-]+`)].join('|')})`;

/** `?brokerHeaders=` syntax for the endpoint options schema: a comma-separated list of broker header names. */
export const BROKER_HEADERS_PATTERN = `^${ONE_NAME}(?:,${ONE_NAME})*$`;

/** The allow-list of an endpoint's `brokerHeaders` option (already validated by the schema). */
export function parseBrokerHeaders(option: string | undefined): ReadonlySet<string> | undefined {
  return option === undefined ? undefined : new Set(option.split(','));
}
