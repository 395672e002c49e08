import { describe, expect, it } from 'vitest';
import { setHeaders } from '../../patterns/set-headers.ts';
import { drive, Harness, source } from './harness.ts';

describe('setHeaders', () => {
  it('adds and replaces headers computed from the message, keeping id, body and other headers', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(setHeaders<{ deviceId: string }>((m) => ({ deviceId: m.body.deviceId, region: 'eu' }))));
    const input = source({ deviceId: 'd1' }, { id: 'x', headers: { region: 'us', correlationId: 'c' } });
    send(input);
    const [out] = output.messages;
    expect(out!.id).toBe('x');
    expect(out!.body).toBe(input.message.body);
    expect(out!.headers).toMatchObject({ deviceId: 'd1', region: 'eu', correlationId: 'c' });
  });

  it('removes a header computed as undefined', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(setHeaders(() => ({ secret: undefined }))));
    send(source('body', { headers: { secret: 's3cr3t', keep: 1 } }));
    expect(output.messages[0]!.headers.secret).toBeUndefined();
    expect(output.messages[0]!.headers.keep).toBe(1);
  });

  it('keeps the settlement and fails only the message whose computation throws', () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        setHeaders<number>((m) => {
          if (m.body < 0) throw new RangeError('negative');
          return { sign: 'positive' };
        }),
      ),
    );
    const good = source(1);
    const bad = source(-1);
    const later = source(2);
    send(good, bad, later);
    expect(output.bodies).toEqual([1, 2]);
    expect(bad.nacks).toBe(1);
    expect(harness.failures).toHaveLength(1);
    output.ackAll();
    expect(good.acks).toBe(1);
    expect(later.acks).toBe(1);
  });
});
