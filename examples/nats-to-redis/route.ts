/**
 * nats-to-redis — two transports bridged through a contract: parcel scans from NATS JetStream,
 * checked against `parcel.scanned@1`, translated to tracking events, written to a Redis stream;
 * scans the contract refuses go to a second Redis stream with the reason.
 *
 *   npm run example:nats-to-redis
 *   NATS_URL=nats://127.0.0.1:4222 REDIS_URL=redis://127.0.0.1:6379 FLOW_PREFIX=demo npm run example:nats-to-redis
 *
 * (= `node --conditions=interchange-source ./bin/interchange.js run examples/nats-to-redis/route.ts`,
 * from the repository root: the contracts are read from ./schemas.) Needs a NATS server with
 * JetStream and Redis ≥ 6.2 — there are no embedded stand-ins for them. On start it publishes five
 * sample scans (three valid, two invalid; `SAMPLES=0` turns that off), then waits for scanners.
 * See README.md here.
 */
import { defineIntegration, deadLetter, from, redactUrl, reject, retryAfter, schemaModule, type RunningIntegration, type StepFailure, type FailurePolicy } from 'interchange-eip';
import { backoffDelay, parseEndpoint } from 'interchange-eip/spi';
import { DEFAULT_NATS_URL, type NatsTransport } from 'interchange-eip/adapters/nats';
import { flowNames, sampleScans, toTrackingEvent } from './tracking.ts';

/** `FLOW_PREFIX`: the stream, subject and Redis keys under a prefix of their own (one server, several flows). */
const names = flowNames(process.env.FLOW_PREFIX ?? '');
const publishSamples = process.env.SAMPLES !== '0';

/** In-process attempts at a transient failure (Redis unreachable past its publish timeout) before the scan goes back to NATS. */
const TRANSIENT_ATTEMPTS = 5;

/**
 * A permanent failure (the contract refused the scan, or its time is unusable) → the invalid-scans
 * stream, with the reason in `x-interchange-error` / `x-interchange-error-code` (and ajv's errors in
 * `x-interchange-validation-errors`); a transient one is retried with backoff, then handed back to
 * NATS unacknowledged, which redelivers it — never dead-lettered as invalid, never dropped.
 */
export function errorPolicy({ error, attempt }: StepFailure): FailurePolicy {
  if (error.permanent) return deadLetter('invalid parcel scan');
  if (attempt < TRANSIENT_ATTEMPTS) return retryAfter(backoffDelay(attempt - 1, { initialMs: 200, maxMs: 5_000, multiplier: 2, jitter: 0.2 }));
  return reject();
}

/**
 * The route: JetStream (durable pull consumer, acked once Redis answered) → `parcel.scanned@1`
 * (from here on the body is `ParcelScannedV1`) → tracking event → Redis stream.
 */
const routes = [
  from(names.source, { id: 'parcel-scans' })
    .validate('parcel.scanned@1', { id: 'contract' })
    .transform(toTrackingEvent, { id: 'to-tracking-event' })
    .setHeaders((event) => ({ correlationId: event.body.parcelId }), { id: 'correlate' })
    .to(names.events, { id: 'tracking-events' })
    .onError(errorPolicy, { maxAttempts: TRANSIENT_ATTEMPTS + 1, deadLetterUri: names.invalid, deadLetterLabel: 'invalid' }),
];

const modules = [schemaModule()];

/** Announces the endpoints and publishes the sample scans through the route's own NATS transport. */
async function onStart(integration: RunningIntegration): Promise<void> {
  const nats = integration.transport<NatsTransport>('nats');
  console.log(`nats-to-redis: scans from NATS ${redactUrl(process.env.NATS_URL || DEFAULT_NATS_URL)}, stream ${names.stream}, subject ${names.subject}`);
  console.log(`nats-to-redis: tracking events → Redis stream '${names.eventsKey}', invalid scans → '${names.invalidKey}' (${redactUrl(process.env.REDIS_URL || 'redis://127.0.0.1:6379')})`);
  console.log(`nats-to-redis: look at them with: redis-cli XRANGE ${names.eventsKey} - +   and   redis-cli XRANGE ${names.invalidKey} - +`);
  if (!publishSamples) {
    console.log(`nats-to-redis: SAMPLES=0: waiting for scans on '${names.subject}'`);
    return;
  }
  // The stream and the durable consumer exist before the first sample is published, whether or not the route's consumer made them yet.
  await nats.provision(parseEndpoint(names.source));
  const samples = sampleScans();
  await integration.transports.publish(names.source, [...samples.valid, ...samples.invalid]);
  console.log(`nats-to-redis: published ${samples.valid.length} valid and ${samples.invalid.length} invalid sample scans to '${names.subject}'`);
}

export default defineIntegration({ routes, modules, onStart });
