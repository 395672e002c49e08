import { ZeroMqTransport } from '../../adapters/zeromq/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { portPool } from './zeromq-support.ts';

// The transport contract over real ZeroMQ sockets (libzmq, no broker: each case binds its own TCP port
// on 127.0.0.1). Point-to-point = pipeline (PUSH → PULL: the consumer binds, the publisher connects);
// publish-subscribe = PUB → SUB (the publisher binds, each subscriber connects its own SUB socket);
// bounded = an inproc:// pipeline with high-water mark 1 on both sockets (capacity 2).
// Every endpoint is `headers=all`: only this suite's Interchange transports reach these sockets (the
// default, `headers=standard`, trusts no peer: fresh ids, no correlation/trace/expiry headers), and the
// contract checks that ids and headers travel.
//
// The cases that publish before consuming pass because the transport keeps one socket per address and
// side for its lifetime: the PUSH connects at the first publish and queues until its peer exists, and
// the PULL outlives its consumers. That is the whole of ZeroMQ's "persistence": process memory.
const ports = await portPool(64);
let inproc = 0;

describeTransportContract('zeromq (pipeline over tcp; pubsub over tcp; bounded over inproc)', {
  create: async () => {
    const transport = new ZeroMqTransport({ lingerMs: 0 }, silentLogger);
    await transport.connect();
    return transport;
  },
  endpoint: () => parseEndpoint(`zmq:tcp://127.0.0.1:${ports.next()}?headers=all`),
  pubsubEndpoint: () => parseEndpoint(`zmq:tcp://127.0.0.1:${ports.next()}?pattern=pubsub&headers=all`),
  boundedEndpoint: (name, capacity) => parseEndpoint(`zmq:inproc://${name}-${(inproc += 1)}?hwm=${Math.max(1, Math.floor(capacity / 2))}&headers=all`),
  features: {
    // one PUSH → one PULL over one connection is a FIFO pipe, read by one consumer in order
    guaranteedOrder: true,
    // redelivered by the adapter from its in-process inbox (ZeroMQ has no acks or redelivery on the
    // wire): `attempt` + 1, up to maxDeliveries, then dropped; lost if the process dies
    redeliversOnNack: true,
    // handed back to the transport's PULL inbox, which outlives its consumers: the next consumer of the
    // same transport gets them (`attempt` + 1); another process never does
    redeliversUnsettledOnUnsubscribe: true,
    // consumers of one PULL socket share it round-robin (across processes: connecting PULLs to a bound PUSH)
    competingConsumers: true,
    // PUB → SUB: every connected subscriber gets every message (the warm-up covers the slow joiner)
    publishSubscribe: true,
    // a PUSH socket blocks when every peer is at its high-water mark (ZeroMQ's documented mute state):
    // over inproc the capacity is exactly send + receive HWM; over tcp the kernel's buffers add to it
    boundedPublish: true,
    // close() closes the sockets: what they queued is gone (ZeroMQ keeps nothing outside process memory)
    persistentAcrossReconnect: false,
  },
});
