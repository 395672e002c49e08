import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { firstValueFrom, filter } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsPublishError, NatsTopologyError, NatsTransport, type NatsTransportStatus } from '../../adapters/nats/index.ts';
import { eventually, Probe, QUIET_MS, sleep } from '../../facade/testing/contract-probe.ts';
import { createIntegration, from, silentLogger } from '../../facade/index.ts';
import { createMessage, InterchangeError, parseEndpoint, PartialPublishError, TimeoutError, type Delivery } from '../../src/core/index.ts';
import { natsModule } from '../../adapters/nats/index.ts';
import { NatsConnectionManager } from '../../adapters/nats/nats-connection.ts';
import { deleteStreams, NATS_URL, requireNats, runTag, testTransport } from './nats-support.ts';

const stream = runTag('adapter').toUpperCase();
const root = stream.toLowerCase();
const deadStream = `${stream}_DEAD`;
const deadPrefix = `${root}-dead`;
let raw: NatsConnection;
let transports: NatsTransport[] = [];
let probes: Probe[] = [];
let counter = 0;

const unique = (label: string): string => `${label}${(counter++).toString(36)}`;

async function transport(options: ConstructorParameters<typeof NatsTransport>[0] = {}): Promise<NatsTransport> {
  const created = testTransport({ streams: [{ name: stream, subjects: [`${root}.>`] }], deadLetter: { prefix: deadPrefix, stream: deadStream }, ...options });
  transports.push(created);
  await created.connect();
  return created;
}

function probe(via: NatsTransport, uri: string, settle: (delivery: Delivery) => void = (delivery) => delivery.ack(), prefetch?: number): Probe {
  const created = new Probe(via.consume(parseEndpoint(uri), prefetch === undefined ? {} : { prefetch }), settle);
  probes.push(created);
  return created;
}

beforeAll(async () => {
  await requireNats();
  raw = await connect({ servers: NATS_URL });
});
afterEach(async () => {
  for (const created of probes) created.unsubscribe();
  for (const created of transports) await created.close();
  probes = [];
  transports = [];
});
afterAll(async () => {
  await raw.close();
  await deleteStreams([stream, deadStream]);
});

describe('nats core subjects (at-most-once)', () => {
  it('consumes with * and > wildcards; the adapter names the concrete subject', async () => {
    const nats = await transport();
    const base = `${root}-core.${unique('w')}`;
    const star = probe(nats, `nats:subject/${base}.*.reading?headers=all`);
    const rest = probe(nats, `nats:subject/${base}.>?headers=all`);
    await nats.publish(parseEndpoint(`nats:subject/${base}.dev1.reading`), [createMessage({ t: 1 })]);
    await nats.publish(parseEndpoint(`nats:subject/${base}.dev1.status.now`), [createMessage({ s: 'ok' })]);
    await rest.received(2);
    await star.received(1);
    await sleep(QUIET_MS);
    expect(star.count).toBe(1);
    expect(star.deliveries[0]?.message.headers.natsSubject).toBe(`${base}.dev1.reading`);
    expect(rest.deliveries.map((delivery) => delivery.message.headers.natsSubject).sort()).toEqual([`${base}.dev1.reading`, `${base}.dev1.status.now`]);
  });

  it('a queue group splits the messages between its members; a subscriber outside it gets them all', async () => {
    const nats = await transport();
    const subject = `${root}-core.${unique('q')}`;
    const a = probe(nats, `nats:subject/${subject}?queue=workers`);
    const b = probe(nats, `nats:subject/${subject}?queue=workers`);
    const all = probe(nats, `nats:subject/${subject}`);
    await nats.publish(parseEndpoint(`nats:subject/${subject}`), Array.from({ length: 100 }, (_, n) => createMessage({ n })));
    await all.received(100);
    await eventually(() => a.count + b.count >= 100, () => `expected 100 in the group, got ${a.count} + ${b.count}`);
    await sleep(QUIET_MS);
    expect(a.count + b.count).toBe(100);
    expect(a.count).toBeGreaterThan(0);
    expect(b.count).toBeGreaterThan(0);
  });

  it('keeps nothing for absent subscribers and never redelivers a nacked message', async () => {
    const nats = await transport();
    const subject = `${root}-core.${unique('amo')}`;
    await nats.publish(parseEndpoint(`nats:subject/${subject}`), [createMessage({ early: true })]);
    const late = probe(nats, `nats:subject/${subject}`, (delivery) => delivery.nack(new Error('no')));
    await sleep(QUIET_MS);
    expect(late.count).toBe(0);
    await nats.publish(parseEndpoint(`nats:subject/${subject}`), [createMessage({ early: false })]);
    await late.received(1);
    await sleep(QUIET_MS * 2);
    expect(late.count).toBe(1);
  });

  it('holds at most prefetch deliveries unsettled and queues the rest locally', async () => {
    const nats = await transport();
    const subject = `${root}-core.${unique('pf')}`;
    const held = probe(nats, `nats:subject/${subject}`, () => undefined, 3);
    await sleep(QUIET_MS); // the subscription is registered with the server
    await nats.publish(parseEndpoint(`nats:subject/${subject}`), Array.from({ length: 10 }, (_, n) => createMessage({ n })));
    await held.received(3);
    await sleep(QUIET_MS);
    expect(held.count).toBe(3);
    held.deliveries[0]?.ack();
    await held.received(4);
    expect(held.deliveries.map((delivery) => (delivery.message.body as { n: number }).n)).toEqual([0, 1, 2, 3]);
  });
});

