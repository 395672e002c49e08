import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/core/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { openDatabase, openEmbeddedDatabase, PgQueueTransport, type Database } from '../../adapters/postgres/index.ts';
import { POSTGRES_URL, uniqueSchema } from '../unit/postgres/support.ts';

// The transport contract against the real PostgreSQL on 127.0.0.1:5432 (fails, never skips, if it is
// down), and against an embedded PGlite (the default without DATABASE_URL). Flags, as documented in
// docs/transports/postgres-queue.md: a queue is point-to-point (no publish-subscribe) and unbounded
// (a table: publish never waits for room); one consumer gets a queue in insertion order.
const features = {
  guaranteedOrder: true,
  redeliversOnNack: true,
  redeliversUnsettledOnUnsubscribe: true,
  competingConsumers: true,
  publishSubscribe: false,
  boundedPublish: false,
  persistentAcrossReconnect: true,
} as const;

const schema = uniqueSchema('hp_pgq_contract');
let admin: Database;
beforeAll(async () => {
  admin = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
});
afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.close();
});

describeTransportContract('pgqueue (PostgreSQL server)', {
  create: async () => {
    const transport = new PgQueueTransport({ url: POSTGRES_URL, schema, log: silentLogger });
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`pgqueue:hP-${name}`),
  features,
});

let embedded: Database | undefined;
beforeAll(async () => {
  embedded = await openEmbeddedDatabase();
});
afterAll(async () => {
  await embedded?.close();
});

describeTransportContract('pgqueue (embedded PGlite)', {
  create: async () => {
    const transport = new PgQueueTransport({ database: embedded as Database, schema: 'hp_pgq_embedded', log: silentLogger });
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`pgqueue:hP-${name}`),
  features,
});
