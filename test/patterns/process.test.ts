import { describe, expect, it } from 'vitest';
import { process } from '../../patterns/process.ts';
import { deferred, drive, Harness, settle, sources } from './harness.ts';

describe('process', () => {
  it('passes each message on only after its side effect resolved, unchanged', async () => {
    const harness = new Harness();
    const done = deferred();
    const seen: number[] = [];
    const { output, send } = drive(
      harness.build(
        process<number>(async (m) => {
          seen.push(m.body);
          await done.promise;
        }),
      ),
    );
    const [input] = sources([1]);
    send(input!);
    await settle();
    expect(seen).toEqual([1]);
    expect(output.deliveries).toEqual([]);
    done.resolve();
    await settle();
    expect(output.messages).toEqual([input!.message]);
  });

  it('runs one at a time, in order, by default', async () => {
    const harness = new Harness();
    let running = 0;
    let maxRunning = 0;
    const { output, send } = drive(
      harness.build(
        process<number>(async () => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await settle(1);
          running -= 1;
        }),
      ),
    );
    send(...sources([1, 2, 3, 4]));
    await settle(12);
    expect(output.bodies).toEqual([1, 2, 3, 4]);
    expect(maxRunning).toBe(1);
  });

  it('gives the handler the services bound in the context', async () => {
    const Audit = Symbol('Audit');
    const written: number[] = [];
    const harness = new Harness({ services: new Map([[Audit, { write: (n: number) => written.push(n) }]]) });
    const { output, send } = drive(
      harness.build(
        process<number>((m, { service }) => {
          service<{ write(n: number): void }>(Audit).write(m.body);
        }),
      ),
    );
    send(...sources([5, 6]));
    await settle();
    expect(written).toEqual([5, 6]);
    expect(output.bodies).toEqual([5, 6]);
  });

  it('fails only the message whose handler rejects', async () => {
    const harness = new Harness();
    const boom = new Error('db down');
    const { output, send } = drive(
      harness.build(
        process<number>(async (m) => {
          if (m.body === 2) throw boom;
        }),
      ),
    );
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    await settle(6);
    expect(output.bodies).toEqual([1, 3]);
    expect(harness.failures.map((f) => f.error)).toEqual([boom]);
    expect(inputs[1]!.nacks).toBe(1);
  });
});
