import { describe, expect, it } from 'vitest';
import { choice } from '../../patterns/choice.ts';
import { filter } from '../../patterns/filter.ts';
import { transform } from '../../patterns/transform.ts';
import type { AnyStep, StepFactory } from '../../src/core/index.ts';
import { drive, Harness, sources } from './harness.ts';

/** A branch that tags bodies so the test sees which branch a message went through. */
const tag = (harness: Harness, name: string): AnyStep => harness.build(transform<number, string>((m) => `${name}:${m.body}`) as StepFactory<unknown, unknown>);

describe('choice', () => {
  it('sends each message to the first branch whose predicate holds; branch outputs continue after', () => {
    const harness = new Harness();
    const step = harness.build(
      choice<number>(
        [
          { when: (m) => m.body > 100, step: tag(harness, 'huge') },
          { when: (m) => m.body > 10, step: tag(harness, 'big') },
          { when: (m) => m.body > 0, step: tag(harness, 'small') },
        ],
        tag(harness, 'other'),
      ),
    );
    const { output, send } = drive(step);
    send(...sources([500, 50, 5, -5]));
    expect(output.bodies).toEqual(['huge:500', 'big:50', 'small:5', 'other:-5']);
  });

  it('evaluates no predicate after the first that matched', () => {
    const harness = new Harness();
    const asked: string[] = [];
    const when = (name: string, result: boolean) => () => {
      asked.push(name);
      return result;
    };
    const { output, send } = drive(
      harness.build(
        choice<number>([
          { when: when('a', false), step: tag(harness, 'a') },
          { when: when('b', true), step: tag(harness, 'b') },
          { when: when('c', true), step: tag(harness, 'c') },
        ]),
      ),
    );
    send(...sources([1]));
    expect(asked).toEqual(['a', 'b']);
    expect(output.bodies).toEqual(['b:1']);
  });

  it('passes unmatched messages through unchanged when there is no otherwise', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(choice<number>([{ when: (m) => m.body > 10, step: tag(harness, 'big') }])));
    const [small, big] = sources([3, 30]);
    send(small!, big!);
    expect(output.bodies).toEqual([3, 'big:30']);
    expect(output.messages[0]).toBe(small!.message);
    expect(small!.settlements).toBe(0);
  });

  it('keeps each delivery settlement: acking the branch output acks the source once, a branch filter acks it', () => {
    const harness = new Harness();
    const drop = harness.build(filter(() => false));
    const { output, send } = drive(harness.build(choice<number>([{ when: (m) => m.body < 0, step: drop }], tag(harness, 'kept'))));
    const [negative, positive] = sources([-1, 1]);
    send(negative!, positive!);
    expect(negative!.acks).toBe(1);
    expect(harness.filtered).toHaveLength(1);
    expect(positive!.settlements).toBe(0);
    output.ackAll();
    expect(positive!.acks).toBe(1);
  });

  it('fails only the delivery whose predicate throws; the others still route', () => {
    const harness = new Harness();
    const boom = new Error('predicate blew up');
    const { input, output, send } = drive(
      harness.build(
        choice<number>(
          [
            {
              when: (m) => {
                if (m.body === 13) throw boom;
                return m.body > 10;
              },
              step: tag(harness, 'big'),
            },
          ],
          tag(harness, 'small'),
        ),
      ),
    );
    const inputs = sources([1, 13, 20]);
    send(...inputs);
    expect(output.bodies).toEqual(['small:1', 'big:20']);
    expect(harness.failures).toHaveLength(1);
    expect(harness.failures[0]!.error).toBe(boom);
    expect(harness.failures[0]!.delivery.message.id).toBe(inputs[1]!.message.id);
    expect(inputs[1]!.nacks).toBe(1);
    expect(output.error).toBeUndefined();
    input.complete();
    expect(output.completed).toBe(true);
  });
});