describe('nats JetStream', () => {
  it('publish resolves on the stream ack and de-duplicates on the message id (Nats-Msg-Id)', async () => {
    const nats = await transport();
    const uri = `nats:jetstream/${stream}/${root}.${unique('dedup')}?headers=all`;
    const message = createMessage({ once: true });
    await nats.publish(parseEndpoint(uri), [message]);
    await nats.publish(parseEndpoint(uri), [message]); // a retried publish: the stream keeps one
    const consumer = probe(nats, uri);
    await consumer.received(1);
    await sleep(QUIET_MS * 2);
    expect(consumer.ids()).toEqual([message.id]);
  });

  it("attempt is the server's delivery count; past maxDeliveries the message goes to the dead-letter subject, terminated", async () => {
    const nats = await transport({ redelivery: { initialDelayMs: 10, maxDelayMs: 50 } });
    const subject = `${root}.${unique('dl')}`;
    const uri = `nats:jetstream/${stream}/${subject}?headers=all&maxDeliveries=3`;
    const sent = createMessage({ poison: true }, { headers: { 'x-tenant': 'acme' } });
    await nats.publish(parseEndpoint(uri), [sent]);
    const failing = probe(nats, uri, (delivery) => delivery.nack(new InterchangeError('BAD_THING', 'cannot process')));
    await failing.received(3);
    const dead = probe(nats, `nats:jetstream/${deadStream}/${deadPrefix}.${stream}.${subject}?headers=all`);
    await dead.received(1);
    await sleep(QUIET_MS * 2);
    expect(failing.deliveries.map((delivery) => delivery.message.headers.attempt ?? 1)).toEqual([1, 2, 3]);
    expect(failing.count).toBe(3);
    const letter = dead.deliveries[0]?.message;
    expect(letter?.id).toBe(sent.id);
    expect(letter?.body).toEqual({ poison: true });
    expect(letter?.headers).toMatchObject({ 'x-tenant': 'acme', 'x-interchange-error': 'cannot process', 'x-interchange-error-code': 'BAD_THING', 'x-interchange-attempts': 3 });
  });

  it('a permanent failure is dead-lettered at its first nack', async () => {
    const nats = await transport();
    const subject = `${root}.${unique('perm')}`;
    const uri = `nats:jetstream/${stream}/${subject}?headers=all`;
    await nats.publish(parseEndpoint(uri), [createMessage({ bad: true })]);
    const failing = probe(nats, uri, (delivery) => delivery.nack(new InterchangeError('INVALID', 'schema says no', { permanent: true })));
    const dead = probe(nats, `nats:jetstream/${deadStream}/${deadPrefix}.${stream}.${subject}?headers=all`);
    await dead.received(1);
    await sleep(QUIET_MS * 2);
    expect(failing.count).toBe(1);
    expect(dead.deliveries[0]?.message.headers['x-interchange-error-code']).toBe('INVALID');
  });

  it('consumers with other names each get every message (publish-subscribe over one stream)', async () => {
    const nats = await transport();
    const subject = `${root}.${unique('fan')}`;
    await nats.publish(parseEndpoint(`nats:jetstream/${stream}/${subject}`), [createMessage({ n: 1 }), createMessage({ n: 2 })]);
    const billing = probe(nats, `nats:jetstream/${stream}/${subject}?consumer=${stream}-billing`);
    const audit = probe(nats, `nats:jetstream/${stream}/${subject}?consumer=${stream}-audit`);
    await billing.received(2);
    await audit.received(2);
  });

  it('untrusted publishers by default: content type and allow-listed headers only, the id derived from the stream sequence', async () => {
    const nats = await transport({ redelivery: { initialDelayMs: 10, maxDelayMs: 10 } });
    const subject = `${root}.${unique('foreign')}`;
    const hdrs = natsHeaders();
    hdrs.set('Nats-Msg-Id', 'chosen-by-device');
    hdrs.set('Content-Type', 'application/json');
    hdrs.set('site', 'north');
    hdrs.set('secret', 'nope');
    hdrs.set('x-interchange-error-code', 'FAKE');
    hdrs.set('attempt', '99');
    hdrs.set('ic-types', '{"site":"n"}');
    const js = (await jetstreamManager(raw)).jetstream();
    await js.publish(subject, JSON.stringify({ reading: 21.5 }), { headers: hdrs });
    const standard = probe(nats, `nats:jetstream/${stream}/${subject}?allowHeaders=site,x-interchange-error-code,attempt`, (delivery) => {
      if ((delivery.message.headers.attempt ?? 1) === 1) delivery.nack(new Error('again'));
      else delivery.ack();
    });
    await standard.received(2);
    const [first, second] = standard.deliveries.map((delivery) => delivery.message);
    expect(first?.body).toEqual({ reading: 21.5 });
    expect(first?.id).not.toBe('chosen-by-device');
    expect(second?.id).toBe(first?.id); // the same on redelivery: idempotent consumers still recognise it
    expect(first?.headers).toEqual({ contentType: 'application/json', site: 'north', natsSubject: subject, natsSequence: expect.any(Number) as number });
    expect(second?.headers.attempt).toBe(2);

    const trusted = probe(nats, `nats:jetstream/${stream}/${subject}?headers=all&consumer=${stream}-trusted`);
    await trusted.received(1);
    expect(trusted.deliveries[0]?.message.id).toBe('chosen-by-device');
    expect(trusted.deliveries[0]?.message.headers).toMatchObject({ site: 'north', secret: 'nope', 'x-interchange-error-code': 'FAKE' });
    expect(trusted.deliveries[0]?.message.headers.attempt).toBeUndefined();
  });

  it('never publishes a Nats-* header of a message (the server acts on them), and round-trips exact strings', async () => {
    const nats = await transport();
    const subject = `${root}.${unique('hdr')}`;
    const uri = `nats:jetstream/${stream}/${subject}?headers=all`;
    await nats.publish(parseEndpoint(uri), [createMessage({ n: 1 })]);
    await nats.publish(parseEndpoint(uri), [createMessage({ n: 2 }, { headers: { 'Nats-Rollup': 'sub', 'x-padded': '  two spaces  ', 'x-lines': 'a\r\nb' } })]);
    const consumer = probe(nats, uri);
    await consumer.received(2); // a rollup would have purged the first
    expect(consumer.deliveries[1]?.message.headers).toMatchObject({ 'x-padded': '  two spaces  ', 'x-lines': 'a\r\nb' });
    expect(consumer.deliveries[1]?.message.headers['Nats-Rollup']).toBeUndefined();
  });

  it("publishes the id and typed headers, never a delivery's own (attempt, natsSubject, natsSequence)", async () => {
    const nats = await transport();
    const subject = `${root}-core.${unique('wire')}`;
    const seen = new Promise<string[]>((resolve) => {
      const sub = raw.subscribe(subject, {
        max: 1,
        callback: (_error, msg) => {
          resolve([...(msg.headers?.keys() ?? [])].sort());
          sub.unsubscribe();
        },
      });
    });
    await raw.flush();
    const message = createMessage({ n: 1 }, { headers: { attempt: 3, natsSubject: 'elsewhere', natsSequence: 9, 'x-count': 7 } });
    await nats.publish(parseEndpoint(`nats:subject/${subject}`), [message]);
    expect(await seen).toEqual(['Nats-Msg-Id', 'ic-types', 'timestamp', 'x-count']);
  });

  it('a message over maxMessageBytes arrives with an intake error and an empty body', async () => {
    const nats = await transport();
    const uri = `nats:jetstream/${stream}/${root}.${unique('big')}?maxMessageBytes=1000`;
    await nats.publish(parseEndpoint(uri), [createMessage('x'.repeat(5_000))]);
    const consumer = probe(nats, uri);
    await consumer.received(1);
    expect(consumer.deliveries[0]?.intakeError?.name).toBe('NatsMessageTooLargeError');
    expect(consumer.deliveries[0]?.message.body).toBe('');
  });

  it('provision=false refuses an absent stream: publish and consume fail with NatsTopologyError', async () => {
    const nats = await transport();
    const missing = `${stream}_ABSENT`;
    const uri = `nats:jetstream/${missing}/${root}-absent.x?provision=false`;
    await expect(nats.publish(parseEndpoint(uri), [createMessage(1)])).rejects.toBeInstanceOf(NatsTopologyError);
    const consumer = probe(nats, uri);
    await eventually(() => consumer.error !== undefined, () => 'expected the consume stream to fail');
    expect(consumer.error).toBeInstanceOf(NatsTopologyError);
  });

  it('a subject no stream captures fails publish with NatsPublishError', async () => {
    const nats = await transport();
    await expect(nats.publish(parseEndpoint(`nats:jetstream/${stream}/${root}-elsewhere.x`), [createMessage(1)])).rejects.toBeInstanceOf(NatsPublishError);
  });

  it('an unencodable message fails alone (PartialPublishError); a template value may not add subject tokens', async () => {
    const nats = await transport();
    const base = `${root}.${unique('tpl')}`;
    const good = createMessage({ device: 'd1' });
    const dotted = createMessage({ device: 'd1.evil' });
    const badHeader = createMessage({ device: 'd2' }, { headers: { 'bad name': 'x' } });
    const error = await nats.publish(parseEndpoint(`nats:jetstream/${stream}/${base}.{device}?headers=all`), [good, dotted, badHeader]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1, 2]);
    const consumer = probe(nats, `nats:jetstream/${stream}/${base}.*?headers=all`);
    await consumer.received(1);
    expect(consumer.deliveries[0]?.message.headers.natsSubject).toBe(`${base}.d1`);
  });
});

