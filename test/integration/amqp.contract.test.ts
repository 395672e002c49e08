import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { BrokerAdmin, connectedTransport } from './amqp-support.ts';

// The transport contract against the real RabbitMQ on 127.0.0.1:5672 (fails, never skips, if it is down).
const admin = new BrokerAdmin();

describeTransportContract('amqp (RabbitMQ)', {
  create: () => connectedTransport(),
  endpoint: (name) => {
    admin.track({ queues: [name] });
    return parseEndpoint(`amqp:queue/${name}`);
  },
  pubsubEndpoint: (name) => {
    admin.track({ exchanges: [name] });
    return parseEndpoint(`amqp:exchange/${name}?type=fanout&mandatory=false`);
  },
  cleanup: () => admin.cleanup(),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // a full RabbitMQ queue rejects (overflow: reject-publish → PublishRejectedError) or drops; it never makes publish wait
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
