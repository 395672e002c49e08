import type * as Vitest from 'vitest';
import { createMessage, type ConsumeOptions, type Delivery, type Endpoint, type Message, type Transport } from '../../src/core/index.ts';
import { eventually, numbered, Probe, QUIET_MS, required, sleep, track } from './contract-probe.ts';

/**
 * vitest, when it is installed (an optional peer dependency): only this suite needs it, so the rest of
 * `interchange-eip/testing` (the test kit) loads under any test runner, or none.
 */
const vitest: typeof Vitest | undefined = await import('vitest').catch(() => undefined);

/** What an adapter can promise; a case runs only where its flag is true (Watermill's `Features`). */
export interface TransportFeatures {
  /** Messages published in one call arrive in publish order (to a single consumer). */
  readonly guaranteedOrder: boolean;
  /** A nacked delivery comes back with `attempt` incremented. */
  readonly redeliversOnNack: boolean;
  /** Deliveries unsettled when their consumer unsubscribes go back to the destination. */
  readonly redeliversUnsettledOnUnsubscribe: boolean;
  /** Several consumers of one point-to-point destination share its messages. */
  readonly competingConsumers: boolean;
  /** `pubsubEndpoint` gives a destination whose every subscriber gets every message. */
  readonly publishSubscribe: boolean;
  /** `boundedEndpoint` gives a destination whose `publish` waits while it is full. */
  readonly boundedPublish: boolean;
  /** Messages published before `close` are still there after `connect` on the same transport. */
  readonly persistentAcrossReconnect?: boolean;
  /**
   * `publish` resolves only once a consumer has settled the message: a request/response protocol with
   * no broker or queue in between (CoAP: a device's confirmable request is answered after its route
   * settled it). Cases that publish before anything consumes then start the publish, consume, and check
   * its outcome once the messages were settled. Default false.
   */
  readonly publishAwaitsSettlement?: boolean;
}

export interface ContractSetup {
  /** A fresh, connected transport; the suite closes it after the test. */
  create(): Promise<Transport>;
  /** A fresh point-to-point destination, unique per call; publish and consume use the same endpoint. */
  endpoint(name: string): Endpoint;
  /** A fresh publish-subscribe destination, unique per call. Required when `publishSubscribe`. */
  pubsubEndpoint?(name: string): Endpoint;
  /** A fresh point-to-point destination holding at most `capacity` messages. Required when `boundedPublish`. */
  boundedEndpoint?(name: string, capacity: number): Endpoint;
  /** Called after each test, once its transports are closed (delete broker topology, …). */
  cleanup?(): Promise<void>;
  readonly features: TransportFeatures;
}

/**
 * The transport contract every adapter passes, Interchange's own and third-party ones alike
 * (Watermill's universal pub/sub tests): publish and consume, settlement, redelivery, prefetch,
 * competing consumers, publish-subscribe, bounded publish, intake stop and close. Cases skip only
 * where `setup.features` says the adapter does not offer the behaviour.
 *
 * Call it at the top level of a vitest test file (vitest ≥ 3 must be installed: it is an optional
 * peer dependency); it declares one `describe` block. Each case gets a fresh transport from
 * `setup.create()` and closes it afterwards. Throws `Error` when vitest cannot be loaded.
 * @example
 * import { describeTransportContract } from 'interchange-eip/testing';
 * import { parseEndpoint } from 'interchange-eip/spi';
 * describeTransportContract('file', {
 *   create: async () => { const transport = new FileTransport(); await transport.connect(); return transport; },
 *   endpoint: (name) => parseEndpoint(`file:${name}`),
 *   features: { guaranteedOrder: true, redeliversOnNack: true, redeliversUnsettledOnUnsubscribe: true, competingConsumers: true, publishSubscribe: false, boundedPublish: false },
 * });
 */
