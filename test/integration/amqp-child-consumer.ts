// Child process of amqp-kill.test.ts: consumes `queue` with prefetch 20, acks bodies with n < ackBelow,
// holds the rest unsettled, and reports each on stdout ("acked n" / "held n") until it is killed.
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { AmqpTransport } from '../../adapters/amqp/index.ts';

const [url = '', queue = '', ackBelow = '0'] = process.argv.slice(2);
const transport = new AmqpTransport({ url, connectTimeoutMs: 5_000 }, silentLogger);
await transport.connect();
transport.consume(parseEndpoint(`amqp:queue/${queue}`), { prefetch: 20 }).subscribe((delivery) => {
  const { n } = delivery.message.body as { n: number };
  if (n < Number(ackBelow)) {
    delivery.ack();
    process.stdout.write(`acked ${n}\n`);
  } else {
    process.stdout.write(`held ${n}\n`);
  }
});
