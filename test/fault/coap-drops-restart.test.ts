import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as coap from 'coap';
import type { Subscription } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { CoapTransport } from '../../adapters/coap/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { sleep, until } from '../support/wait.ts';

// A device posting at a FIXED RATE through a UDP proxy that drops DROP_RATE of the datagrams in each
// direction, to the embedded server, which is closed and opened again (same port) mid-stream.
//
// The promise (docs/transports/coap.md): a request the device got 2.04 for was delivered and settled —
// none lost; the device retransmits (CON) what is not acknowledged and retries (a new request) what was
// answered 5.03 or never answered. Duplicates are allowed (at-least-once) and bounded: a 2.04 lost past
// every retransmission, or the answer to a request the restart cut off, makes the device send it again.

const RATE_PER_SECOND = 50;
const MESSAGES = 200;
const DROP_RATE = 0.1;

/** Forwards device ⇄ server datagrams, dropping `DROP_RATE` of them each way. */
class LossyProxy {
  readonly front: Socket = createSocket('udp4');
  private readonly back: Socket = createSocket('udp4');
  private device: RemoteInfo | undefined;
  dropped = 0;
  forwarded = 0;

  constructor(private readonly serverPort: number) {}

  async start(): Promise<number> {
    this.front.on('message', (datagram, from) => {
      this.device = from;
      this.pass(() => this.back.send(datagram, this.serverPort, '127.0.0.1'));
    });
    this.back.on('message', (datagram) => {
      const device = this.device;
      if (device !== undefined) this.pass(() => this.front.send(datagram, device.port, device.address));
    });
    this.back.on('error', () => undefined); // the server is down: ICMP port unreachable
    await new Promise<void>((resolve) => this.front.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => this.back.bind(0, '127.0.0.1', resolve));
    return (this.front.address() as AddressInfo).port;
  }

  close(): void {
    this.front.close();
    this.back.close();
  }

  private pass(send: () => void): void {
    if (Math.random() < DROP_RATE) this.dropped += 1;
    else {
      this.forwarded += 1;
      send();
    }
  }
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('CoAP: packet loss and a server restart under a fixed-rate device', () => {
  const agent = new coap.Agent({ type: 'udp4' });
  afterAll(() => {
    agent.close();
    coap.updateTiming({ ackTimeout: 2, maxRetransmit: 4 });
  });

  it('loses no acknowledged request; duplicates bounded', { timeout: 120_000 }, async () => {
    // faster CoAP retransmission (RFC 7252 lets ACK_TIMEOUT be configured): 250–375 ms, doubling, 6 times
    coap.updateTiming({ ackTimeout: 0.25, maxRetransmit: 6 });
    const port = await freeUdpPort();
    const options = { port, holdMs: 10_000, retryAfterSeconds: 1, piggybackMs: 100 };
    let server = new CoapTransport(options, silentLogger);
    await server.connect();
    const received: number[] = [];
    const consume = (via: CoapTransport): Subscription =>
      via.consume(parseEndpoint('coap:fault/+deviceId'), { prefetch: 20 }).subscribe((delivery) => {
        received.push((delivery.message.body as { n: number }).n);
        setImmediate(() => delivery.ack());
      });
    let subscription = consume(server);
    const proxy = new LossyProxy(port);
    const proxyPort = await proxy.start();

    const acknowledged = new Set<number>();
    const answers = new Map<string, number>();
    let requests = 0;
    const send = (n: number): void => {
      requests += 1;
      const request = agent.request({ hostname: '127.0.0.1', port: proxyPort, method: 'POST', pathname: '/fault/dev-1', agent });
      request.setOption('Content-Format', 'application/json');
      let done = false;
      const retry = (delayMs: number): void => {
        if (done) return;
        done = true;
        setTimeout(() => send(n), delayMs);
      };
      const giveUp = setTimeout(() => {
        agent.abort(request);
        retry(0);
      }, 15_000);
      request.on('response', (response: coap.IncomingMessage) => {
        clearTimeout(giveUp);
        answers.set(response.code, (answers.get(response.code) ?? 0) + 1);
        if (response.code === '2.04') {
          done = true;
          acknowledged.add(n);
        } else retry(typeof response.headers['Max-Age'] === 'number' ? response.headers['Max-Age'] * 1000 : 1000);
      });
      request.on('error', () => {
        clearTimeout(giveUp);
        retry(500);
      });
      request.on('timeout', () => {
        clearTimeout(giveUp);
        retry(0);
      });
      request.end(JSON.stringify({ n }));
    };

    let next = 0;
    const publisher = setInterval(() => {
      if (next < MESSAGES) send(next++);
    }, 1000 / RATE_PER_SECOND);
    try {
      await until(() => next >= MESSAGES / 2, () => 'the device did not reach half way');
      // restart: held requests are answered 5.03, datagrams meanwhile hit a closed port
      subscription.unsubscribe();
      await server.close();
      const heldAtRestart = answers.get('5.03') ?? 0;
      await sleep(500);
      server = new CoapTransport(options, silentLogger);
      await server.connect();
      subscription = consume(server);

      await until(() => acknowledged.size === MESSAGES, () => `${acknowledged.size} of ${MESSAGES} acknowledged`, 90_000);
      await sleep(500);
      const unique = new Set(received);
      const lost = [...acknowledged].filter((n) => !unique.has(n));
      const duplicates = received.length - unique.size;
      console.log(
        `coap fault: ${MESSAGES} messages at ${RATE_PER_SECOND}/s, ${DROP_RATE * 100} % datagrams dropped each way (${proxy.dropped} dropped, ${proxy.forwarded} forwarded), server restarted once;` +
          ` ${requests} requests sent, answers ${JSON.stringify(Object.fromEntries(answers))} (5.03 at the restart: ${heldAtRestart}); acknowledged ${acknowledged.size}, delivered ${received.length} (${unique.size} distinct), lost ${lost.length}, duplicates ${duplicates}`,
      );
      expect(lost).toEqual([]);
      expect(unique.size).toBe(MESSAGES);
      // a duplicate needs a request the device sent again: a retry after 5.03/no answer, or a retransmission the restart forgot
      expect(duplicates).toBeLessThanOrEqual(requests - MESSAGES + 20);
    } finally {
      clearInterval(publisher);
      subscription.unsubscribe();
      await server.close();
      proxy.close();
    }
  });
});
