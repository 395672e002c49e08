import { describe, expect, it } from 'vitest';
import { InterchangeError, redeliveryDecision } from '../../src/core/index.ts';

// The one "nacked maxDeliveries times → dead letter" rule (memory channels, MQTT subscriptions).
const transient = new Error('downstream busy');
const permanent = new InterchangeError('INVALID', 'not a reading', { permanent: true });
const backoff = { initialMs: 1_000, maxMs: 30_000, random: () => 0.5 };

describe('redeliveryDecision', () => {
  it('bounded: redelivers at once below maxDeliveries, dead-letters the delivery that reaches it', () => {
    expect(redeliveryDecision({ attempt: 1, maxDeliveries: 3, reason: transient })).toEqual({ action: 'redeliver', delayMs: 0 });
    expect(redeliveryDecision({ attempt: 2, maxDeliveries: 3, reason: transient })).toEqual({ action: 'redeliver', delayMs: 0 });
    expect(redeliveryDecision({ attempt: 3, maxDeliveries: 3, reason: transient })).toEqual({ action: 'deadLetter' });
    expect(redeliveryDecision({ attempt: 9, maxDeliveries: 3, reason: transient })).toEqual({ action: 'deadLetter' });
    expect(redeliveryDecision({ attempt: 1, maxDeliveries: 1, reason: transient })).toEqual({ action: 'deadLetter' });
  });

  it('a permanent reason is counted like any other, unless permanentAtOnce', () => {
    expect(redeliveryDecision({ attempt: 1, maxDeliveries: 3, reason: permanent })).toEqual({ action: 'redeliver', delayMs: 0 });
    expect(redeliveryDecision({ attempt: 1, maxDeliveries: 3, reason: permanent, permanentAtOnce: true })).toEqual({ action: 'deadLetter' });
    expect(redeliveryDecision({ attempt: 1, maxDeliveries: 3, reason: transient, permanentAtOnce: true })).toEqual({ action: 'redeliver', delayMs: 0 });
  });

  it('with backoff, a transient failure is never given up: later and later, up to the ceiling', () => {
    expect(redeliveryDecision({ attempt: 2, maxDeliveries: 3, reason: transient, backoff })).toEqual({ action: 'redeliver', delayMs: 0 });
    const delays = [3, 4, 5, 9, 50].map((attempt) => redeliveryDecision({ attempt, maxDeliveries: 3, reason: transient, backoff }));
    expect(delays).toEqual([1_000, 2_000, 4_000, 30_000, 30_000].map((delayMs) => ({ action: 'redeliver', delayMs })));
    expect(redeliveryDecision({ attempt: 4, maxDeliveries: 3, reason: permanent, backoff, permanentAtOnce: true })).toEqual({ action: 'deadLetter' });
  });
});
