// Child process of pg-queue-adapter.test.ts: a pgqueue consumer that takes deliveries and never
// settles them (a consumer that hangs, then dies). Arguments: <database url> <schema> <queue uri> <prefetch>.
// Prints "held <n>" after every delivery; the parent kills it with SIGKILL: no release, no lease
// extension after that — its rows come back once their visibility timeout runs out.
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { PgQueueTransport } from '../../adapters/postgres/index.ts';

const [url = '', schema = '', uri = '', prefetch = '10'] = process.argv.slice(2);
const transport = new PgQueueTransport({ url, schema, log: silentLogger });
await transport.connect();
let held = 0;
transport.consume(parseEndpoint(uri), { prefetch: Number(prefetch) }).subscribe(() => {
  held += 1;
  process.stdout.write(`held ${held}\n`);
});
process.stdout.write('started\n');
