import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { CapacityError, createMessage, parseEndpoint } from '../../src/core/index.ts';
import { requireBroker, runClientId, sleep, testTransport, waitFor } from '../integration/mqtt-helpers.ts';
import { OwnMosquitto } from './mqtt-broker-fixture.ts';
import { ChildScript } from '../support/child-script.ts';

// Store-and-forward (issue #5): QoS 1 publishes made while the broker is unreachable are held (bounded)
// and sent in order when it returns; with the disk store, also across a restart of the Interchange
// process. Runs against a Mosquitto of its own (port 18833, persistence on, so the subscriber's session
// survives the broker's stop); the machine's Mosquitto on 1883 is never touched.
const TOTAL = 1_000;
const broker = new OwnMosquitto(18_833, true);
const dir = mkdtempSync(join(tmpdir(), 'mqtt-forward-'));
const closers: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** A persistent-session subscriber on `topic`, recording `seq` of every delivery in arrival order. */
async function subscriber(topic: string): Promise<{ seqs: number[]; transport: MqttTransport }> {
  const transport = testTransport({ url: broker.url, clientId: runClientId('sf-consumer') });
  closers.push(() => transport.close());
  await transport.connect();
  const seqs: number[] = [];
  const subscription = transport.consume(parseEndpoint(`mqtt:${topic}?qos=1`), { prefetch: 100 }).subscribe((delivery) => {
    seqs.push((delivery.message.body as { seq: number }).seq);
    delivery.ack();
  });
  closers.push(() => subscription.unsubscribe());
  await sleep(500); // the session and its subscription exist at the broker
  return { seqs, transport };
}

const inOrder = Array.from({ length: TOTAL }, (_, seq) => seq);

describe('MQTT store-and-forward while Mosquitto is down', () => {
  it('memory store: 1,000 QoS 1 publishes are held (bounded: one more → CapacityError), then all arrive in order', async () => {
    // Something already on our port would answer in place of our broker (and never stop): refuse it.
    const stale = await requireBroker(broker.url).then(() => true, () => false);
    if (stale) throw new Error(`port ${broker.port} is already in use: not our Mosquitto (a leftover from another run?)`);
    await broker.restart(); // starts our own Mosquitto; throws (the test fails) if it cannot start
    const topic = `fault/sf/memory/${runClientId('t')}`;
    const endpoint = parseEndpoint(`mqtt:${topic}?qos=1`);
    const { seqs } = await subscriber(topic);
    const producer = testTransport({ url: broker.url, clientId: runClientId('sf-producer'), storeAndForward: { capacity: TOTAL } });
    closers.push(() => producer.close());
    await producer.connect();

    await broker.stop();
    await sleep(300); // the producer has seen the connection close
    const published = inOrder.map((seq) => producer.publish(endpoint, [createMessage({ seq })]));
    let settled = 0;
    for (const promise of published) void promise.then(() => (settled += 1), () => undefined);
    await sleep(200);
    expect(producer.held).toBe(TOTAL);
    expect(settled).toBe(0); // memory store: a publish resolves only on the broker's PUBACK
    await expect(producer.publish(endpoint, [createMessage({ seq: TOTAL })])).rejects.toBeInstanceOf(CapacityError);
    expect(producer.held).toBe(TOTAL);

    await broker.start();
    await Promise.all(published);
    await waitFor(() => seqs.length >= TOTAL, () => `received ${seqs.length} of ${TOTAL}`, 30_000);
    await sleep(300); // nothing more (no duplicates) arrives
    expect(producer.held).toBe(0);
    expect(seqs).toEqual(inOrder);
  });

  it('disk store: held across a SIGKILL of the publishing process, then a new transport on the same file delivers all in order', async () => {
    await broker.restart(); // left running by the previous test: stop it first, never start a second one on the port
    const topic = `fault/sf/disk/${runClientId('t')}`;
    const path = join(dir, 'nested', 'forward.jsonl');
    const { seqs } = await subscriber(topic);

    const child = new ChildScript('test/fault/mqtt-store-and-forward-child.ts', [broker.url, runClientId('sf-child'), path, topic, String(TOTAL)], { stdin: true });
    closers.push(() => child.kill());
    const output = (): string => child.lines.join('\n');
    await waitFor(() => output().includes('connected') || child.process.exitCode !== null, () => `child did not connect: ${output()}`, 30_000);
    expect(output()).toContain('connected');

    await broker.stop();
    await sleep(300); // the child has seen the connection close
    child.write('go');
    await waitFor(() => /published|failed/.test(output()) || child.process.exitCode !== null, () => `child did not finish publishing: ${output()}`, 60_000);
    expect(output()).toContain(`published ${TOTAL}`);
    await child.kill(); // SIGKILL: the process ends without any chance to flush or close
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(TOTAL);
    expect(seqs).toHaveLength(0);

    await broker.start();
    const restarted = testTransport({ url: broker.url, clientId: runClientId('sf-restarted'), storeAndForward: { capacity: TOTAL, path } });
    closers.push(() => restarted.close());
    await restarted.connect();
    await waitFor(() => seqs.length >= TOTAL, () => `received ${seqs.length} of ${TOTAL}`, 30_000);
    await sleep(300);
    expect(seqs).toEqual(inOrder);
    await waitFor(() => restarted.held === 0 && readFileSync(path, 'utf8') === '', () => `store not emptied: held ${restarted.held}, file ${readFileSync(path, 'utf8').length} bytes`);
  });
});
