/**
 * The flagship flow, MQTT devices → RabbitMQ, as a function of its names and environment so that the
 * route file (`route.ts`, `npm start`), the tests and the benchmark run the very same routes.
 */
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import { ContainerModule } from 'inversify';
import { deadLetter, from, Logger, redactUrl, reject, retryAfter, schemaModule, type FailurePolicy, type RouteBuilder, type StepFailure } from 'interchange-eip';
import { backoffDelay, checkUrlCredentials, Transport } from 'interchange-eip/spi';
import { amqpMemoryModule, amqpModule, type AmqpMemoryBroker, type AmqpTransportOptions, type Topology } from 'interchange-eip/adapters/amqp';
import { MqttTransport, type MqttTransportOptions } from 'interchange-eip/adapters/mqtt';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { asReceived, checkTelemetry, foldReading, isAlert, READING_CONTRACT, readingHeaders, toBackendReading, toSummary, type DeviceSummary } from './telemetry.ts';

/** Every name the flow uses on the brokers. The defaults are the issue's; tests give each run its own. */
export interface FlowNames {
  /** MQTT topic filter of device telemetry; `+deviceId` is the device id (a header of that name). */
  readonly telemetryTopic: string;
  /** Durable topic exchange of valid readings, alerts and summaries. */
  readonly exchange: string;
  /** Fanout exchange of invalid messages. */
  readonly deadLetterExchange: string;
  readonly readingsQueue: string;
  readonly alertsQueue: string;
  readonly summariesQueue: string;
  readonly invalidQueue: string;
  /** In-process channel handing confirmed readings from the `telemetry` route to the `summaries` route. */
  readonly summaryFeed: string;
}

/**
 * The flow's names, optionally prefixed: `flowNames()` gives the issue's (`devices/+deviceId/telemetry`,
 * `telemetry`, `telemetry.dlx`, `telemetry.readings`, …); `flowNames('t1-')` gives
 * `t1-/devices/+deviceId/telemetry`, `t1-telemetry`, `t1-telemetry.dlx`, ….
 */
export function flowNames(prefix = ''): FlowNames {
  return {
    telemetryTopic: `${prefix === '' ? '' : `${prefix}/`}devices/+deviceId/telemetry`,
    exchange: `${prefix}telemetry`,
    deadLetterExchange: `${prefix}telemetry.dlx`,
    readingsQueue: `${prefix}telemetry.readings`,
    alertsQueue: `${prefix}telemetry.alerts`,
    summariesQueue: `${prefix}telemetry.summaries`,
    invalidQueue: `${prefix}telemetry.invalid`,
    summaryFeed: `${prefix}telemetry.summary-feed`,
  };
}

/** The RabbitMQ topology the flow declares (at connect and after every reconnect). */
export function flowTopology(names: FlowNames): Topology {
  return {
    exchanges: [
      { name: names.exchange, type: 'topic', durable: true },
      { name: names.deadLetterExchange, type: 'fanout', durable: true },
    ],
    queues: [{ name: names.readingsQueue }, { name: names.alertsQueue }, { name: names.summariesQueue }, { name: names.invalidQueue }],
    bindings: [
      { exchange: names.exchange, queue: names.readingsQueue, routingKey: 'reading.#' },
      { exchange: names.exchange, queue: names.alertsQueue, routingKey: 'alert.#' },
      { exchange: names.exchange, queue: names.summariesQueue, routingKey: 'summary.#' },
      { exchange: names.deadLetterExchange, queue: names.invalidQueue },
    ],
  };
}

export interface FlowOptions {
  readonly names?: FlowNames;
  /**
   * MQTT messages in flight at once (the consumer's receive maximum; Mosquitto caps it at its
   * `max_inflight_messages`, 20 by default). Default 1,000.
   */
  readonly prefetch?: number;
  /** Readings per device summary (default 10). */
  readonly summarySize?: number;
  /** A device's open summary completes after this long without a reading (default 5,000 ms). */
  readonly summaryIdleMs?: number;
  /** With the `summaries` route (default true); without it, `telemetry` is the bare MQTT → AMQP bridge (the benchmark's like-for-like). */
  readonly summaries?: boolean;
  /**
   * MQTT connections consuming the telemetry (default 1). More than one: routes `telemetry-1` …
   * `telemetry-<n>` on one shared subscription (`$share/<exchange>-bridge/…`), each its own connection
   * with its own broker window (Mosquitto: 20 unacknowledged messages per client), for throughput at
   * the cost of per-device order, which a shared subscription does not keep.
   */
  readonly consumers?: number;
  /** In-process attempts at a transient failure before the message goes back to MQTT (default 10; tests shorten it). */
  readonly transientAttempts?: number;
}

