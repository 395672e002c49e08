/**
 * The flagship flow, MQTT devices → RabbitMQ, as a function of its names and environment so that the
 * route file (`route.ts`, `npm start`), the tests and the benchmark run the very same routes.
 */
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ContainerModule } from 'inversify';
import { deadLetter, from, Logger, redactUrl, reject, retryAfter, schemaModule, type FailurePolicy, type Message, type RouteBuilder, type StepFailure } from 'interchange-eip';
import { backoffDelay, checkUrlCredentials, InMemoryPersistentAggregationRepository, Transport, type PersistentAggregationRepository } from 'interchange-eip/spi';
import { amqpMemoryModule, amqpModule, type AmqpMemoryBroker, type AmqpTransportOptions, type Topology } from 'interchange-eip/adapters/amqp';
import { MqttTransport, type MqttTransportOptions } from 'interchange-eip/adapters/mqtt';
import { bufferModule } from 'interchange-eip/adapters/buffer';
import { openDatabase, openEmbeddedDatabase, PostgresAggregationRepository } from 'interchange-eip/adapters/postgres';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { asReceived, checkTelemetry, foldReading, isAlert, READING_CONTRACT, readingHeaders, TELEMETRY_CONTRACT, toBackendReading, toSummary, type DeviceSummary, type SummaryState } from './telemetry.ts';

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
  };
}

/**
 * The RabbitMQ topology the flow declares (at connect and after every reconnect). `queueType: 'quorum'`
 * (`QUEUE_TYPE=quorum`) declares replicated quorum queues, for a RabbitMQ cluster; a queue already
 * declared with the other type is refused by the broker (406), so choose before the first run.
 */
export function flowTopology(names: FlowNames, { queueType = 'classic' }: { readonly queueType?: 'classic' | 'quorum' } = {}): Topology {
  return {
    exchanges: [
      { name: names.exchange, type: 'topic', durable: true },
      { name: names.deadLetterExchange, type: 'fanout', durable: true },
    ],
    queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue].map((name) => ({ name, type: queueType })),
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
  /** With the per-device summaries (default true); without them, the bare MQTT → AMQP bridge (the benchmark's like-for-like). */
  readonly summaries?: boolean;
  /**
   * Where open summaries live (default: in process memory, lost with it). A durable, shared store
   * (`PostgresAggregationRepository`, `RedisAggregationRepository`) makes them survive a crash and
   * lets several instances of the bridge fold one device's readings into the same summaries.
   */
  readonly summaryRepository?: PersistentAggregationRepository<SummaryState>;
  /**
   * At stop, complete and send the open summaries (default false: with a durable store they stay there
   * and continue at the next start). The zero-setup stand-in turns it on: its store is process memory.
   */
  readonly completeSummariesOnStop?: boolean;
  /** Summary timing for tests: how often the repository is swept for groups that timed out elsewhere, and how long a completing instance holds a summary. */
  readonly summaryRecovery?: { readonly recoveryIntervalMs?: number; readonly leaseMs?: number };
  /**
   * Through a durable local buffer (default false; the route file turns it on with `AMQP_URL`): the
   * `telemetry` route ends at `buffer:<exchange>` — an MQTT message is acknowledged once its reading
   * is fsync'd there — and the `forward` route takes the buffer to RabbitMQ (and the summaries), so a
   * RabbitMQ outage fills the buffer instead of the MQTT broker's per-client queue. Invalid messages go
   * through their own buffer (`<exchange>.dead`) to the dead-letter exchange.
   */
  readonly buffered?: boolean;
  /**
   * MQTT connections consuming the telemetry (default 1). More than one: routes `telemetry-1` …
   * `telemetry-<n>` on one shared subscription, each its own connection with its own broker window
   * (Mosquitto: 20 unacknowledged messages per client), for throughput at the cost of per-device
   * order, which a shared subscription does not keep.
   */
  readonly consumers?: number;
  /**
   * The shared-subscription group (`$share/<group>/…`): every process of the bridge with the same
   * group shares the devices' messages (scale-out on the broker). Default: `<exchange>-bridge` when
   * `consumers` > 1, else none (a plain subscription).
   */
  readonly shareGroup?: string;
  /** In-process attempts at a transient failure before the message goes back to its source (default 10; tests shorten it). */
  readonly transientAttempts?: number;
  /**
   * What each intake route does before the check, and the MQTT source options that needs (the signed
   * variant's verification, `signed-flow.ts`): `sourceOptions` replace `qos=1&payload=raw&headers=trace`,
   * `first` runs first, `prepareDeadLetter` replaces `asReceived`.
   */
  readonly intake?: IntakeOptions;
}

