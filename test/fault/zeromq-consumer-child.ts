// A ZeroMQ consumer for zeromq-consumer-kill.test.ts (argv: port): binds a PULL on 127.0.0.1:<port>,
// prints `got <n>` for each message and acks it; killed with SIGKILL mid-stream.
import { ZeroMqTransport } from '../../adapters/zeromq/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';

const [port] = process.argv.slice(2) as [string];
const transport = new ZeroMqTransport({}, silentLogger);
await transport.connect();
transport.consume(parseEndpoint(`zmq:tcp://127.0.0.1:${port}?headers=all`), { prefetch: 100 }).subscribe((delivery) => {
  console.log(`got ${String((delivery.message.body as { n: number }).n)}`);
  delivery.ack();
});
console.log('ready');
