import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, testTransport, waitFor } from './mqtt-helpers.ts';

// `provision` creates a consumer's session ahead of it, like declaring a queue — and must never
// acknowledge what that session already holds: provisioning again (a restart, a second instance)
// while messages wait for the consumer leaves every one of them for it.

const run = `it-prov-${process.pid}-${Date.now().toString(36)}`;
let open: MqttTransport[] = [];

function transport(clientId: string, protocolVersion: 4 | 5): MqttTransport {
  const created = testTransport({ url: MOSQUITTO_URL, clientId, protocolVersion });
  open.push(created);
  return created;
}

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  for (const created of open) await created.close();
  open = [];
});

describe('MqttTransport.provision against Mosquitto', () => {
  it.each([5, 4] as const)('MQTT %i: 50 QoS 1 messages queued for a provisioned session all reach its consumer after two more provisions', async (protocolVersion) => {
    const clientId = runClientId(`prov${protocolVersion}`);
    const endpoint = parseEndpoint(`mqtt:${run}/v${protocolVersion}/queue?qos=1`);
    await transport(clientId, protocolVersion).provision(endpoint); // the session exists: messages are kept for it

    const producer = transport(runClientId('prov-producer'), 5);
    await producer.connect();
    const sent = Array.from({ length: 50 }, (_, seq) => createMessage({ seq }));
    await producer.publish(endpoint, sent);

    // a restart, a second instance: each provisions the same session while it holds the 50
    await transport(clientId, protocolVersion).provision(endpoint);
    await transport(clientId, protocolVersion).provision(endpoint);

    const consumer = transport(clientId, protocolVersion);
    const seqs: number[] = [];
    const subscription = consumer.consume(endpoint, { prefetch: 100 }).subscribe((delivery) => {
      seqs.push((delivery.message.body as { seq: number }).seq);
      delivery.ack();
    });
    try {
      await waitFor(() => new Set(seqs).size >= 50, () => `the consumer got ${new Set(seqs).size} of 50`, 20_000);
      await sleep(300);
      expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual(sent.map((_, seq) => seq));
    } finally {
      subscription.unsubscribe();
    }
  });

  it('provisioning a session that does not exist yet creates it with its subscription', async () => {
    const clientId = runClientId('prov-new');
    const endpoint = parseEndpoint(`mqtt:${run}/new?qos=1`);
    await transport(clientId, 5).provision(endpoint);
    const producer = transport(runClientId('prov-producer'), 5);
    await producer.connect();
    await producer.publish(endpoint, [createMessage({ seq: 0 })]);
    const consumer = transport(clientId, 5);
    const bodies: unknown[] = [];
    const subscription = consumer.consume(endpoint).subscribe((delivery) => {
      bodies.push(delivery.message.body);
      delivery.ack();
    });
    try {
      await waitFor(() => bodies.length >= 1, () => 'the message published after provisioning did not arrive');
      expect(bodies).toEqual([{ seq: 0 }]);
    } finally {
      subscription.unsubscribe();
    }
  });
});