/** See `FlowOptions.intake`. */
export interface IntakeOptions {
  readonly sourceOptions?: string;
  readonly first?: (route: RouteBuilder<unknown>) => RouteBuilder<unknown>;
  readonly prepareDeadLetter?: (failed: Message, original: Message) => Message;
}

/** In-process attempts at a transient failure (a publish that timed out) before the message goes back to its source. */
const TRANSIENT_ATTEMPTS = 10;

/**
 * The error policy: an invalid message (a permanent failure) goes to the dead-letter exchange, as
 * the device sent it (`asReceived`); a transient one (the broker unreachable for longer than the
 * publish timeout) is retried with exponential backoff, then rejected to its source — MQTT, whose
 * consumer keeps it unacknowledged and redelivers it with backoff, or the durable buffer, which
 * delivers it again — never dead-lettered as invalid, never dropped.
 */
export function flowErrorPolicy({ error, attempt }: StepFailure, transientAttempts = TRANSIENT_ATTEMPTS): FailurePolicy {
  if (error.permanent) return deadLetter('invalid device telemetry');
  if (attempt < transientAttempts) return retryAfter(backoffDelay(attempt - 1, { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }));
  return reject();
}

/**
 * The routes.
 *
 * `telemetry`: MQTT `devices/+deviceId/telemetry` (QoS 1) → check against `device.telemetry@1` and the
 * topic's device id (invalid → `telemetry.dlx` with the original bytes and the reason) → translate to
 * `backend.reading@1` (its id derived from the device's bytes, `readingIdOf`) → content-based router on
 * the `telemetry` exchange (`alert.<id>` at ≥ 50 °C, else `reading.<id>`; persistent, confirmed) →
 * the per-device summaries. An MQTT message is acknowledged (PUBACK) only once its reading — or its
 * dead letter — is confirmed by RabbitMQ and folded into its summary.
 *
 * Buffered (`buffered: true`), the same in two halves joined by a durable local queue: `telemetry`
 * ends at `buffer:<exchange>` (PUBACK once fsync'd), `forward` takes it from there to RabbitMQ and the
 * summaries (the buffer entry is deleted once both are done), and `dead-letters` takes the invalid
 * messages' buffer to the dead-letter exchange.
 *
 * Summaries: per device, every `summarySize` readings or after `summaryIdleMs` idle →
 * `{ deviceId, count, minC, maxC, avgC, from, to }` to `summary.<id>`, through the durable aggregator
 * (`summaryRepository`): a reading is acknowledged once folded into its device's group in the store,
 * a repeated reading (same id) is folded once, and a summary is kept in the store until RabbitMQ
 * confirmed it — so with a durable store neither a crash nor a second instance changes a summary.
 */
