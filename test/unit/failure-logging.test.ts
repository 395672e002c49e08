import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, discard, from, InterchangeError, type Integration, type Logger, type MemoryTransport, type RouteSource } from '../../facade/index.ts';

type Line = [level: string, message: string, fields: Readonly<Record<string, unknown>> | undefined];

function recordingLogger(): Logger & { readonly lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, fields?: Readonly<Record<string, unknown>>) => void lines.push([level, message, fields]);
  return { lines, info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
}

let app: Integration | undefined;
afterEach(async () => {
  await app?.stop({ drainTimeoutMs: 100 });
  app = undefined;
});

async function start(route: RouteSource, scheduler?: VirtualTimeScheduler): Promise<{ log: ReturnType<typeof recordingLogger>; memory: MemoryTransport }> {
  const log = recordingLogger();
  const created = createIntegration({ routes: [route], logger: log, ...(scheduler === undefined ? {} : { scheduler }) });
  app = created;
  await created.start();
  return { log, memory: created.transport<MemoryTransport>('memory') };
}

const until = async (condition: () => boolean, timeoutMs = 3_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

const warnings = (log: ReturnType<typeof recordingLogger>, message: string): Line[] => log.lines.filter(([level, text]) => level === 'WARN' && text.startsWith(message));

describe('a message the route gives up on says so', () => {
  it('dead-lettered: one WARN line with route, step, error code, reason, message id and where it went', async () => {
    const { log } = await start(
      from('memory:in', { id: 'orders' })
        .deadLetterChannel('memory:dlq')
        .process(
          () => {
            throw new InterchangeError('OUT_OF_STOCK', 'sku 42 is out of stock');
          },
          { id: 'reserve' },
        )
        .to('memory:out'),
    );
    const message = createMessage({ sku: 42 });
    await app!.transports.publish('memory:in', [message]);
    await until(() => app!.metrics().orders?.deadLettered === 1);
    expect(warnings(log, 'message dead-lettered')).toEqual([
      ['WARN', 'message dead-lettered', { route: 'orders', code: 'OUT_OF_STOCK', step: 'reserve', reason: 'sku 42 is out of stock', messageId: message.id, to: 'memory:dlq' }],
    ]);
  });

  it('discarded: one WARN line with the policy reason and the error', async () => {
    const { log } = await start(
      from('memory:in', { id: 'r' })
        .onError(() => discard('duplicate'))
        .transform(
          () => {
            throw new Error('seen before');
          },
          { id: 'dedupe' },
        )
        .to('memory:out'),
    );
    const message = createMessage('x');
    await app!.transports.publish('memory:in', [message]);
    await until(() => app!.metrics().r?.discarded === 1);
    expect(warnings(log, 'message discarded')).toEqual([['WARN', 'message discarded', { route: 'r', code: 'STEP_FAILED', step: 'dedupe', reason: 'duplicate: seen before', messageId: message.id }]]);
  });

  it('rejected to a memory source: each rejection says so, and the transport names the dead-letter queue it moved to', async () => {
    const { log, memory } = await start(
      from('memory:in', { id: 'r' })
        .process(
          () => {
            throw new Error('poison');
          },
          { id: 'handle' },
        )
        .to('memory:out'),
    );
    const message = createMessage('x');
    await app!.transports.publish('memory:in', [message]);
    await until(() => memory.depth('in.dead') === 1);
    expect(warnings(log, 'message rejected to the source')).toHaveLength(5);
    expect(warnings(log, 'message rejected to the source')[0]?.[2]).toEqual({ route: 'r', code: 'STEP_FAILED', step: 'handle', reason: 'poison', messageId: message.id });
    expect(warnings(log, 'message rejected on delivery')).toEqual([
      ['WARN', 'message rejected on delivery 5 of 5: moved to the dead-letter queue memory:in.dead', { queue: 'memory:in.dead', messageId: message.id, code: 'STEP_FAILED', reason: expect.stringContaining('poison') }],
    ]);
  });

  it('a flood writes 10 lines per route and code, then one summary with the count at the end of the minute', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { log } = await start(
      from('memory:in', { id: 'r' })
        .deadLetterChannel('memory:dlq')
        .transform(() => {
          throw new InterchangeError('BAD', 'bad');
        })
        .to('memory:out'),
      scheduler,
    );
    await app!.transports.publish('memory:in', Array.from({ length: 25 }, (_, n) => createMessage(n)));
    await until(() => app!.metrics().r?.deadLettered === 25);
    expect(warnings(log, 'message dead-lettered')).toHaveLength(10);
    scheduler.flush(); // virtual time: the minute is over
    expect(warnings(log, 'message dead-lettered:')).toEqual([['WARN', 'message dead-lettered: 15 more not logged (at most 10 per 60 s)', { route: 'r', code: 'BAD', suppressed: 15 }]]);
    await app!.transports.publish('memory:in', [createMessage('after')]);
    await until(() => app!.metrics().r?.deadLettered === 26);
    expect(warnings(log, 'message dead-lettered')).toHaveLength(12); // a new window
  });
});
