// Child process of mqtt-qos2-crash.test.ts: consumes a QoS 2 endpoint with a fixed client id (a
// persistent session), acks every delivery and reports it on stdout ("processed <seq>") until killed.
// argv: broker url, endpoint uri, QoS 2 state directory or "memory".
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { MqttTransport } from '../../adapters/mqtt/index.ts';

const [url = '', uri = '', directory = 'memory'] = process.argv.slice(2);
const transport = new MqttTransport({
  url,
  clientId: `${parseEndpoint(uri).options.clientId ?? 'qos2-child'}-base`,
  sessionExpirySeconds: 600,
  connectTimeoutMs: 5_000,
  ...(directory === 'memory' ? {} : { qos2Store: { directory } }),
  logger: silentLogger,
});
await transport.connect();
transport.consume(parseEndpoint(uri), { prefetch: 20 }).subscribe((delivery) => {
  process.stdout.write(`processed ${(delivery.message.body as { seq: number }).seq}\n`);
  delivery.ack();
});
