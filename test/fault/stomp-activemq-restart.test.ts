import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { StompTransport } from '../../adapters/stomp/index.ts';
import { createMessage, parseEndpoint, type Delivery } from '../../src/core/index.ts';
import { accepting } from '../support/mosquitto-process.ts';
import { sleep, until } from '../support/wait.ts';
import { ACTIVEMQ_STOMP_URL, recordingLogger, runTag } from '../integration/stomp-support.ts';

// ActiveMQ (the machine's instance `interchange`, STOMP on 61623; no other engineer uses it) restarted
// with `/etc/init.d/activemq restart` while a publisher sends one persistent message every 1000/RATE ms
// to a queue and a consumer on another connection acks each.
//
// The promise (docs/transports/stomp.md): every publish that resolved (its RECEIPT came: ActiveMQ had
// stored it in KahaDB) is delivered — none lost; publishes made during the outage wait for the
// reconnect (within publishTimeoutMs) and resolve after it; a publish whose connection dropped before
// its RECEIPT rejects (NotConnectedError) and may or may not have been stored; duplicates are allowed
// (at-least-once) and bounded by what the consumer had received but not yet acked when the link
// dropped (≤ prefetch).
const exec = promisify(execFile);
const RATE_PER_SECOND = 100;
const PREFETCH = 50;

async function ensureActiveMqRunning(): Promise<void> {
  if (await accepting(61623)) return;
  await exec('/etc/init.d/activemq', ['start']).catch(() => undefined);
  await until(() => accepting(61623), () => 'ActiveMQ did not come back on 61623', 120_000);
}

afterAll(async () => {
  await ensureActiveMqRunning(); // ActiveMQ must be running when this test ends, whatever happened
});

describe('STOMP through an ActiveMQ restart', () => {
  it('loses no confirmed publish and bounds the duplicates', async () => {
    await ensureActiveMqRunning();
    const queue = `${runTag('fault')}-restart`;
    const endpoint = parseEndpoint(`activemq:queue/${queue}?headers=all`);
    const options = { url: ACTIVEMQ_STOMP_URL, scheme: 'activemq', connectTimeoutMs: 20_000, heartbeatMs: 2_000, reconnect: { initialDelayMs: 200, maxDelayMs: 2_000 }, publishTimeoutMs: 90_000 };
    const log = recordingLogger();
    const publisher = new StompTransport(options, log);
    const consumer = new StompTransport(options, log);
    await publisher.connect();
    await consumer.connect();
    const received = new Map<string, number>();
    const subscription = consumer.consume(endpoint, { prefetch: PREFETCH }).subscribe((delivery: Delivery) => {
      received.set(delivery.message.id, (received.get(delivery.message.id) ?? 0) + 1);
      delivery.ack();
    });

    const resolved = new Set<string>();
    const rejected = new Map<string, string>();
    const publishes: Promise<void>[] = [];
    let running = true;
    let sent = 0;
    const pace = (async () => {
      const started = Date.now();
      while (running) {
        const message = createMessage({ n: sent });
        sent += 1;
        publishes.push(publisher.publish(endpoint, [message]).then(() => void resolved.add(message.id), (error: unknown) => void rejected.set(message.id, (error as Error).name)));
        const next = started + (sent * 1000) / RATE_PER_SECOND;
        await sleep(Math.max(0, next - Date.now()));
      }
    })();

    try {
      await until(() => resolved.size >= 200, () => `expected 200 confirmed publishes before the restart, got ${resolved.size}`, 30_000);
      const restartAt = Date.now();
      await exec('/etc/init.d/activemq', ['restart']);
      await until(() => accepting(61623), () => 'ActiveMQ did not come back', 120_000);
      const outageMs = Date.now() - restartAt;
      const resolvedAtRestart = resolved.size;
      await until(() => resolved.size >= resolvedAtRestart + 300, () => `expected 300 more confirmed publishes after the restart, got ${resolved.size - resolvedAtRestart}`, 120_000);
      running = false;
      await pace;
      await Promise.allSettled(publishes);
      await until(() => [...resolved].every((id) => received.has(id)), () => `lost: ${[...resolved].filter((id) => !received.has(id)).length} confirmed publishes never delivered`, 60_000);
      await sleep(1_000);

      const duplicates = [...received.values()].reduce((sum, count) => sum + count - 1, 0);
      const unconfirmedDelivered = [...rejected.keys()].filter((id) => received.has(id)).length;
      console.log(
        `stomp fault (ActiveMQ restart): sent ${sent} at ${RATE_PER_SECOND}/s, restart took ${outageMs} ms; confirmed ${resolved.size}, rejected ${rejected.size} (${[...new Set(rejected.values())].join(', ') || 'none'}; ${unconfirmedDelivered} of them delivered anyway), ` +
          `lost 0, duplicates ${duplicates}`,
      );
      expect([...resolved].filter((id) => !received.has(id))).toEqual([]);
      expect(resolved.size + rejected.size).toBe(sent);
      expect(duplicates).toBeLessThanOrEqual(PREFETCH + rejected.size);
      expect(log.lines.some((line) => line.includes('connection lost; reconnecting'))).toBe(true);
    } finally {
      running = false;
      subscription.unsubscribe();
      await publisher.close();
      await consumer.close();
    }
  });
});
