import { afterAll, beforeAll } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../adapters/mqtt/index.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { MOSQUITTO_URL, ProvisionedEndpoints, requireBroker, runClientId, testTransport } from './mqtt-helpers.ts';

// Against the machine's Mosquitto (MQTT 5): point-to-point = a shared subscription (`?group=`) whose
// first consumer session is provisioned before the suite publishes. Every endpoint is `headers=all`:
// the suite is Interchange ↔ Interchange traffic (ids and headers round-trip), not a device's.
const mosquittoClientId = runClientId('contract');
const mosquitto = new ProvisionedEndpoints(testTransport({ url: MOSQUITTO_URL, clientId: mosquittoClientId }));

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

describeTransportContract('mqtt (mosquitto, MQTT 5)', {
  create: async () => {
    const transport = mosquitto.wrap(testTransport({ url: MOSQUITTO_URL, clientId: mosquittoClientId }));
    await transport.connect();
    return transport;
  },
  endpoint: (name) => mosquitto.endpoint(`mqtt:interchange-test/${name}?qos=1&group=contract&headers=all`),
  pubsubEndpoint: (name) => parseEndpoint(`mqtt:interchange-test/${name}?qos=1&headers=all`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});

// Against the embedded broker (aedes, MQTT 3.1.1, no shared subscriptions).
let broker: EmbeddedBroker | undefined;
const embeddedClientId = runClientId('embedded');
let embedded: ProvisionedEndpoints | undefined;

beforeAll(async () => {
  broker = await startEmbeddedBroker();
  embedded = new ProvisionedEndpoints(testTransport({ url: broker.url, clientId: embeddedClientId, protocolVersion: 4 }));
});
afterAll(async () => {
  await broker?.close();
});

describeTransportContract('mqtt (embedded aedes broker, MQTT 3.1.1)', {
  create: async () => {
    const transport = (embedded as ProvisionedEndpoints).wrap(testTransport({ url: (broker as EmbeddedBroker).url, clientId: embeddedClientId, protocolVersion: 4 }));
    await transport.connect();
    return transport;
  },
  endpoint: (name) => (embedded as ProvisionedEndpoints).endpoint(`mqtt:interchange-test/${name}?qos=1&headers=all`),
  pubsubEndpoint: (name) => parseEndpoint(`mqtt:interchange-test/${name}?qos=1&headers=all`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: false,
    publishSubscribe: true,
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