export function describeTransportContract(name: string, setup: ContractSetup): void {
  if (vitest === undefined) throw new Error('describeTransportContract runs under vitest: install it (npm install --save-dev vitest) and call it from a test file');
  const { afterEach, beforeEach, describe, expect, it } = vitest;
  const { features } = setup;

  describe(`transport contract: ${name}`, { timeout: 20_000 }, () => {
    let transports: Transport[] = [];
    let probes: Probe[] = [];
    let transport: Transport;
    let counter = 0;

    const fresh = async (): Promise<Transport> => {
      const created = await setup.create();
      transports.push(created);
      return created;
    };
    const unique = (label: string): string => `contract-${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
    const endpoint = (label: string): Endpoint => setup.endpoint(unique(label));

    /** Consumes `from`; `settle` decides what happens to each delivery (default: ack at once). */
    const consume = (from: Endpoint, options: ConsumeOptions = {}, settle: 'ack' | 'hold' | ((delivery: Delivery) => void) = 'ack', via = transport): Probe => {
      const onDelivery = settle === 'ack' ? (delivery: Delivery) => delivery.ack() : settle === 'hold' ? () => undefined : settle;
      const probe = new Probe(via.consume(from, options), onDelivery);
      probes.push(probe);
      return probe;
    };

    /**
     * Publishes before anything consumes: awaited at once, or — `publishAwaitsSettlement` — only started;
     * the function returned gives its outcome, to await once a consumer has settled the messages. Every
     * case settles all it published (acked, or nacked and then acked) and checks the outcome resolves: a
     * transport that never answers fails.
     */
    const publishAhead = async (to: Endpoint, messages: readonly Message[]): Promise<() => Promise<void>> => {
      if (features.publishAwaitsSettlement !== true) {
        await transport.publish(to, messages);
        return () => Promise.resolve();
      }
      const publishing = transport.publish(to, messages);
      publishing.catch(() => undefined); // a case that leaves messages unsettled leaves it pending until close
      return () => publishing;
    };

    beforeEach(async () => {
      transport = await fresh();
    });

    afterEach(async () => {
      for (const probe of probes) probe.unsubscribe();
      for (const created of transports) await created.close();
      probes = [];
      transports = [];
      await setup.cleanup?.();
    });

    it('publish resolves, then a consumer receives the same id, body and headers', async () => {
      const to = endpoint('roundtrip');
      const now = Date.now();
      const sent = createMessage(
        { orderId: 42, lines: [{ sku: 'A-1', qty: 2 }], note: 'ünïcødé ✓', nothing: null },
        {
          headers: {
            correlationId: 'corr-1',
            causationId: 'cause-1',
            timestamp: now,
            expiresAt: now + 3_600_000,
            contentType: 'application/json',
            schema: 'order.placed@1',
            replyTo: 'replies',
            traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
            'x-tenant': 'acme',
            'x-note': 'spaces, commas; = and "quotes"',
            'x-count': 7,
            'x-ratio': -2.5,
            'x-zero': 0,
            'x-urgent': true,
            'x-archived': false,
          },
        },
      );

      const published = await publishAhead(to, [sent]);
      const probe = consume(to);
      await probe.received(1);
      await expect(published()).resolves.toBeUndefined();

      const got = probe.deliveries[0]?.message;
      expect(got?.id).toBe(sent.id);
      expect(got?.body).toEqual(sent.body);
      expect(got?.headers).toMatchObject(sent.headers);
      expect(got?.headers.attempt ?? 1).toBe(1);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(1);
    });

    it('a batch of 200 messages arrives complete, each once', async () => {
      const to = endpoint('batch');
      const sent = numbered(200);
      const published = await publishAhead(to, sent);
      const probe = consume(to, { prefetch: 50 });
      await probe.received(200);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(200);
      expect(new Set(probe.ids())).toEqual(new Set(sent.map((message) => message.id)));
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.guaranteedOrder)('a batch of 200 messages arrives in publish order', async () => {
      const to = endpoint('order');
      const sent = numbered(200);
      const probe = consume(to, { prefetch: 50 });
      await transport.publish(to, sent);
      await probe.received(200);
      expect(probe.ids()).toEqual(sent.map((message) => message.id));
    });

    it('an acked message is gone: a later consumer gets nothing', async () => {
      const to = endpoint('acked');
      const published = await publishAhead(to, numbered(3));
      const first = consume(to);
      await first.received(3);
      first.unsubscribe();

      const second = consume(to);
      await sleep(QUIET_MS);
      expect(second.count).toBe(0);
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.redeliversOnNack)('a nacked delivery is redelivered with attempt incremented', async () => {
      const to = endpoint('nack');
      const [sent] = numbered(1);
      const published = await publishAhead(to, [sent as Message]);
      const probe = consume(to, {}, (delivery) => {
        if ((delivery.message.headers.attempt ?? 1) === 1) delivery.nack(new Error('try again'));
        else delivery.ack();
      });
      await probe.received(2);

      const [first, second] = probe.deliveries.map((delivery) => delivery.message);
      expect(first?.headers.attempt ?? 1).toBe(1);
      expect(second?.id).toBe(sent?.id);
      expect(second?.body).toEqual(sent?.body);
      expect(second?.headers['x-test']).toBe(sent?.headers['x-test']);
      expect(second?.headers.attempt).toBe(2);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(2);
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.redeliversUnsettledOnUnsubscribe)('unsubscribing with unsettled deliveries hands them to the next consumer, none lost', async () => {
      const to = endpoint('unsubscribe');
      const sent = numbered(10);
      const published = await publishAhead(to, sent);
      const first = consume(to, { prefetch: 10 }, 'hold');
      await first.received(10);
      const acked = first.deliveries.slice(0, 3);
      for (const delivery of acked) delivery.ack();
      first.unsubscribe();

      const second = consume(to);
      await second.received(7);
      await sleep(QUIET_MS);
      const ackedIds = acked.map((delivery) => delivery.message.id);
      expect(second.count).toBe(7);
      expect(new Set(second.ids())).toEqual(new Set(sent.map((message) => message.id).filter((id) => !ackedIds.includes(id))));
      for (const delivery of second.deliveries) expect(delivery.message.headers.attempt).toBe(2);
      await expect(published()).resolves.toBeUndefined();
    });

    it('a delivery settled twice takes effect once', async () => {
      const to = endpoint('twice');
      const published = await publishAhead(to, numbered(4));
      const probe = consume(to, { prefetch: 2 }, 'hold');
      await probe.received(2);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(2);

      const first = probe.deliveries[0] as Delivery;
      first.ack();
      first.ack();
      first.nack(new Error('too late'));
      expect(first.settled).toBe(true);
      // one ack frees one prefetch slot: exactly one more message, and the acked one never returns
      await probe.received(3);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(3);
      expect(probe.ids().filter((id) => id === first.message.id)).toHaveLength(1);
      await eventually(() => {
        for (const delivery of probe.unsettled()) delivery.ack();
        return probe.count === 4;
      }, () => `expected 4 deliveries while acking, got ${probe.count}`);
      for (const delivery of probe.unsettled()) delivery.ack();
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.redeliversOnNack)('a delivery nacked then acked is redelivered exactly once', async () => {
      const to = endpoint('nack-twice');
      const published = await publishAhead(to, numbered(1));
      let nacked = false;
      const probe = consume(to, {}, (delivery) => {
        if (nacked) return delivery.ack();
        nacked = true;
        delivery.nack(new Error('first'));
        delivery.ack();
        delivery.nack(new Error('second'));
      });
      await probe.received(2);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(2);
      expect(probe.deliveries[1]?.message.headers.attempt).toBe(2);
      await expect(published()).resolves.toBeUndefined();
    });

    it('prefetch bounds the unsettled deliveries of a consumer', async () => {
      const to = endpoint('prefetch');
      const published = await publishAhead(to, numbered(20));
      const probe = consume(to, { prefetch: 5 }, 'hold');
      await probe.received(5);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(5);

      probe.deliveries[0]?.ack();
      await probe.received(6);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(6);

      await eventually(() => {
        for (const delivery of probe.unsettled()) delivery.ack();
        return probe.count === 20;
      }, () => `expected 20 deliveries while acking, got ${probe.count}`);
      await sleep(QUIET_MS);
      expect(probe.count).toBe(20);
      for (const delivery of probe.unsettled()) delivery.ack();
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.competingConsumers)('competing consumers split the messages, none delivered to both', async () => {
      const to = endpoint('competing');
      const sent = numbered(100);
      const ackSoon = (delivery: Delivery): void => {
        setTimeout(() => delivery.ack(), 1);
      };
      const a = consume(to, { prefetch: 5 }, ackSoon);
      const b = consume(to, { prefetch: 5 }, ackSoon);
      await transport.publish(to, sent);
      await eventually(() => a.count + b.count >= 100, () => `expected 100 deliveries in all, got ${a.count} + ${b.count}`);
      await sleep(QUIET_MS);

      expect(a.count).toBeGreaterThan(0);
      expect(b.count).toBeGreaterThan(0);
      expect(a.count + b.count).toBe(100);
      const seenByA = new Set(a.ids());
      expect(b.ids().filter((id) => seenByA.has(id))).toEqual([]);
      expect(new Set([...a.ids(), ...b.ids()])).toEqual(new Set(sent.map((message) => message.id)));
    });

    it('aborting the signal stops intake; emitted deliveries can still be acked', async () => {
      const to = endpoint('abort');
      const sent = numbered(10);
      const published = await publishAhead(to, sent);
      const intake = new AbortController();
      const probe = consume(to, { prefetch: 3, signal: intake.signal }, 'hold');
      await probe.received(3);

      intake.abort();
      const held = [...probe.deliveries];
      for (const delivery of held) delivery.ack();
      // the freed prefetch slots bring nothing new: intake has stopped (the stream may or may not complete)
      await sleep(QUIET_MS);
      expect(probe.error).toBeUndefined();
      expect(probe.count).toBe(3);
      probe.unsubscribe();

      // the acks took effect: the next consumer gets exactly the other seven
      const next = consume(to);
      await next.received(7);
      await sleep(QUIET_MS);
      const heldIds = new Set(held.map((delivery) => delivery.message.id));
      expect(next.count).toBe(7);
      expect(next.ids().filter((id) => heldIds.has(id))).toEqual([]);
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.redeliversUnsettledOnUnsubscribe)('after an abort, unsubscribing hands back what is still unsettled', async () => {
      const to = endpoint('abort-unsubscribe');
      const sent = numbered(6);
      const published = await publishAhead(to, sent);
      const intake = new AbortController();
      const probe = consume(to, { prefetch: 3, signal: intake.signal }, 'hold');
      await probe.received(3);

      intake.abort();
      const [acked, ...kept] = probe.deliveries as [Delivery, Delivery, Delivery];
      acked.ack();
      await sleep(QUIET_MS);
      expect(probe.count).toBe(3);
      probe.unsubscribe();
      // settling after unsubscribe is ignored: the delivery was handed back (and must not fail the transport)
      kept[1]?.ack();

      const next = consume(to);
      await next.received(5);
      await sleep(QUIET_MS);
      expect(next.count).toBe(5);
      expect(new Set(next.ids())).toEqual(new Set(sent.map((message) => message.id).filter((id) => id !== acked.message.id)));
      const keptIds = new Set(kept.map((delivery) => delivery.message.id));
      const returned = next.deliveries.filter((delivery) => keptIds.has(delivery.message.id));
      expect(returned).toHaveLength(2);
      for (const delivery of returned) expect(delivery.message.headers.attempt).toBe(2);
      await expect(published()).resolves.toBeUndefined();
    });

    it('a signal aborted before subscribing takes nothing', async () => {
      const to = endpoint('pre-aborted');
      const published = await publishAhead(to, numbered(2));
      const probe = consume(to, { signal: AbortSignal.abort() });
      await sleep(QUIET_MS);
      expect(probe.count).toBe(0);
      expect(probe.error).toBeUndefined();

      const next = consume(to);
      await next.received(2);
      await expect(published()).resolves.toBeUndefined();
    });

    it.skipIf(!features.publishSubscribe)('publish-subscribe delivers each message to every subscriber', async () => {
      const to = required(setup.pubsubEndpoint, 'pubsubEndpoint').call(setup, unique('pubsub'));
      const subscribers = [consume(to), consume(to), consume(to)];
      // subscriptions may take effect asynchronously (a broker binds a queue): publish warm-ups until every subscriber has one
      const warmUpIds = new Set<string>();
      await eventually(() => subscribers.every((subscriber) => subscriber.count > 0), () => 'expected every subscriber to receive a warm-up message', async () => {
        const [warmUp] = numbered(1, 'warm-up');
        warmUpIds.add((warmUp as Message).id);
        await transport.publish(to, [warmUp as Message]);
      });
      const sent = numbered(20);
      await transport.publish(to, sent);
      const expected = sent.map((message) => message.id);
      for (const subscriber of subscribers) {
        await eventually(() => subscriber.ids().filter((id) => !warmUpIds.has(id)).length >= 20, () => `expected 20 messages at every subscriber, got ${subscriber.count}`);
      }
      await sleep(QUIET_MS);
      for (const subscriber of subscribers) {
        const ids = subscriber.ids().filter((id) => !warmUpIds.has(id));
        expect(ids).toHaveLength(20);
        expect(new Set(ids)).toEqual(new Set(expected));
      }
    });

    it.skipIf(!features.boundedPublish)('publish waits while a bounded destination is full, and resolves once the consumer acks', async () => {
      const capacity = 2;
      const prefetch = 1;
      const to = required(setup.boundedEndpoint, 'boundedEndpoint').call(setup, unique('bounded'), capacity);
      const sent = numbered(capacity + prefetch + 3);
      const probe = consume(to, { prefetch }, 'hold');
      const published = track(transport.publish(to, sent));

      await probe.received(prefetch);
      await sleep(QUIET_MS);
      expect(published.state).toBe('pending');
      expect(probe.count).toBe(prefetch);

      await eventually(() => {
        for (const delivery of probe.unsettled()) delivery.ack();
        return published.state !== 'pending';
      }, () => `expected publish to resolve while the consumer acks; ${probe.count} delivered`);
      expect(published).toEqual({ state: 'resolved' });
      await eventually(() => {
        for (const delivery of probe.unsettled()) delivery.ack();
        return probe.count >= sent.length;
      }, () => `expected ${sent.length} deliveries, got ${probe.count}`);
      await sleep(QUIET_MS);
      expect(probe.ids()).toEqual(features.guaranteedOrder ? sent.map((message) => message.id) : expect.arrayContaining(sent.map((message) => message.id)));
      expect(probe.count).toBe(sent.length);
    });

    it.skipIf(features.persistentAcrossReconnect !== true)('messages published before close are consumed after connect', async () => {
      const to = endpoint('reconnect');
      const sent = numbered(5);
      await transport.publish(to, sent);
      await transport.close();
      await transport.connect();
      const probe = consume(to);
      await probe.received(5);
      expect(new Set(probe.ids())).toEqual(new Set(sent.map((message) => message.id)));
    });

    it('close is idempotent', async () => {
      const to = endpoint('close');
      const probe = consume(to);
      await transport.publish(to, numbered(1));
      await probe.received(1);
      await expect(transport.close()).resolves.toBeUndefined();
      await expect(transport.close()).resolves.toBeUndefined();
    });
  });
}