/** In-process attempts at a transient failure (a publish that timed out) before the message goes back to MQTT. */
const TRANSIENT_ATTEMPTS = 10;

/**
 * The error policy: an invalid message (a permanent failure) goes to the dead-letter exchange, as
 * the device sent it (`asReceived`); a transient one (the broker unreachable for longer than the
 * publish timeout) is retried with exponential backoff, then rejected to MQTT, whose consumer keeps
 * it unacknowledged and redelivers it with backoff until RabbitMQ takes it — never dead-lettered as
 * invalid, never dropped (intake stops while the receive window is held, and the broker keeps the rest).
 */
export function flowErrorPolicy({ error, attempt }: StepFailure, transientAttempts = TRANSIENT_ATTEMPTS): FailurePolicy {
  if (error.permanent) return deadLetter('invalid device telemetry');
  if (attempt < transientAttempts) return retryAfter(backoffDelay(attempt - 1, { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }));
  return reject();
}

/**
 * The two routes.
 *
 * `telemetry`: MQTT `devices/+deviceId/telemetry` (QoS 1) → check against `device.telemetry@1` and the
 * topic's device id (invalid → `telemetry.dlx` with the original bytes and the reason) → translate to
 * `backend.reading@1` → content-based router on the `telemetry` exchange (`alert.<id>` at ≥ 50 °C,
 * else `reading.<id>`; persistent, confirmed) → hand the reading to the summaries. An MQTT message is
 * acknowledged (PUBACK) only once its reading — or its dead letter — is confirmed by RabbitMQ.
 *
 * `summaries`: per device, every `summarySize` readings or after `summaryIdleMs` idle →
 * `{ deviceId, count, minC, maxC, avgC, from, to }` to `summary.<id>`. Its aggregator settles inputs
 * on arrival: open groups hold no MQTT receive window (50 devices × 10 readings would exceed it), at
 * the price that a crash loses the open groups (never a reading).
 */
export function flowRoutes({ names = flowNames(), prefetch = 1_000, summarySize = 10, summaryIdleMs = 5_000, summaries: withSummaries = true, consumers = 1, transientAttempts = TRANSIENT_ATTEMPTS }: FlowOptions = {}): RouteBuilder<unknown>[] {
  const policy = (failure: StepFailure): FailurePolicy => flowErrorPolicy(failure, transientAttempts);
  const exchange = `amqp:exchange/${names.exchange}`;
  // payload=raw: bodies are the bytes as the device sent them; the check parses them once, and an
  // invalid message is dead-lettered with its original bytes. headers=none: nothing a device sends
  // besides topic and payload becomes a header or an id (devices are untrusted input).
  const options = 'qos=1&payload=raw&headers=none';
  const source = consumers === 1 ? `mqtt:${names.telemetryTopic}?${options}` : `mqtt:$share/${names.exchange}-bridge/${names.telemetryTopic}?${options}`;
  const bridge = (id: string): RouteBuilder<unknown> => {
    const route = from(source, { id, prefetch })
      .onError(policy, { maxAttempts: transientAttempts + 1, deadLetterUri: `amqp:exchange/${names.deadLetterExchange}`, deadLetterLabel: 'invalid', prepareDeadLetter: asReceived })
      .step('check-telemetry', checkTelemetry())
      .transform((message) => toBackendReading(message.body), { id: 'translate' })
      .setHeaders(readingHeaders, { id: 'reading-headers' })
      .choice(
        (router) =>
          router
            .when((message) => isAlert(message.body), (alerts) => alerts.to(`${exchange}?routingKey=alert.{deviceId}`, { contract: READING_CONTRACT, id: 'alerts' }))
            .otherwise((readings) => readings.to(`${exchange}?routingKey=reading.{deviceId}`, { contract: READING_CONTRACT, id: 'readings' })),
        { id: 'route-by-temperature' },
      );
    // hand the confirmed reading to the summaries (Camel's seda:)
    return (withSummaries ? route.to(`memory:${names.summaryFeed}`) : route) as RouteBuilder<unknown>;
  };
  const telemetry = consumers === 1 ? [bridge('telemetry')] : Array.from({ length: consumers }, (_, index) => bridge(`telemetry-${index + 1}`));
  if (!withSummaries) return telemetry;

  const summaries = from<BackendReadingV1>(`memory:${names.summaryFeed}`, { id: 'summaries' })
    .onError(policy, { maxAttempts: transientAttempts + 1 }) // a summary whose publish keeps failing is lost (logged)
    .aggregate({ correlate: (message) => message.body.deviceId, strategy: foldReading, size: summarySize, timeoutMs: summaryIdleMs, settleInputs: 'on-arrival' }, { id: 'per-device' })
    .transform((message): DeviceSummary => toSummary(message.body), { id: 'summarise' })
    .setHeaders(() => ({ contentType: 'application/json' }))
    .to(`${exchange}?routingKey=summary.{deviceId}`, { id: 'summaries' });

  return [...telemetry, summaries as RouteBuilder<unknown>];
}

