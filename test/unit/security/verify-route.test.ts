import { describe, expect, it } from 'vitest';
import { createMessage, DeadLetterHeaders, type Message } from '../../../src/core/index.ts';
import { from } from '../../../facade/route-builder.ts';
import { startTestIntegration } from '../../../facade/testing/index.ts';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../../../src/stores/idempotency-store.ts';
import { generateSignatureKey, Keyring, replayKey, signMessage, verifyMessage, type SignatureAlgorithm, type SignatureKey, type VerifyStepOptions } from '../../../facade/security/index.ts';

const ring = (key: SignatureKey, id = 'k1'): Keyring<SignatureKey> => new Keyring([{ id, key }]);

/** A route verifying `memory:in`, a counting process step, `memory:out`, and a dead-letter channel. */
async function verifying(options: VerifyStepOptions<unknown>, errorHandling: 'dead-letter' | 'reject' = 'dead-letter') {
  const processed: Message[] = [];
  let failNext = 0;
  const route = from('memory:in', { id: 'verifying' })
    .verify(options)
    .process((message) => {
      if (failNext > 0) {
        failNext -= 1;
        throw new Error('downstream failed');
      }
      processed.push(message);
    })
    .to('memory:out');
  const { kit, stop } = await startTestIntegration({ routes: [errorHandling === 'dead-letter' ? route.deadLetterChannel('memory:dlq') : route] });
  const dlq = kit.mock('memory:dlq');
  const out = kit.mock('memory:out');
  return { kit, dlq, out, processed, stop, failOnce: () => (failNext += 1) };
}

describe('.sign() → .verify() through routes', () => {
  it.each<SignatureAlgorithm>(['HS256', 'EdDSA', 'ES256'])('%s: what one route signs, another verifies; the body and signed headers arrive intact', async (alg) => {
    const key = generateSignatureKey(alg);
    const { kit, stop } = await startTestIntegration({
      routes: [
        from<{ n: number }>('memory:raw', { id: 'signer' }).sign({ keys: ring(key), headers: ['deviceId'] }).to('memory:signed'),
        from('memory:signed', { id: 'verifier' }).verify<{ n: number }>({ keys: ring(key.publicOnly()), headers: ['deviceId'] }).to('memory:out').deadLetterChannel('memory:dlq'),
      ],
    });
    try {
      const out = kit.mock<{ n: number }>('memory:out');
      const dlq = kit.mock('memory:dlq');
      await kit.sendMessages('memory:raw', Array.from({ length: 50 }, (_, n) => createMessage({ n }, { headers: { deviceId: `d${n % 3}` } })));
      await out.expect(50);
      expect(out.bodies().map((body) => body.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, n) => n));
      expect(out.received.every((message) => message.headers['x-interchange-signer'] === 'k1')).toBe(true);
      expect(dlq.received).toHaveLength(0);
    } finally {
      await stop();
    }
  });
});