describe('nats in a route', () => {
  it('JetStream → JetStream: the copies are stored, a step failing on one message dead-letters it after maxDeliveries, the source is drained', async () => {
    const input = `${root}.${unique('route-in')}`;
    const output = `${root}.${unique('route-out')}`;
    const app = createIntegration({
      logger: silentLogger,
      modules: [natsModule({ url: NATS_URL, maxDeliveries: 2, redelivery: { initialDelayMs: 10, maxDelayMs: 20 }, streams: [{ name: stream, subjects: [`${root}.>`] }], deadLetter: { prefix: deadPrefix, stream: deadStream } })],
      routes: [
        from(`nats:jetstream/${stream}/${input}?headers=all`, { id: 'nats-route' })
          .process((message) => {
            if ((message.body as { n: number }).n === 3) throw new Error('three is bad');
          })
          .to(`nats:jetstream/${stream}/${output}?headers=all`),
      ],
    });
    const nats = await transport();
    const sent = Array.from({ length: 5 }, (_, n) => createMessage({ n }));
    await nats.publish(parseEndpoint(`nats:jetstream/${stream}/${input}`), sent);
    await app.start();
    const copies = probe(nats, `nats:jetstream/${stream}/${output}?headers=all`);
    const dead = probe(nats, `nats:jetstream/${deadStream}/${deadPrefix}.${stream}.${input}?headers=all`);
    await copies.received(4);
    await dead.received(1);
    await app.stop();
    expect(copies.ids().sort()).toEqual(sent.filter((_, n) => n !== 3).map((message) => message.id).sort());
    expect(dead.deliveries[0]?.message.id).toBe(sent[3]?.id);
    expect(dead.deliveries[0]?.message.headers['x-interchange-attempts']).toBe(2);
    // everything was settled: nothing is left for the route's durable consumer
    const jsm = await jetstreamManager(raw);
    const consumers = await jsm.consumers.list(stream).next();
    const ours = consumers.find((info) => info.config.filter_subject === input);
    expect(ours?.num_pending).toBe(0);
    expect(ours?.num_ack_pending).toBe(0);
  });

  it('a step holding a message for 3× ack_wait keeps it (working() heartbeats): processed once, attempt 1, never redelivered', async () => {
    const hnfStream = `hNf_ackwait_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
    const subject = `${hnfStream}.held`;
    const streams = [{ name: hnfStream, subjects: [`${hnfStream}.>`] }];
    const deadLetter = { prefix: `${hnfStream}-dead`, stream: `${hnfStream}_DEAD` };
    const ackWaitMs = 1_000;
    const processed: (number | undefined)[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const app = createIntegration({
      logger: silentLogger,
      modules: [natsModule({ url: NATS_URL, streams, deadLetter })],
      routes: [
        from(`nats:jetstream/${hnfStream}/${subject}?headers=all&ackWaitMs=${ackWaitMs}`, { id: 'nats-held' }).process(async (message) => {
          processed.push(message.headers.attempt);
          await sleep(3 * ackWaitMs); // a long retry backoff, a slow downstream
          done();
        }).to(`nats:jetstream/${hnfStream}/${hnfStream}.out`),
      ],
    });
    try {
      const nats = await transport({ streams, deadLetter });
      await nats.publish(parseEndpoint(`nats:jetstream/${hnfStream}/${subject}`), [createMessage({ slow: true })]);
      try {
        await app.start();
        await finished;
        await sleep(ackWaitMs + QUIET_MS * 2); // past another ack_wait: a redelivery would have come by now
      } finally {
        await app.stop();
      }
      expect(processed).toEqual([undefined]); // no attempt header: the first delivery, and the only one
      const jsm = await jetstreamManager(raw);
      const [info] = await jsm.consumers.list(hnfStream).next();
      expect(info?.delivered.stream_seq).toBe(1);
      expect(info?.num_redelivered).toBe(0);
      expect(info?.num_ack_pending).toBe(0);
    } finally {
      await deleteStreams([hnfStream, deadLetter.stream]);
    }
  }, 15_000);
});

describe('nats request-reply', () => {
  it('request resolves with the reply from a responder on a core subject', async () => {
    const nats = await transport();
    const subject = `${root}-svc.${unique('price')}`;
    const responder = raw.subscribe(subject, {
      callback: (_error, msg) => {
        const hdrs = natsHeaders();
        hdrs.set('Nats-Msg-Id', 'reply-1');
        msg.respond(JSON.stringify({ price: 42, asked: (JSON.parse(msg.string()) as { sku: string }).sku }), { headers: hdrs });
      },
    });
    await raw.flush();
    const request = createMessage({ sku: 'A-1' }, { headers: { correlationId: 'c-7' } });
    const reply = await nats.request?.(parseEndpoint(`nats:subject/${subject}`), request, { timeoutMs: 2_000 });
    responder.unsubscribe();
    expect(reply?.body).toEqual({ price: 42, asked: 'A-1' });
    expect(reply?.id).toBe('reply-1');
    expect(reply?.headers.correlationId).toBe('c-7');
  });

  it('an Interchange route answers requests: the reply subject arrives as replyTo, published back through a template', async () => {
    const service = await transport();
    const client = await transport();
    const subject = `${root}-svc.${unique('echo')}`;
    probe(service, `nats:subject/${subject}?headers=all`, (delivery) => {
      const { replyTo } = delivery.message.headers;
      service
        .publish(parseEndpoint('nats:subject/{replyTo}'), [createMessage({ echo: delivery.message.body }, { headers: { replyTo: String(replyTo) } })])
        .then(() => delivery.ack(), (error: Error) => delivery.nack(error));
    });
    await sleep(QUIET_MS);
    const reply = await client.request?.(parseEndpoint(`nats:subject/${subject}`), createMessage('ping'), { timeoutMs: 2_000 });
    expect(reply?.body).toEqual({ echo: 'ping' });
    // a requester cannot aim the reply at the server's API
    const steered = service.publish(parseEndpoint('nats:subject/{replyTo}'), [createMessage('x', { headers: { replyTo: `$JS.API.STREAM.DELETE.${stream}` } })]);
    await expect(steered).rejects.toBeInstanceOf(PartialPublishError);
  });

  it('rejects with NATS_NO_RESPONDERS when nobody listens, TimeoutError when nobody answers, REQUEST_ABORTED on abort', async () => {
    const nats = await transport();
    const subject = `${root}-svc.${unique('silent')}`;
    await expect(nats.request?.(parseEndpoint(`nats:subject/${subject}`), createMessage(1), { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'NATS_NO_RESPONDERS' });
    const silent = raw.subscribe(subject, { callback: () => undefined });
    await raw.flush();
    await expect(nats.request?.(parseEndpoint(`nats:subject/${subject}`), createMessage(1), { timeoutMs: 200 })).rejects.toBeInstanceOf(TimeoutError);
    const abort = new AbortController();
    const pending = nats.request?.(parseEndpoint(`nats:subject/${subject}`), createMessage(1), { timeoutMs: 5_000, signal: abort.signal });
    abort.abort();
    await expect(pending).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
    silent.unsubscribe();
    await expect(nats.request?.(parseEndpoint(`nats:jetstream/${stream}/${root}.x`), createMessage(1), { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ENDPOINT' });
  });
});

describe('nats connection', () => {
  it('status$ says connected, then closed; publishing after close is NotConnectedError', async () => {
    const nats = await transport();
    const connected = await firstValueFrom(nats.status$.pipe(filter((status: NatsTransportStatus) => status.state === 'connected')));
    expect(connected.serverVersion).toMatch(/^2\./);
    await nats.close();
    expect(nats.status.state).toBe('closed');
    await expect(nats.publish(parseEndpoint(`nats:subject/${root}.x`), [createMessage(1)])).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
  });

  it('connect rejects with NotConnectedError when no server answers in time; invalid options are refused', async () => {
    const nats = new NatsTransport({ url: 'nats://127.0.0.1:1', connectTimeoutMs: 300 });
    await expect(nats.connect()).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    expect(() => new NatsTransport({ url: 'http://x', maxDeliveries: 0 } as never)).toThrow(/maxDeliveries|url/);
    expect(() => parseAndConsume('nats:subject/a.b?consumer=x')).toThrow(/JetStream/);
    expect(() => parseAndConsume('nats:jetstream/S/a?queue=g')).toThrow(/queue/);
    expect(() => parseAndConsume('nats:subject/a..b')).toThrow(/empty token/);
  });

  it('captures no stack trace per request (every JetStream publish is one): noAsyncTraces; a refused publish is still typed', async () => {
    const manager = new NatsConnectionManager({ url: NATS_URL, connectTimeoutMs: 3_000 }, silentLogger);
    const nc = await manager.open();
    try {
      expect((nc as unknown as { options: ConnectionOptions }).options.noAsyncTraces).toBe(true);
    } finally {
      await manager.close();
    }
    const nats = await transport();
    const refused = await nats.publish(parseEndpoint(`nats:jetstream/${stream}/${unique('uncaptured')}.x?provision=false`), [createMessage(1)]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(NatsPublishError);
    expect((refused as NatsPublishError).cause).toBeInstanceOf(Error);
  });
});

/** The consume stream's error for `uri` (endpoint validation fails the stream, not the call). */
function parseAndConsume(uri: string): void {
  let failure: unknown;
  new NatsTransport({}).consume(parseEndpoint(uri)).subscribe({ error: (error: unknown) => (failure = error) }).unsubscribe();
  if (failure !== undefined) throw failure as Error;
}
