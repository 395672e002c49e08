import { createIntegration, createMessage, from, retry } from 'interchange-eip';
import { TestKit } from 'interchange-eip/testing';

interface Reading { deviceId: string; temperature: number }

const readings = from<Reading>('memory:readings', { id: 'readings' })
  .deadLetterChannel('memory:dead-letters', { retry: retry({ maxAttempts: 3, initialDelayMs: 100 }) })
  .filter((m) => m.body.temperature > -50) // dropped messages are acked and counted
  .transform((m) => ({ ...m.body, fahrenheit: (m.body.temperature * 9) / 5 + 32 }))
  .choice((c) => c
    .when((m) => m.body.temperature >= 50, (b) => b.to('memory:alerts'))
    .otherwise((b) => b.to('memory:normal')));

const app = createIntegration({ routes: [readings] });
await app.start();
const alerts = new TestKit(app).mock('memory:alerts');
await app.transports.publish('memory:readings', [createMessage({ deviceId: 'd1', temperature: 71 }), createMessage({ deviceId: 'd2', temperature: 20 })]);
console.log('alert:', (await alerts.expect(1))[0]?.body); // { deviceId: 'd1', temperature: 71, fahrenheit: 159.8 }
await app.stop({ drainTimeoutMs: 10_000 }); // stop intake, drain in-flight messages, close transports
