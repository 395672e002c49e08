import { afterAll } from 'vitest';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { ACTIVEMQ_STOMP_URL, connectedTransport, deleteRabbitQueues, RABBITMQ_STOMP_URL, runTag } from './stomp-support.ts';

// The transport contract against the two STOMP brokers on this machine (fail, never skip, when one is
// down): RabbitMQ's STOMP plugin (61613) and ActiveMQ 5.17 (61623). Every endpoint is `headers=all`:
// Interchange ↔ Interchange traffic (the default trusts no producer's id or headers).

// RabbitMQ: point-to-point = a quorum queue (`queueType=quorum`: only quorum queues count deliveries,
// `x-delivery-count`, which `attempt` needs); publish-subscribe = `/topic/…` (amq.topic, one queue per subscriber).
const rabbitTag = runTag('rmq');
const rabbitQueues = new Set<string>();

afterAll(async () => {
  await deleteRabbitQueues(rabbitQueues);
});

describeTransportContract('stomp: RabbitMQ 3.10 STOMP plugin (quorum queues; topics)', {
  create: () => connectedTransport({ url: RABBITMQ_STOMP_URL }),
  endpoint: (name) => {
    const queue = `${rabbitTag}-${name}`;
    rabbitQueues.add(queue).add(`DLQ.${queue}`);
    return parseEndpoint(`stomp:queue/${queue}?queueType=quorum&headers=all`);
  },
  pubsubEndpoint: (name) => parseEndpoint(`stomp:topic/${rabbitTag}.${name}?headers=all`),
  features: {
    // one SEND per message, in call order, on one connection; a queue delivers in order to one consumer
    guaranteedOrder: true,
    // NACK → requeued; a quorum queue counts it (x-delivery-count)
    redeliversOnNack: true,
    // a subscription ends with its connection: RabbitMQ requeues what it had not acked, counted
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // a queue's x-max-length drops or refuses (reject-publish → an ERROR frame); a SEND never waits for room
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});

// ActiveMQ, served under the scheme `activemq` (a second STOMP broker in one integration is a second
// transport with a scheme of its own): point-to-point = `/queue/…`, publish-subscribe = `/topic/…`.
const activeTag = runTag('amq');

describeTransportContract('stomp: ActiveMQ 5.17 (queues; topics; scheme activemq)', {
  create: () => connectedTransport({ url: ACTIVEMQ_STOMP_URL, scheme: 'activemq' }),
  endpoint: (name) => parseEndpoint(`activemq:queue/${activeTag}-${name}?headers=all`),
  pubsubEndpoint: (name) => parseEndpoint(`activemq:topic/${activeTag}.${name}?headers=all`),
  features: {
    guaranteedOrder: true,
    // ActiveMQ 5 takes a STOMP NACK as a poison ack: without a redeliveryPlugin in the broker (this
    // machine's config has none) the message goes to its DLQ (DLQ.<queue>) at once, never redelivered
    redeliversOnNack: false,
    // a subscription ends with its connection: ActiveMQ redelivers what it had not acked (redelivered:true → attempt 2)
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // a queue's memory limit blocks producers (producer flow control) but STOMP has no way to say so per SEND; not a bounded destination
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
