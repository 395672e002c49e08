import { AmqpMemoryBroker } from '../../adapters/amqp/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

// The in-memory RabbitMQ under the same endpoints and flags as the real broker (test/integration/amqp.contract.test.ts).
describeTransportContract('amqp (in-memory broker)', {
  create: async () => {
    const broker = new AmqpMemoryBroker();
    await broker.connect();
    return broker;
  },
  endpoint: (name) => parseEndpoint(`amqp:queue/${name}`),
  pubsubEndpoint: (name) => parseEndpoint(`amqp:exchange/${name}?type=fanout&mandatory=false`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // as on RabbitMQ: a full queue drops its oldest (drop-head) or refuses (reject-publish); publish never waits
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
