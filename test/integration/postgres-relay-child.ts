// Child process of postgres-relay-kill.test.ts: an outbox relay publishing to RabbitMQ.
// Arguments: <database url> <amqp url> <schema> <hang after>. Prints "confirmed <total>" after every
// confirmed publish. With <hang after> > 0, once that many messages are confirmed it prints "hanging"
// and never finishes the batch: its rows are published and confirmed but not deleted — the window in
// which the parent kills it with SIGKILL.
import { TransportRegistry } from '../../src/runtime/transport-registry.ts';
import { silentLogger, type Message } from '../../src/core/index.ts';
import { AmqpTransport } from '../../adapters/amqp/index.ts';
import { openDatabase, OutboxRelay } from '../../adapters/postgres/index.ts';

const [databaseUrl = '', amqpUrl = '', schema = '', hangAfter = '0'] = process.argv.slice(2);
const db = await openDatabase({ url: databaseUrl, log: silentLogger });
const transport = new AmqpTransport({ url: amqpUrl, connectTimeoutMs: 5_000 }, silentLogger);
await transport.connect();
const registry = new TransportRegistry([transport]);
let confirmed = 0;
const publisher = {
  async publish(uri: string, messages: readonly Message[]): Promise<void> {
    await registry.publish(uri, messages);
    confirmed += messages.length;
    process.stdout.write(`confirmed ${confirmed}\n`);
    if (Number(hangAfter) > 0 && confirmed >= Number(hangAfter)) {
      process.stdout.write('hanging\n');
      await new Promise(() => {});
    }
  },
};
const relay = new OutboxRelay(db, publisher, { schema, batchSize: 100, concurrency: 2, leaseMs: 2_000, pollIntervalMs: 100, migrate: false, log: silentLogger });
await relay.start();
process.stdout.write('started\n');
