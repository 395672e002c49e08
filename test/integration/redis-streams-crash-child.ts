// A consumer that never settles, for redis-streams-adapter.test.ts: it takes entries from a consumer group
// (argv: url, key, group, consumer, prefetch), prints `got <id> <attempt>` for each, and is killed with SIGKILL.
import { RedisStreamsTransport } from '../../adapters/redis/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';

const [url, key, group, consumer, prefetch] = process.argv.slice(2) as [string, string, string, string, string];
const transport = new RedisStreamsTransport({ url }, silentLogger);
await transport.connect();
transport.consume(parseEndpoint(`redis:stream/${key}?group=${group}&consumer=${consumer}`), { prefetch: Number(prefetch) }).subscribe((delivery) => {
  console.log(`got ${delivery.message.id} ${String(delivery.message.headers.attempt)}`);
});
console.log('ready');
