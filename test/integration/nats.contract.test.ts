import { afterAll, beforeAll } from 'vitest';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { deleteStreams, natsServerVersion, requireNats, runTag, testTransport, versionAtLeast } from './nats-support.ts';

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
// nats-server before 2.10.14 (nats-io/nats-server#5305, fixed 2024-04): a consumer's pull requests
// outlive its subscriber (NATS cannot cancel a pull), and the first message nak'ed while only those
// dead requests wait is not requeued — the server steps back and sends a later message again as a
// first delivery instead, and the nak'ed one comes ackWait (30 s) late. Nothing is lost, but an
// unsubscribed consumer's unsettled messages do not reach the next consumer promptly and exactly
// once: a property of the server version (Debian 12 ships 2.9.10), documented in docs/transports/nats.md.
const version = await natsServerVersion();
const handsBackPromptly = versionAtLeast(version, '2.10.14');

beforeAll(async () => {
  await requireNats();
});
afterAll(async () => {
  await deleteStreams([stream, deadStream]);
});

describeTransportContract(`nats (JetStream, nats-server ${version})`, {
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
    redeliversUnsettledOnUnsubscribe: handsBackPromptly,
    competingConsumers: true,
    publishSubscribe: true,
    // a stream at its limits drops the oldest (discard: old) or refuses (discard: new); publish never waits
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
