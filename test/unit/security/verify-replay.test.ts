// `.verify()`'s replay memory against the reviewer's findings: a slow original, a tampered copy dead-lettered
// by a later step, a memory filled by one signer, and the window's last millisecond.
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createMessage, DeadLetterHeaders, type Message } from '../../../src/core/index.ts';
import { from } from '../../../facade/route-builder.ts';
import { startTestIntegration } from '../../../facade/testing/index.ts';
import { createVerifier, generateSignatureKey, Keyring, replayKey, signMessage, type VerifyStepOptions } from '../../../facade/security/index.ts';
import { ReplayMemory } from '../../../patterns/verify.ts';
import { ReplayMemoryFullError } from '../../../src/security/signing-errors.ts';
import { DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS, replayWindowMs } from '../../../src/security/signing.ts';

const keys = new Keyring([{ id: 'k1', key: generateSignatureKey('HS256') }]);

/** A scheduler whose clock the test moves (timers stay real). */
function movableClock(start = Date.now()): { scheduler: SchedulerLike; advance: (ms: number) => void; now: () => number } {
  let now = start;
  return { scheduler: { now: () => now, schedule: asyncScheduler.schedule.bind(asyncScheduler) }, advance: (ms) => (now += ms), now: () => now };
}

/** verify → process (blocking / failing on demand) → memory:out, with a dead-letter channel. */
async function route(options: VerifyStepOptions<unknown>, scheduler: SchedulerLike, processStep: (message: Message) => Promise<void> | void) {
  const { kit, stop } = await startTestIntegration({
    scheduler,
    routes: [from('memory:in', { id: 'verify-replay' }).verify(options).process(processStep).to('memory:out').deadLetterChannel('memory:dlq')],
  });
  return { kit, stop, out: kit.mock('memory:out'), dlq: kit.mock('memory:dlq') };
}

