import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ZeroMqTransport } from '../../adapters/zeromq/index.ts';
import { createMessage, parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { ChildScript } from '../support/child-script.ts';
import { freePort } from '../support/free-port.ts';
import { sleep, until } from '../support/wait.ts';

// The consumer process of a ZeroMQ pipeline (PULL bound on its own loopback port) is killed with SIGKILL
// mid-stream while this process publishes at a fixed rate through a connecting PUSH, then started again
// on the same port.
//
// The promise (docs/transports/zeromq.md): AT MOST ONCE. What the dead process held — its PULL socket's
// queue, the kernel's buffers towards it, its unsettled deliveries — is lost; nothing is ever delivered
// twice; the PUSH reconnects by itself and, while no peer is there, queues up to its high-water mark
// (1,000), so what was published during the outage reaches the new consumer; every message published
// once the new consumer is up arrives.

const RATE_PER_SECOND = 200;
const child = fileURLToPath(new URL('zeromq-consumer-child.ts', import.meta.url));
const children: ChildScript[] = [];

afterAll(async () => {
  for (const script of children) await script.kill();
});

function startConsumer(port: number, received: number[]): ChildScript {
  const script = new ChildScript(child, [String(port)], {
    onLine: (line) => {
      if (line.startsWith('got ')) received.push(Number(line.slice(4)));
    },
  });
  children.push(script);
  return script;
}

describe('ZeroMQ: the consumer process killed mid-stream under a fixed-rate publisher', () => {
  it('loses only what the dead consumer held, delivers nothing twice, and resumes when a consumer binds again', async () => {
    const port = await freePort();
    const endpoint = parseEndpoint(`zmq:tcp://127.0.0.1:${port}?headers=all`);
    const publisher = new ZeroMqTransport({ lingerMs: 0 }, silentLogger);
    await publisher.connect();
    const received: number[] = [];
    let sent = 0;
    let failures = 0;
    let publishing = true;
    const started = Date.now();
    // fixed rate: every tick publishes what the clock says is due (one publish call at a time)
    const pump = (async () => {
      while (publishing) {
        const due = Math.floor(((Date.now() - started) / 1000) * RATE_PER_SECOND);
        const batch = [];
        while (sent < due) batch.push(createMessage({ n: (sent += 1) }));
        if (batch.length > 0) await publisher.publish(endpoint, batch).catch(() => (failures += 1));
        await sleep(5);
      }
    })();

    const first = startConsumer(port, received);
    await until(() => received.length >= 300, () => `the first consumer got ${received.length}`, 30_000);
    await first.kill();
    const sentAtKill = sent;
    const receivedAtKill = received.length;
    await sleep(1_000);
    const sentBeforeRestart = sent;
    const second = startConsumer(port, received);
    await until(() => second.lines.includes('ready'), () => 'the second consumer did not start', 30_000);
    const resumedFrom = received.length;
    await until(() => received.length > resumedFrom + 300, () => `the second consumer got ${received.length - resumedFrom}`, 30_000);
    publishing = false;
    await pump;
    await until(() => received.includes(sent), () => `the last message (${sent}) did not arrive`, 30_000);
    await sleep(500);
    await publisher.close();

    const unique = new Set(received);
    const duplicates = received.length - unique.size;
    const lost = [...Array(sent).keys()].map((index) => index + 1).filter((n) => !unique.has(n));
    console.log(
      `zeromq consumer kill @${RATE_PER_SECOND}/s: sent ${sent} (at kill ${sentAtKill}, during the 1 s outage ${sentBeforeRestart - sentAtKill}), received ${received.length} ` +
        `(first consumer ${receivedAtKill}), lost ${lost.length}${lost.length > 0 ? ` (${lost[0]}…${lost.at(-1)})` : ''}, duplicates ${duplicates}, publish failures ${failures}`,
    );
    expect(duplicates).toBe(0);
    expect(failures).toBe(0);
    // nothing lost after the kill: the outage's messages waited in the PUSH queue; losses are what the dead process held
    expect(lost.every((n) => n <= sentAtKill)).toBe(true);
    // the stream resumed to its end
    expect(unique.has(sent)).toBe(true);
  });
});
