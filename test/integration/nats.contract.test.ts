import { afterAll, beforeAll } from 'vitest';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { deleteStreams, requireNats, runTag, testTransport } from './nats-support.ts';

// The transport contract against the machine's NATS server (JetStream on 127.0.0.1:4222; fails, never
// skips, when it is down). Point-to-point = a JetStream stream subject consumed through its default
// durable consumer (every consumer of the endpoint shares it); publish-subscribe = a core subject (every
// subscriber gets every message). Every endpoint is `headers=all`: Interchange ↔ Interchange traffic.
//
// Core subjects alone cannot run this suite: they keep nothing for a subscriber that is not there yet
// (most cases publish before consuming) and never redeliver — at-most-once is what they promise.
const stream = runTag('contract').toUpperCase();
const subjectRoot = stream.toLowerCase();
const deadStream = `${stream}_DEAD`;

beforeAll(async () => {
  await requireNats();
});
afterAll(async () => {
  await deleteStreams([stream, deadStream]);
});

describeTransportContract('nats (JetStream, nats-server 2.9)', {
  create: async () => {
    const transport = testTransport({ streams: [{ name: stream, subjects: [`${subjectRoot}.>`], storage: 'file' }], deadLetter: { prefix: `${subjectRoot}-dead`, stream: deadStream } });
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`nats:jetstream/${stream}/${subjectRoot}.${name}?headers=all`),
  pubsubEndpoint: (name) => parseEndpoint(`nats:subject/${subjectRoot}-ps.${name}?headers=all`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // a stream at its limits drops the oldest (discard: old) or refuses (discard: new); publish never waits
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
