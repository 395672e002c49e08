import { describe, expect, it } from 'vitest';
import { transform } from '../../patterns/transform.ts';
import { drive, Harness, source } from './harness.ts';

describe('transform', () => {
  it('replaces the body, keeps id and headers, drops the schema header', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(transform<{ c: number }, { f: number }>((m) => ({ f: (m.body.c * 9) / 5 + 32 }))));
    const input = source({ c: 100 }, { id: 'reading-1', headers: { schema: 'reading@1', correlationId: 'conv-1', deviceId: 'd7' } });
    send(input);
    expect(output.messages).toHaveLength(1);
    const [out] = output.messages;
    expect(out!.id).toBe('reading-1');
    expect(out!.body).toEqual({ f: 212 });
    expect(out!.headers).toEqual({ timestamp: input.message.headers.timestamp, correlationId: 'conv-1', deviceId: 'd7' });
    expect(out!.headers).not.toHaveProperty('schema');
  });

  it('passes the same settlement on: acking the output acks the source once', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(transform<number, string>((m) => `#${m.body}`)));
    const input = source(7);
    send(input);
    expect(input.settlements).toBe(0);
    output.ackAll();
    output.ackAll();
    expect(input.acks).toBe(1);
    expect(input.nacks).toBe(0);
  });

  it('fails only the message whose translator throws; the route keeps running', () => {
    const harness = new Harness();
    const boom = new TypeError('cannot translate');
    const { input, output, send } = drive(
      harness.build(
        transform<number, number>((m) => {
          if (m.body === 0) throw boom;
          return 10 / m.body;
        }),
      ),
    );
    const ok1 = source(2);
    const bad = source(0);
    const ok2 = source(5);
    send(ok1, bad, ok2);
    expect(output.bodies).toEqual([5, 2]);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error, f.attempt])).toEqual([[bad.message.id, boom, 1]]);
    expect(bad.nacks).toBe(1);
    expect(bad.reasons).toEqual([boom]);
    expect(output.error).toBeUndefined();
    input.complete();
    expect(output.completed).toBe(true);
  });
});
