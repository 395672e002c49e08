import { MemoryTransport } from '../../src/channel/index.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

describeTransportContract('memory', {
  create: async () => {
    const transport = new MemoryTransport();
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`memory:${name}`),
  pubsubEndpoint: (name) => parseEndpoint(`memory:${name}?type=pubsub`),
  boundedEndpoint: (name, capacity) => parseEndpoint(`memory:${name}?capacity=${capacity}`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    boundedPublish: true,
    persistentAcrossReconnect: true,
  },
});
