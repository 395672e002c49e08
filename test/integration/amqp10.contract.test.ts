import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll } from 'vitest';
import { Amqp10Transport } from '../../adapters/amqp10/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

// The transport contract against the machine's RabbitMQ 3.10 through its AMQP 1.0 plugin on 127.0.0.1:5672
// (fails, never skips, if it is down). ActiveMQ is NOT run: Debian's activemq has no AMQP connector
// (see docs/transports/amqp10.md). Point-to-point = `/queue/<name>` (durable classic queue declared by
// the plugin); publish-subscribe = `/topic/<key>` (a private queue per subscriber bound to amq.topic).
// Queues a0c-contract-* are deleted after each test through AMQP 0-9-1 (amqplib).
const url = process.env.AMQP10_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
let admin: ChannelModel;
const queues = new Set<string>();

beforeAll(async () => {
  admin = await connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
});
afterAll(async () => {
  await admin.close();
});

describeTransportContract('amqp 1.0 (RabbitMQ 3.10 rabbitmq_amqp1_0: /queue/<name>; pub-sub /topic/<key>)', {
  create: async () => {
    const transport = new Amqp10Transport({ url }, silentLogger);
    await transport.connect();
    return transport;
  },
  // headers=all: only this suite's Interchange transports write these queues (the default takes no application property)
  endpoint: (name) => {
    queues.add(`a0c-${name}`);
    return parseEndpoint(`amqp10:queue/a0c-${name}?headers=all`);
  },
  pubsubEndpoint: (name) => parseEndpoint(`amqp10:topic/a0c-${name}?headers=all`),
  cleanup: async () => {
    const channel = await admin.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    await channel.close();
    queues.clear();
  },
  features: {
    // one sender link per address, transfers in call order; one receiver link on a classic queue delivers in queue order
    guaranteedOrder: true,
    // nack → `released`: RabbitMQ delivers it again at once, `first-acquirer` false; attempt counted by the transport
    redeliversOnNack: true,
    // unsubscribe → the receiver link detaches; RabbitMQ requeues its unsettled messages (first-acquirer false → attempt 2)
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    // /topic/<key>: each subscriber's receiver gets a private queue bound to amq.topic
    publishSubscribe: true,
    // a full queue (x-max-length + reject-publish) settles the transfer `rejected`; publish never waits for room
    boundedPublish: false,
    // /queue/<name> is a durable queue and transfers are sent with header durable = true
    persistentAcrossReconnect: true,
  },
});