export function flowRoutes({
  names = flowNames(),
  prefetch = 1_000,
  summarySize = 10,
  summaryIdleMs = 5_000,
  summaries: withSummaries = true,
  summaryRepository = new InMemoryPersistentAggregationRepository<SummaryState>(),
  summaryRecovery = {},
  completeSummariesOnStop = false,
  buffered = false,
  consumers = 1,
  shareGroup = consumers > 1 ? `${names.exchange}-bridge` : undefined,
  transientAttempts = TRANSIENT_ATTEMPTS,
  intake: intakeOptions = {},
}: FlowOptions = {}): RouteBuilder<unknown>[] {
  const policy = (failure: StepFailure): FailurePolicy => flowErrorPolicy(failure, transientAttempts);
  const exchange = `amqp:exchange/${names.exchange}`;
  const deadLetterExchange = `amqp:exchange/${names.deadLetterExchange}`;
  const buffer = `buffer:${names.exchange}`;
  const deadBuffer = `buffer:${names.exchange}.dead`;
  // payload=raw: bodies are the bytes as the device sent them; the check parses them once, and an
  // invalid message is dead-lettered with its original bytes. Nothing a device sends
  // besides topic and payload becomes a header or an id (devices are untrusted input). headers=trace:
  // only a well-formed W3C traceparent (and tracestate), so one trace runs device → bridge → RabbitMQ.
  const options = intakeOptions.sourceOptions ?? 'qos=1&payload=raw&headers=trace';
  const first = intakeOptions.first ?? ((route: RouteBuilder<unknown>): RouteBuilder<unknown> => route);
  const source = shareGroup === undefined ? `mqtt:${names.telemetryTopic}?${options}` : `mqtt:$share/${shareGroup}/${names.telemetryTopic}?${options}`;

  /** RabbitMQ, then the summaries: the tail both the direct and the buffered bridge end with. */
  const toBackEnd = (route: RouteBuilder<BackendReadingV1>): RouteBuilder<unknown> => {
    const routed = route.choice(
      (router) =>
        router
          .when((message) => isAlert(message.body), (alerts) => alerts.to(`${exchange}?routingKey=alert.{deviceId}`, { contract: READING_CONTRACT, id: 'alerts' }))
          .otherwise((readings) => readings.to(`${exchange}?routingKey=reading.{deviceId}`, { contract: READING_CONTRACT, id: 'readings' })),
      { id: 'route-by-temperature' },
    );
    if (!withSummaries) return routed as RouteBuilder<unknown>;
    return routed
      .aggregate({ correlate: (message) => message.body.deviceId, strategy: foldReading, size: summarySize, timeoutMs: summaryIdleMs, repository: summaryRepository, ...summaryRecovery, ...(completeSummariesOnStop ? { onStop: 'complete' as const } : {}) }, { id: 'per-device' })
      .transform((message): DeviceSummary => toSummary(message.body), { id: 'summarise' })
      .setHeaders(() => ({ contentType: 'application/json' }), { id: 'summary-headers' })
      .to(`${exchange}?routingKey=summary.{deviceId}`, { id: 'summaries' }) as RouteBuilder<unknown>;
  };

  const intake = (id: string): RouteBuilder<unknown> => {
    const checked = first(
      from(source, { id, prefetch }).onError(policy, { maxAttempts: transientAttempts + 1, deadLetterUri: buffered ? deadBuffer : deadLetterExchange, deadLetterLabel: 'invalid', prepareDeadLetter: intakeOptions.prepareDeadLetter ?? asReceived }),
    )
      .step('check-telemetry', checkTelemetry(), { id: 'check-telemetry', contract: TELEMETRY_CONTRACT })
      .transform((message) => toBackendReading(message.body), { id: 'translate', contract: READING_CONTRACT })
      .setHeaders(readingHeaders, { id: 'reading-headers' });
    return buffered ? (checked.to(buffer, { id: 'buffered' }) as RouteBuilder<unknown>) : toBackEnd(checked);
  };
  const telemetry = consumers === 1 ? [intake('telemetry')] : Array.from({ length: consumers }, (_, index) => intake(`telemetry-${index + 1}`));
  if (!buffered) return telemetry;

  const forward = toBackEnd(
    from<BackendReadingV1>(buffer, { id: 'forward', prefetch }).onError(policy, { maxAttempts: transientAttempts + 1, deadLetterUri: deadLetterExchange, deadLetterLabel: 'invalid' }),
  );
  const deadLetters = from(deadBuffer, { id: 'dead-letters' })
    .onError(policy, { maxAttempts: transientAttempts + 1 })
    .to(deadLetterExchange, { id: 'invalid' });
  return [...telemetry, forward, deadLetters as RouteBuilder<unknown>];
}

/** Where the flow's brokers are: `MQTT_URL` and `AMQP_URL`; unset (or empty) means the zero-setup stand-ins. */
export interface FlowEnvironment {
  readonly mqttUrl?: string | undefined;
  readonly amqpUrl?: string | undefined;
  /** Base MQTT client id (default `MQTT_CLIENT_ID`, else `interchange-mqtt-to-amqp-<host>`): stable, so the session survives a restart. */
  readonly mqttClientId?: string | undefined;
  /**
   * The durable buffer's directory: `BUFFER_DIR`, else `<STATE_DIR>/buffer` (`STATE_DIR` defaults to
   * `.interchange`), whenever `AMQP_URL` is set and `BUFFER` is not `0`; undefined means no buffer.
   */
  readonly bufferDir?: string | undefined;
  /** The summaries' store: PostgreSQL at `DATABASE_URL`, else (with `AMQP_URL`) PGlite in `<STATE_DIR>/summaries`. */
  readonly databaseUrl?: string | undefined;
  /** Where the flow keeps its local state (`STATE_DIR`, default `.interchange`, resolved). */
  readonly stateDir?: string | undefined;
  /** `QUEUE_TYPE`: `classic` (default) or `quorum` (see `flowTopology`). */
  readonly queueType?: 'classic' | 'quorum' | undefined;
}

