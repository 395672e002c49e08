// Child process of mqtt-store-and-forward.test.ts: the Interchange process that publishes while the
// broker is down and is then killed (SIGKILL). Connects with a disk store, prints "connected", waits for
// "go" on stdin (the test stops the broker first), publishes `count` QoS 1 messages one call each, and
// prints "published" once every call has resolved (fsynced to the store). It never exits on its own.
import { createInterface } from 'node:readline';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';
import { testTransport } from '../integration/mqtt-helpers.ts';

const [url = '', clientId = '', path = '', topic = '', count = '0'] = process.argv.slice(2);
const transport = testTransport({ url, clientId, storeAndForward: { capacity: Number(count), path } });
await transport.connect();
process.stdout.write('connected\n');
const input = createInterface({ input: process.stdin });
input.once('line', () => {
  void (async () => {
    const endpoint = parseEndpoint(`mqtt:${topic}?qos=1`);
    const published: Promise<void>[] = [];
    for (let seq = 0; seq < Number(count); seq += 1) published.push(transport.publish(endpoint, [createMessage({ seq })]));
    await Promise.all(published);
    process.stdout.write(`published ${transport.held}\n`);
  })().catch((error: unknown) => {
    process.stdout.write(`failed ${(error as Error).message}\n`);
  });
});