/** Where the flow's brokers are: `MQTT_URL` and `AMQP_URL`; unset (or empty) means the zero-setup stand-ins. */
export interface FlowEnvironment {
  readonly mqttUrl?: string | undefined;
  readonly amqpUrl?: string | undefined;
  /** Base MQTT client id (default `MQTT_CLIENT_ID`, else `interchange-mqtt-to-amqp-<host>`): stable, so the session survives a restart. */
  readonly mqttClientId?: string | undefined;
}

/** Throws `EndpointError` (never showing the password) when `MQTT_URL` or `AMQP_URL` has user info to percent-encode. */
export function environmentOf(env: NodeJS.ProcessEnv = process.env): FlowEnvironment {
  for (const name of ['MQTT_URL', 'AMQP_URL']) checkUrlCredentials(env[name] ?? '', name);
  return { mqttUrl: env.MQTT_URL || undefined, amqpUrl: env.AMQP_URL || undefined, mqttClientId: env.MQTT_CLIENT_ID || undefined };
}

export interface FlowModules {
  readonly modules: ContainerModule[];
  /** The in-memory RabbitMQ stand-in (`amqpMemoryModule`'s broker), when `AMQP_URL` is not set. */
  readonly standIn: AmqpMemoryBroker | undefined;
  /** Lines for the console at start, saying loudly what stands in for what. */
  announce(mqtt: MqttTransport): string[];
}

/** The contracts folder of this repository, wherever the process runs from. */
export const SCHEMAS_DIRECTORY = fileURLToPath(new URL('../../schemas', import.meta.url));

/** Adapter options beyond the URLs (tests: short sessions, fast reconnects, long publish timeouts). */
export interface FlowTransportOptions {
  readonly mqtt?: Omit<MqttTransportOptions, 'url'>;
  readonly amqp?: Omit<AmqpTransportOptions, 'url' | 'topology'>;
}

/**
 * The DI modules of the flow: the schema registry; MQTT at `MQTT_URL`, else an embedded
 * broker; RabbitMQ at `AMQP_URL` with the flow's topology, else the in-memory broker
 * (`amqpMemoryModule`) with the same topology.
 */
export function flowModules(names: FlowNames, environment: FlowEnvironment = environmentOf(), { mqtt: mqttOptions = {}, amqp: amqpOptions = {} }: FlowTransportOptions = {}): FlowModules {
  const { mqttUrl, amqpUrl } = environment;
  const topology = flowTopology(names);
  const clientId = environment.mqttClientId ?? `interchange-mqtt-to-amqp-${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 48);
  const mqtt = new ContainerModule(({ bind }) => {
    bind(MqttTransport)
      .toDynamicValue((context) => {
        const logger = context.get<Logger>(Logger, { optional: true });
        return new MqttTransport({ clientId, ...(mqttUrl === undefined ? {} : { url: mqttUrl }), ...mqttOptions, ...(logger === undefined ? {} : { logger }) });
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(MqttTransport);
  });
  const memory = amqpUrl === undefined ? amqpMemoryModule({ topology }) : undefined;
  const amqp = memory ?? amqpModule({ ...amqpOptions, url: amqpUrl, topology });
  return {
    modules: [schemaModule({ directory: SCHEMAS_DIRECTORY }), mqtt, amqp],
    standIn: memory?.broker,
    announce: (transport) => [
      mqttUrl === undefined
        ? `no MQTT_URL: devices publish to an EMBEDDED MQTT broker at ${transport.url} (loopback only, in memory); set MQTT_URL=mqtt://host:1883 for a real broker`
        : `MQTT_URL is set: subscribing to '${names.telemetryTopic}' at ${redactUrl(mqttUrl)}`,
      amqpUrl === undefined
        ? `no AMQP_URL: an IN-MEMORY STAND-IN replaces RabbitMQ — nothing leaves this process; set AMQP_URL=amqp://guest:guest@127.0.0.1:5672 for the real broker`
        : `AMQP_URL is set: publishing to RabbitMQ at ${redactUrl(amqpUrl)} (exchange '${names.exchange}', queues ${[names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue].join(', ')})`,
    ],
  };
}
