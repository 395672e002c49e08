// Child process of mqtt-will-retain.test.ts: connects an MqttTransport with an adapter-level last will
// (`lastWill` option), prints "ready", then waits. On the stdin line "close" it closes the transport
// gracefully, prints "closed" and exits; otherwise it stays connected until it is killed.
import { createInterface } from 'node:readline';
import { testTransport } from './mqtt-helpers.ts';

const [url = '', clientId = '', statusTopic = '', payload = 'offline'] = process.argv.slice(2);
const transport = testTransport({ url, clientId, sessionExpirySeconds: 60, lastWill: { topic: statusTopic, payload, retain: true } });
await transport.connect();
process.stdout.write('ready\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'close') return;
  void transport.close().then(() => {
    process.stdout.write('closed\n');
    process.exit(0);
  });
});