describe('.verify() replay memory and settlement', () => {
  const key = generateSignatureKey('HS256');
  const keys = ring(key);

  it('a verified message that failed downstream and is redelivered is verified again and processed, not taken for a replay', async () => {
    const store = new MemoryIdempotencyStore();
    const route = await verifying({ keys, replay: { store } }, 'reject');
    try {
      const signed = await signMessage(createMessage({ n: 1 }), { keys });
      route.failOnce();
      await route.kit.sendMessages('memory:in', [signed]);
      await route.out.expect(1);
      expect(route.processed).toHaveLength(1);
      const verified = await verifyMessage(signed, { keys });
      await expect.poll(() => store.claim(replayKey(verified.signature))).toBe('duplicate'); // confirmed once acked
    } finally {
      await route.stop();
    }
  });

  it('a copy of a processed message is a replay: dead-lettered with reason replayed, not processed', async () => {
    const store = new MemoryIdempotencyStore();
    const route = await verifying({ keys, replay: { store } });
    try {
      const signed = await signMessage(createMessage({ n: 1 }), { keys });
      await route.kit.sendMessages('memory:in', [signed]);
      await route.out.expect(1);
      await expect.poll(async () => store.claim(replayKey((await verifyMessage(signed, { keys })).signature))).toBe('duplicate'); // settled: confirmed
      await route.kit.sendMessages('memory:in', [{ ...signed, id: 'another-transport-id' }]);
      const [dead] = await route.dlq.expect(1);
      expect(dead?.headers['x-interchange-signature-rejected']).toBe('replayed');
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('SIGNATURE_REPLAYED');
      expect(route.processed).toHaveLength(1);
    } finally {
      await route.stop();
    }
  });

  it('a copy whose twin holds the claim fails with SIGNATURE_REPLAY_IN_PROGRESS (not permanent), and is not processed', async () => {
    const store = new MemoryIdempotencyStore();
    const route = await verifying({ keys, replay: { store } });
    try {
      const signed = await signMessage(createMessage({ n: 1 }), { keys });
      expect(await store.claim(replayKey((await verifyMessage(signed, { keys })).signature))).toBe('claimed'); // held elsewhere
      await route.kit.sendMessages('memory:in', [signed]);
      const [dead] = await route.dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('SIGNATURE_REPLAY_IN_PROGRESS');
      expect(route.processed).toHaveLength(0);
    } finally {
      await route.stop();
    }
  });

  it('a failing replay store fails the message transiently: no signature reason, not processed', async () => {
    const broken: IdempotencyStore = { claim: () => Promise.reject(new Error('store down')), confirm: () => Promise.resolve(), release: () => Promise.resolve() };
    const route = await verifying({ keys, replay: { store: broken } });
    try {
      await route.kit.sendMessages('memory:in', [await signMessage(createMessage({ n: 1 }), { keys })]);
      const [dead] = await route.dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.error]).toContain('store down');
      expect(dead?.headers['x-interchange-signature-rejected']).toBeUndefined();
      expect(route.processed).toHaveLength(0);
    } finally {
      await route.stop();
    }
  });

  it('replay: false lets a copy through again (replay protection is what stops it)', async () => {
    const route = await verifying({ keys, replay: false });
    try {
      const signed = await signMessage(createMessage({ n: 1 }), { keys });
      await route.kit.sendMessages('memory:in', [signed]);
      await route.out.expect(1);
      await route.kit.sendMessages('memory:in', [signed]);
      await route.out.expect(2);
      expect(route.processed).toHaveLength(2);
    } finally {
      await route.stop();
    }
  });

  it('per-device keys by lookup, with bindTo tying the key to the device header', async () => {
    const devices = new Map([
      ['d1', generateSignatureKey('HS256')],
      ['d2', generateSignatureKey('HS256')],
    ]);
    const route = await verifying({ keys: (kid) => devices.get(kid), headers: ['deviceId'], bindTo: (message, kid) => message.headers.deviceId === kid });
    try {
      const sign = (device: string, claimed: string): Promise<Message> =>
        signMessage(createMessage({ t: 20 }, { headers: { deviceId: claimed } }), { keys: ring(devices.get(device) as SignatureKey, device), headers: ['deviceId'] });
      await route.kit.sendMessages('memory:in', [await sign('d1', 'd1'), await sign('d1', 'd2'), await sign('d2', 'd2')]);
      const [dead] = await route.dlq.expect(1);
      await route.out.expect(2);
      expect(dead?.headers['x-interchange-signature-rejected']).toBe('signer-mismatch');
      expect(route.processed.map((message) => message.headers.deviceId).sort()).toEqual(['d1', 'd2']);
    } finally {
      await route.stop();
    }
  });

  it('a message the signer cannot sign (no canonical body) is dead-lettered, never sent unsigned', async () => {
    const { kit, stop } = await startTestIntegration({ routes: [from('memory:raw', { id: 'signer' }).sign({ keys }).to('memory:signed').deadLetterChannel('memory:dlq')] });
    try {
      const dlq = kit.mock('memory:dlq');
      const signed = kit.mock('memory:signed');
      await kit.sendMessages('memory:raw', [createMessage({ n: Number.NaN }), createMessage({ n: 1 })]);
      const [dead] = await dlq.expect(1);
      await signed.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('SIGNING_FAILED');
      expect(signed.received[0]?.body).toEqual({ n: 1 });
    } finally {
      await stop();
    }
  });
});