/** Throws `EndpointError` (never showing the password) when `MQTT_URL` or `AMQP_URL` has user info to percent-encode. */
export function environmentOf(env: NodeJS.ProcessEnv = process.env): FlowEnvironment {
  for (const name of ['MQTT_URL', 'AMQP_URL', 'DATABASE_URL']) checkUrlCredentials(env[name] ?? '', name);
  const amqpUrl = env.AMQP_URL || undefined;
  const stateDir = resolve(env.STATE_DIR || '.interchange');
  const bufferDir = amqpUrl === undefined || env.BUFFER === '0' ? undefined : resolve(env.BUFFER_DIR || join(stateDir, 'buffer'));
  const queueType = env.QUEUE_TYPE || undefined;
  if (queueType !== undefined && queueType !== 'classic' && queueType !== 'quorum') throw new RangeError(`QUEUE_TYPE must be classic or quorum, got '${queueType}'`);
  return { mqttUrl: env.MQTT_URL || undefined, amqpUrl, mqttClientId: env.MQTT_CLIENT_ID || undefined, bufferDir, databaseUrl: env.DATABASE_URL || undefined, stateDir, queueType };
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
  const topology = flowTopology(names, environment.queueType === undefined ? {} : { queueType: environment.queueType });
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
  const { bufferDir } = environment;
  return {
    modules: [schemaModule({ directory: SCHEMAS_DIRECTORY }), mqtt, amqp, ...(bufferDir === undefined ? [] : [bufferModule({ directory: bufferDir })])],
    standIn: memory?.broker,
    announce: (transport) => [
      mqttUrl === undefined
        ? `no MQTT_URL: devices publish to an EMBEDDED MQTT broker at ${transport.url} (loopback only, in memory); set MQTT_URL=mqtt://host:1883 for a real broker`
        : `MQTT_URL is set: subscribing to '${names.telemetryTopic}' at ${redactUrl(mqttUrl)}`,
      amqpUrl === undefined
        ? `no AMQP_URL: an IN-MEMORY STAND-IN replaces RabbitMQ — nothing leaves this process; set AMQP_URL=amqp://guest:guest@127.0.0.1:5672 for the real broker`
        : `AMQP_URL is set: publishing to RabbitMQ at ${redactUrl(amqpUrl)} (exchange '${names.exchange}', queues ${[names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue].join(', ')})`,
      ...(bufferDir === undefined ? [] : [`durable buffer in ${bufferDir}: a device's message is acknowledged once fsync'd there, then forwarded to RabbitMQ (BUFFER_DIR to move it, BUFFER=0 to go without)`]),
    ],
  };
}

/** The summaries' store, opened for the environment, and how to close it. */
export interface SummaryStore {
  readonly repository: PersistentAggregationRepository<SummaryState>;
  /** One line for the console: where the open summaries live. */
  readonly announcement: string;
  close(): Promise<void>;
}

/**
 * Opens where the open summaries live: with `AMQP_URL`, PostgreSQL at `DATABASE_URL` (shared by every
 * instance of the bridge: the scale-out configuration), else PGlite in `<STATE_DIR>/summaries` (one
 * instance, survives its restarts); without `AMQP_URL` (the zero-setup stand-in), process memory.
 */
export async function openSummaryStore(names: FlowNames, environment: FlowEnvironment): Promise<SummaryStore> {
  const name = `${names.exchange}.summaries`;
  if (environment.amqpUrl === undefined) {
    return { repository: new InMemoryPersistentAggregationRepository<SummaryState>(), announcement: 'summaries: open groups in process memory (the stand-in keeps nothing either)', close: () => Promise.resolve() };
  }
  const dataDir = join(environment.stateDir ?? resolve('.interchange'), 'summaries');
  if (environment.databaseUrl === undefined) await mkdir(dataDir, { recursive: true });
  const database = environment.databaseUrl === undefined ? await openEmbeddedDatabase({ dataDir }) : await openDatabase({ url: environment.databaseUrl });
  const repository = await PostgresAggregationRepository.open<SummaryState>(database, { name });
  const where = environment.databaseUrl === undefined ? `embedded PGlite in ${dataDir} (DATABASE_URL for PostgreSQL, required to run several instances)` : `PostgreSQL at ${redactUrl(environment.databaseUrl)}`;
  return { repository, announcement: `summaries: open groups survive restarts in ${where}`, close: () => database.close() };
}
