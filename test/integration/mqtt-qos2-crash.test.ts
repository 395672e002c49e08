import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, testTransport } from './mqtt-helpers.ts';
import { PacketFilterProxy, PUBREC } from './mqtt-packet-filter-proxy.ts';
import { ChildScript } from '../support/child-script.ts';
import { until } from '../support/wait.ts';

const CHILD = join(import.meta.dirname, 'mqtt-qos2-child.ts');

/** A consumer process; `processed` lists the seq of every "processed <seq>" line it printed. */
class Consumer extends ChildScript {
  constructor(url: string, uri: string, directory: string) {
    super(CHILD, [url, uri, directory]);
  }

  get processed(): number[] {
    return this.lines.filter((line) => line.startsWith('processed ')).map((line) => Number(line.slice(10)));
  }
}

const files = (directory: string): string[] => {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
};

/**
 * A consumer that processed QoS 2 messages, saved them and sent PUBREC — which the broker never got
 * (a proxy drops it) — is killed with SIGKILL; the next process of the same session is resent the
 * PUBLISHes (DUP). With the QoS 2 store on disk it acknowledges them without processing them again;
 * with the in-memory default they are processed twice: the reason to configure the store.
 */
describe('MQTT QoS 2 inbound state across a crash', () => {
  const { hostname, port } = new URL(MOSQUITTO_URL);
  let proxy: PacketFilterProxy;
  let proxyUrl: string;
  let publisher: MqttTransport;
  const root = mkdtempSync(join(tmpdir(), 'ic-qos2-'));

  beforeAll(async () => {
    await requireBroker();
    proxy = new PacketFilterProxy({ host: hostname, port: Number(port || 1883) });
    proxyUrl = await proxy.start();
    publisher = testTransport({ url: MOSQUITTO_URL, persistentSession: false });
    await publisher.connect();
  });

  afterAll(async () => {
    await publisher?.close();
    await proxy?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs the crash scenario; returns how often each seq was processed, and the session's state directory. */
  async function crashBetweenPubrecAndPubrel(store: 'disk' | 'memory'): Promise<{ counts: Map<number, number>; stateDirectory: string }> {
    const clientId = runClientId(`qos2-${store}`);
    const topic = `it/qos2/${clientId}`;
    const uri = `mqtt:${topic}?qos=2&clientId=${clientId}`;
    const directory = store === 'disk' ? join(root, store) : 'memory';
    const stateDirectory = join(directory, clientId);
    const provisioner = testTransport({ url: MOSQUITTO_URL, clientId: `${clientId}-provisioner` });
    await provisioner.provision(parseEndpoint(uri)); // the session and its subscription exist before publishing
    await provisioner.close();
    await publisher.publish(parseEndpoint(`mqtt:${topic}?qos=2`), [1, 2, 3, 4, 5].map((seq) => createMessage({ seq })));

    proxy.drop.add(PUBREC);
    const first = new Consumer(proxyUrl, uri, directory);
    await until(() => first.processed.length === 5, () => 'the first consumer to process 5 messages', 20_000);
    if (store === 'disk') await until(() => files(stateDirectory).length === 5, () => 'QoS 2 state saved for 5 messages', 20_000);
    await until(() => (proxy.dropped.get(PUBREC) ?? 0) >= 5, () => 'the 5 PUBRECs to be sent (and dropped)', 20_000);
    await first.kill();
    proxy.drop.delete(PUBREC);
    proxy.dropped.clear();

    const second = new Consumer(proxyUrl, uri, directory);
    await publisher.publish(parseEndpoint(`mqtt:${topic}?qos=2`), [createMessage({ seq: 6 })]);
    await until(() => second.processed.includes(6), () => 'the restarted consumer to process a new message', 20_000);
    if (store === 'disk') await until(() => files(stateDirectory).length === 0, () => 'PUBREL to release the saved state', 20_000);
    await second.kill();
    const counts = new Map<number, number>();
    for (const seq of [...first.processed, ...second.processed]) counts.set(seq, (counts.get(seq) ?? 0) + 1);
    return { counts, stateDirectory };
  }

  it('with the disk store: every message processed exactly once, the saved state released by PUBREL', async () => {
    const { counts, stateDirectory } = await crashBetweenPubrecAndPubrel('disk');
    expect(Object.fromEntries(counts)).toEqual({ 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1 });
    expect(files(stateDirectory)).toEqual([]);
  });

  it('with the in-memory default: the resent messages are processed again (counted)', async () => {
    const { counts } = await crashBetweenPubrecAndPubrel('memory');
    expect(Object.fromEntries(counts)).toEqual({ 1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 1 });
  });
});