describe('.verify() replay memory: findings', () => {
  it('a captured copy arriving 31 s into its original’s slow processing is not processed (the default memory’s claim lasts the whole window)', async () => {
    const clock = movableClock();
    const processed: Message[] = [];
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const r = await route({ keys }, clock.scheduler, async (message) => {
      processed.push(message);
      if (processed.length === 1) await blocked;
    });
    try {
      const signed = await signMessage(createMessage({ amount: 100 }), { keys, now: clock.now });
      await r.kit.sendMessages('memory:in', [signed]);
      await expect.poll(() => processed.length).toBe(1);
      clock.advance(31_000);
      await r.kit.sendMessages('memory:in', [signed]);
      const [dead] = await r.dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('SIGNATURE_REPLAY_IN_PROGRESS');
      release();
      await r.out.expect(1);
      expect(processed).toHaveLength(1);
    } finally {
      release();
      await r.stop();
    }
  });

  it('a copy with an altered unsigned header, dead-lettered by a later step, does not burn the genuine message: it is processed after', async () => {
    const clock = movableClock();
    const store = new ReplayMemory({ windowMs: replayWindowMs(DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS), maxEntries: 100, now: clock.now });
    const r = await route({ keys, replay: { store } }, clock.scheduler, (message) => {
      if (message.headers.contentType === 'text/x-bogus') throw Object.assign(new Error('unsupported content type'), { permanent: true });
    });
    try {
      const genuine = await signMessage(createMessage({ amount: 100 }, { headers: { contentType: 'application/json' } }), { keys, now: clock.now });
      await r.kit.sendMessages('memory:in', [{ ...genuine, headers: { ...genuine.headers, contentType: 'text/x-bogus' } }]);
      const [dead] = await r.dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('STEP_FAILED');
      await expect.poll(() => store.size).toBe(0); // the copy's claim released once its dead letter was confirmed
      await r.kit.sendMessages('memory:in', [genuine]);
      await r.out.expect(1);
      expect(r.dlq.received).toHaveLength(1);
      // and once processed (its claim confirmed), a copy of it is a replay
      await expect.poll(() => store.claim(replayKey({ keyId: 'k1', signatureId: genuine.id, alg: 'HS256', signedAt: 0, signedHeaders: [] }))).toBe('duplicate');
      await r.kit.sendMessages('memory:in', [genuine]);
      const [, replayed] = await r.dlq.expect(2);
      expect(replayed?.headers['x-interchange-signature-rejected']).toBe('replayed');
    } finally {
      await r.stop();
    }
  });

  it('a full replay memory refuses new signatures transiently (SIGNATURE_REPLAY_MEMORY_FULL) and never forgets an unexpired one', async () => {
    const clock = movableClock();
    const r = await route({ keys, replay: { maxEntries: 2 } }, clock.scheduler, () => undefined);
    try {
      const [a, b, c] = await Promise.all([1, 2, 3].map((n) => signMessage(createMessage({ n }), { keys, now: clock.now })));
      await r.kit.sendMessages('memory:in', [a as Message, b as Message]);
      await r.out.expect(2);
      await r.kit.sendMessages('memory:in', [c as Message]);
      const [full] = await r.dlq.expect(1);
      expect(full?.headers[DeadLetterHeaders.code]).toBe('SIGNATURE_REPLAY_MEMORY_FULL');
      await r.kit.sendMessages('memory:in', [a as Message]); // not evicted by c: still a replay
      const [, replayed] = await r.dlq.expect(2);
      expect(replayed?.headers['x-interchange-signature-rejected']).toBe('replayed');
      clock.advance(replayWindowMs(DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS)); // a and b expire: room again
      const d = await signMessage(createMessage({ n: 4 }), { keys, now: clock.now });
      await r.kit.sendMessages('memory:in', [d]);
      await r.out.expect(3);
    } finally {
      await r.stop();
    }
  });

  it('the window’s last millisecond: a signature future-dated by the tolerance, confirmed at once, is still remembered when it is last accepted', async () => {
    let now = 1_000_000;
    const verifier = createVerifier({ keys, now: () => now });
    const memory = new ReplayMemory({ windowMs: replayWindowMs(DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS), maxEntries: 10, now: () => now });
    const signed = await signMessage(createMessage({ n: 1 }), { keys, now: () => now + DEFAULT_TOLERANCE_MS });
    const first = await verifier(signed);
    expect(await memory.claim(replayKey(first.signature))).toBe('claimed');
    await memory.confirm(replayKey(first.signature));
    now += DEFAULT_TOLERANCE_MS + DEFAULT_MAX_AGE_MS + DEFAULT_TOLERANCE_MS; // age = maxAge + tolerance: the last instant accepted
    const again = await verifier(signed);
    expect(await memory.claim(replayKey(again.signature))).toBe('duplicate');
    now += 1;
    expect(() => verifier(signed)).toThrow(/expired|older/i);
  });
});

describe('ReplayMemory: the synchronous path the verify step takes', () => {
  it('claimNow / confirmNow / releaseNow answer at once, as claim / confirm / release do', async () => {
    let now = 1_000;
    const memory = new ReplayMemory({ windowMs: 100, maxEntries: 2, now: () => now });
    expect(memory.claimNow('a')).toBe('claimed');
    expect(memory.claimNow('a')).toBe('in-progress');
    await expect(memory.claim('a')).resolves.toBe('in-progress');
    memory.confirmNow('a');
    expect(memory.claimNow('a')).toBe('duplicate');
    expect(memory.claimNow('b')).toBe('claimed');
    memory.releaseNow('b');
    expect(memory.claimNow('b')).toBe('claimed');
    memory.releaseNow('a'); // a processed id is never released
    expect(() => memory.claimNow('c')).toThrow(ReplayMemoryFullError);
    await expect(memory.claim('c')).rejects.toBeInstanceOf(ReplayMemoryFullError);
    now += 100; // both expire
    expect(memory.claimNow('c')).toBe('claimed');
    expect(memory.claimNow('a')).toBe('claimed');
  });

});
