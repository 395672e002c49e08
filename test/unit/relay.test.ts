import { describe, expect, it } from 'vitest';
import { Relay } from '../../src/core/relay.ts';

describe('Relay: one subscriber at a time, values passed straight on', () => {
  it('passes values to its subscriber, drops them before one and after it unsubscribed', () => {
    const relay = new Relay<number>();
    const seen: number[] = [];
    relay.next(0);
    const subscription = relay.subscribe((value) => seen.push(value));
    relay.next(1);
    relay.next(2);
    subscription.unsubscribe();
    relay.next(3);
    expect(seen).toEqual([1, 2]);
  });

  it('refuses a second subscriber while one is subscribed, and takes a new one after', () => {
    const relay = new Relay<number>();
    const first: number[] = [];
    const subscription = relay.subscribe((value) => first.push(value));
    let refused: unknown;
    relay.subscribe({ error: (error: unknown) => (refused = error) });
    expect(String(refused)).toMatch(/one at a time/);
    relay.next(1);
    subscription.unsubscribe();
    const second: number[] = [];
    relay.subscribe((value) => second.push(value));
    relay.next(2);
    expect([first, second]).toEqual([[1], [2]]);
  });

  it('completes (or errors) once: its subscriber, then any later one at once; nothing after', () => {
    const completed = new Relay<number>();
    const events: string[] = [];
    completed.subscribe({ next: (value) => events.push(`next ${value}`), complete: () => events.push('complete') });
    completed.complete();
    completed.next(1);
    completed.complete();
    completed.subscribe({ complete: () => events.push('late complete') });
    expect(completed.stopped).toBe(true);
    const failed = new Relay<number>();
    const boom = new Error('boom');
    failed.subscribe({ error: (error: unknown) => events.push(`error ${(error as Error).message}`) });
    failed.error(boom);
    failed.error(new Error('again'));
    failed.subscribe({ error: (error: unknown) => events.push(`late error ${(error as Error).message}`) });
    expect(events).toEqual(['complete', 'late complete', 'error boom', 'late error boom']);
  });
});
