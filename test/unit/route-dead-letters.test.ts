import { ContainerModule } from 'inversify';
import { Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, DeadLetterHeaders, InterchangeError, from, withHeaders, type Message, type RouteSource } from '../../facade/index.ts';
import { PartialPublishError, Settlement, Transport, UnencodableMessageError, type Delivery, type Endpoint } from '../../src/spi.ts';
import { startTestIntegration, type TestIntegration, type TestKit } from '../../facade/testing/index.ts';
import { until } from '../support/wait.ts';

const running: TestIntegration[] = [];

async function start(routes: RouteSource[], transports: Transport[]): Promise<TestKit> {
  const test = await startTestIntegration({ routes, modules: [new ContainerModule(({ bind }) => transports.forEach((t) => void bind<Transport>(Transport).toConstantValue(t)))] });
  running.push(test);
  return test.kit;
}

afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

/** A delivery as a transport emits it, optionally marked as not taken whole; records its settlement. */
class Inbound extends Settlement {
  outcome: 'ack' | 'nack' | undefined;
  constructor(
    message: Message,
    readonly intakeError?: Error,
  ) {
    super(message);
  }
  protected onAck(): void {
    this.outcome = 'ack';
  }
  protected onNack(): void {
    this.outcome = 'nack';
  }
}

/** `src:` hands out the given deliveries once. */
class Source implements Transport {
  readonly scheme = 'src';
  constructor(private readonly deliveries: readonly Inbound[]) {}
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {}
  consume(_endpoint: Endpoint): Observable<Delivery> {
    return new Observable((subscriber) => this.deliveries.forEach((delivery) => subscriber.next(delivery)));
  }
}

/** `dlq:` refuses every message with a header longer than 2,000 characters, as a broker's codec would. */
class PickyDeadLetters implements Transport {
  readonly scheme = 'dlq';
  readonly accepted: Message[] = [];
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  consume(): Observable<Delivery> {
    return new Observable();
  }
  async publish(_endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const failures = new Map<number, Error>();
    messages.forEach((message, index) => {
      const long = Object.entries(message.headers).find(([, value]) => typeof value === 'string' && value.length > 2_000);
      if (long === undefined) this.accepted.push(message);
      else failures.set(index, new UnencodableMessageError('TEST_UNENCODABLE', `header '${long[0]}' is too long`));
    });
    if (failures.size > 0) throw new PartialPublishError(failures, messages.length);
  }
}

const tooLarge = new InterchangeError('TOO_LARGE', 'payload of 140 MB over the limit of 1 MB', { permanent: true });

describe('route dead letters', () => {
  it("hands a delivery the transport could not take whole to the error handler at 'intake', running no step on it", async () => {
    const stepRuns: unknown[] = [];
    const big = new Inbound(createMessage(Buffer.from('prefix')), tooLarge);
    const fine = new Inbound(createMessage(Buffer.from('ok')));
    const kit = await start(
      [from('src:in', { id: 'r' }).deadLetterChannel('memory:dlq').process((m) => void stepRuns.push(m.body)).to('memory:out')],
      [new Source([big, fine])],
    );
    const [dead] = await kit.mock('memory:dlq').expect(1);
    await kit.mock('memory:out').expect(1);
    expect(dead?.headers).toMatchObject({ [DeadLetterHeaders.code]: 'TOO_LARGE', [DeadLetterHeaders.step]: 'intake', [DeadLetterHeaders.route]: 'r' });
    expect(stepRuns).toEqual([Buffer.from('ok')]);
    await until(() => big.outcome !== undefined && fine.outcome !== undefined, () => 'not settled');
    expect([big.outcome, fine.outcome]).toEqual(['ack', 'ack']);
  });

  it('rejects such a delivery to its source when the route has no dead-letter channel', async () => {
    const big = new Inbound(createMessage(Buffer.from('prefix')), tooLarge);
    await start([from('src:in').to('memory:out')], [new Source([big])]);
    await until(() => big.outcome !== undefined, () => 'not settled');
    expect(big.outcome).toBe('nack');
  });

  it('prepareDeadLetter dead-letters the original message of a failure after translation, with the failure headers', async () => {
    const original = new Inbound(createMessage('raw bytes as sent', { headers: { mqttTopic: 'devices/d1/telemetry' } }));
    const kit = await start(
      [
        from('src:in', { id: 'r' })
          .onError(() => ({ action: 'deadLetter' }), {
            deadLetterUri: 'memory:dlq',
            prepareDeadLetter: (failed, source) => withHeaders(source, { 'x-failed-body': String(failed.body) }),
          })
          .transform(() => 'translated')
          .process(() => {
            throw new Error('outbound contract says no');
          })
          .to('memory:out'),
      ],
      [new Source([original])],
    );
    const [dead] = await kit.mock('memory:dlq').expect(1);
    expect(dead?.body).toBe('raw bytes as sent');
    expect(dead?.headers).toMatchObject({ mqttTopic: 'devices/d1/telemetry', 'x-failed-body': 'translated', [DeadLetterHeaders.error]: 'outbound contract says no' });
  });

  it('sends a reduced dead letter when the full one cannot be encoded, instead of rejecting to the source', async () => {
    const poison = new Inbound(createMessage(Buffer.alloc(100_000, 1), { headers: { 'user-header': 'u'.repeat(5_000) } }));
    const dlq = new PickyDeadLetters();
    await start(
      [
        from('src:in', { id: 'r' })
          .deadLetterChannel('dlq:x')
          .process(() => {
            throw new InterchangeError('BAD', 'b'.repeat(5_000), { permanent: true });
          })
          .to('memory:out'),
      ],
      [new Source([poison]), dlq],
    );
    await until(() => poison.outcome !== undefined, () => 'not settled');
    expect(poison.outcome).toBe('ack');
    expect(dlq.accepted).toHaveLength(1);
    const [reduced] = dlq.accepted;
    expect(reduced?.headers).not.toHaveProperty('user-header');
    expect(reduced?.headers).toMatchObject({ [DeadLetterHeaders.code]: 'BAD', [DeadLetterHeaders.originalSize]: 100_000, [DeadLetterHeaders.truncated]: true });
    expect(String(reduced?.headers[DeadLetterHeaders.deadLetterError])).toMatch(/user-header/);
    expect((reduced?.body as Buffer).length).toBe(64 * 1024);
  });

  it('clips the error text of a dead letter to 1,000 characters', async () => {
    const kit = await start(
      [
        from('src:in')
          .deadLetterChannel('memory:dlq')
          .process(() => {
            throw new Error('x'.repeat(20_000));
          })
          .to('memory:out'),
      ],
      [new Source([new Inbound(createMessage('m'))])],
    );
    const [dead] = await kit.mock('memory:dlq').expect(1);
    expect(String(dead?.headers[DeadLetterHeaders.error]).length).toBeLessThan(1_100);
  });
});
