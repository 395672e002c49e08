import { parseEndpoint } from 'interchange-eip/spi';
import { describeTransportContract } from 'interchange-eip/testing';
import { EchoTransport } from './third-party/echo-transport.ts';

// A transport written outside the core (test/contract/third-party/, against `interchange-eip/spi`
// only) passes the contract suite exported from `interchange-eip/testing`, with no change to src/.
describeTransportContract('echo (third-party)', {
  create: async () => {
    const transport = new EchoTransport();
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`echo:${name}`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: false,
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
