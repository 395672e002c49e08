import { CoapTransport } from '../../adapters/coap/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

// The transport contract on the embedded CoAP server (UDP on loopback, a free port per transport).
// A destination is a resource of the server: `publish` POSTs to it (CON), the server holds each
// request in its bounded in-process intake until a consumer takes it, and answers 2.04 only once
// the delivery settled.
describeTransportContract('coap (embedded server, confirmable POSTs answered after settlement)', {
  create: async () => {
    // publishConcurrency 16: the suite holds up to 10 messages of one publish unsettled, and a publish
    // awaiting settlement has at most publishConcurrency of them at the server
    const transport = new CoapTransport({ port: 0, holdMs: 20_000, publishConcurrency: 16 }, silentLogger);
    await transport.connect();
    return transport;
  },
  // headers=all: only this suite's Interchange transports post here (the default trusts no device)
  endpoint: (name) => parseEndpoint(`coap:contract/${name}?headers=all`),
  features: {
    // UDP: datagrams, and their retransmissions, may arrive in any order; publish sends every message at once
    guaranteedOrder: false,
    // the request is still held (its answer deferred): a transient nack gives it again at once, attempt + 1, up to maxDeliveries
    redeliversOnNack: true,
    // a consumer's unsettled requests go back first in line for the next consumer of the path
    redeliversUnsettledOnUnsubscribe: true,
    // consumers of one path take its requests round robin
    competingConsumers: true,
    // a request is answered once: one consumer (observe would be state transfer, not a copy per subscriber)
    publishSubscribe: false,
    // a full intake answers 5.03 + Max-Age at once (CoAP's overload signal); publish rejects, it does not wait
    boundedPublish: false,
    // the intake is in process memory: close answers every held request 5.03 (the devices retry), nothing persists
    persistentAcrossReconnect: false,
    // no broker between publisher and consumer: the POST is answered (publish resolves) once a consumer settled it
    publishAwaitsSettlement: true,
  },
});
