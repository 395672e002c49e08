import { from as fromArray, Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { to } from '../../patterns/to.ts';
import { EndpointError, PartialPublishError, UnencodableMessageError, type Delivery } from '../../src/core/index.ts';
import { collect, deferred, drive, Harness, settle, source, sources } from './harness.ts';

describe('to', () => {
  it('publishes deliveries arriving in the same tick as one batch, and passes them on once confirmed', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: () => confirm.promise });
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    expect(harness.published).toEqual([]);
    await settle();
    expect(harness.published).toHaveLength(1);
    expect(harness.published[0]!.uri).toBe('memory:out');
    expect(harness.published[0]!.messages).toEqual(inputs.map((i) => i.message));
    expect(output.deliveries).toEqual([]);
    confirm.resolve();
    await settle();
    expect(output.bodies).toEqual([1, 2, 3]);
    expect(inputs.map((i) => i.settlements)).toEqual([0, 0, 0]);
  });

  it('makes one publish call per tick', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    send(...sources([1, 2]));
    await settle();
    send(...sources([3]));
    await settle();
    expect(harness.published.map((call) => call.messages.map((m) => m.body))).toEqual([[1, 2], [3]]);
    expect(output.bodies).toEqual([1, 2, 3]);
  });

  it('resolves {name} placeholders from headers first, then body fields, and batches per resolved URI', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(to<{ region: string; order: { kind: string } }>('memory:orders-{region}-{order.kind}')));
    send(
      source({ region: 'eu', order: { kind: 'retail' } }),
      source({ region: 'us', order: { kind: 'retail' } }),
      source({ region: 'eu', order: { kind: 'retail' } }),
      source({ region: 'eu', order: { kind: 'bulk' } }, { headers: { region: 'apac' } }),
    );
    await settle();
    expect(harness.published.map((call) => [call.uri, call.messages.length])).toEqual([
      ['memory:orders-eu-retail', 2],
      ['memory:orders-us-retail', 1],
      ['memory:orders-apac-bulk', 1],
    ]);
    expect(output.deliveries).toHaveLength(4);
  });

  it('fails a message whose URI placeholder has no value, and publishes nothing for it', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(to<{ deviceId?: string }>('memory:readings.{deviceId}')));
    send(source({ deviceId: 'd1' }), source({}));
    await settle();
    expect(harness.published.map((call) => call.uri)).toEqual(['memory:readings.d1']);
    expect(output.bodies).toEqual([{ deviceId: 'd1' }]);
    expect(harness.failures).toHaveLength(1);
    expect(harness.failures[0]!.error).toBeInstanceOf(EndpointError);
    expect(String(harness.failures[0]!.error)).toMatch(/\{deviceId\}/);
  });

  it('takes the URI from a function of the message', async () => {
    const harness = new Harness();
    const { send } = drive(harness.build(to<number>((m) => (m.body % 2 === 0 ? 'memory:even' : 'memory:odd'))));
    send(...sources([1, 2, 3, 4]));
    await settle();
    expect(harness.messagesTo('memory:even').map((m) => m.body)).toEqual([2, 4]);
    expect(harness.messagesTo('memory:odd').map((m) => m.body)).toEqual([1, 3]);
    expect(harness.published).toHaveLength(2);
  });

  it('fails each delivery of a rejected batch on its own; the next batch still goes out', async () => {
    const boom = new Error('broker said no');
    let calls = 0;
    const harness = new Harness({ publish: () => (calls++ === 0 ? Promise.reject(boom) : Promise.resolve()) });
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    const failed = sources([1, 2, 3]);
    send(...failed);
    await settle();
    expect(harness.failures.map((f) => [f.delivery.message.body, f.error, f.attempt])).toEqual([
      [1, boom, 1],
      [2, boom, 1],
      [3, boom, 1],
    ]);
    expect(failed.map((i) => i.nacks)).toEqual([1, 1, 1]);
    expect(output.deliveries).toEqual([]);
    send(source(4));
    await settle();
    expect(output.bodies).toEqual([4]);
    expect(output.error).toBeUndefined();
  });

  it('on a PartialPublishError fails only the messages it names and passes the confirmed ones on', async () => {
    const poison = new UnencodableMessageError('TEST_UNENCODABLE', 'header too long');
    const harness = new Harness({ publish: (_uri, messages) => Promise.reject(new PartialPublishError(new Map([[1, poison]]), messages.length)) });
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    await settle();
    expect(output.bodies).toEqual([1, 3]);
    expect(harness.failures.map((f) => [f.delivery.message.body, f.error])).toEqual([[2, poison]]);
    expect(inputs.map((i) => i.nacks)).toEqual([0, 1, 0]);
  });

  it('treats a publish that throws synchronously as a failed batch', async () => {
    const harness = new Harness({
      publish: () => {
        throw new Error('no transport');
      },
    });
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    const inputs = sources([1, 2]);
    send(...inputs);
    await settle();
    expect(harness.failures).toHaveLength(2);
    expect(inputs.map((i) => i.nacks)).toEqual([1, 1]);
    expect(output.error).toBeUndefined();
  });

  it('fails only the delivery whose URI function throws', async () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        to<number>((m) => {
          if (m.body < 0) throw new Error('no route for negatives');
          return 'memory:out';
        }),
      ),
    );
    const [good, bad] = sources([1, -1]);
    send(good!, bad!);
    await settle();
    expect(output.bodies).toEqual([1]);
    expect(bad!.nacks).toBe(1);
    expect(harness.published.map((call) => call.messages.length)).toEqual([1]);
  });

  it('completes when its source completed in the same tick and every delivery failed before publishing', async () => {
    const harness = new Harness();
    const inputs = sources([1, 2]);
    const output = collect(
      fromArray(inputs.map((i) => i.delivery as Delivery<number>)).pipe(
        harness.build(
          to<number>(() => {
            throw new Error('unroutable');
          }),
        ),
      ),
    );
    await settle();
    expect(inputs.map((i) => i.nacks)).toEqual([1, 1]);
    expect(output.completed).toBe(true);
  });

  it('completes once its source completed and every batch was confirmed', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: () => confirm.promise });
    const { input, output, send } = drive(harness.build(to<number>('memory:out')));
    send(source(1));
    input.complete();
    await settle();
    expect(output.completed).toBe(false);
    confirm.resolve();
    await settle();
    expect(output.bodies).toEqual([1]);
    expect(output.completed).toBe(true);
  });

  it('republishes a failed delivery alone after the delay the error handler asked for', async () => {
    const scheduler = new VirtualTimeScheduler();
    let calls = 0;
    const harness = new Harness({ scheduler, failed: (_d, _e, attempt) => (attempt < 2 ? 100 : undefined), publish: () => (calls++ === 0 ? Promise.reject(new Error('blip')) : Promise.resolve()) });
    const { output, send } = drive(harness.build(to<number>('memory:out')));
    const inputs = sources([1, 2]);
    send(...inputs);
    await settle();
    expect(harness.failures.map((f) => f.attempt)).toEqual([1, 1]);
    expect(harness.published).toHaveLength(1);
    scheduler.flush();
    expect(scheduler.now()).toBe(100);
    await settle();
    expect(harness.published.map((call) => call.messages.map((m) => m.body))).toEqual([[1, 2], [1], [2]]);
    expect(output.bodies).toEqual([1, 2]);
    expect(inputs.map((i) => i.settlements)).toEqual([0, 0]);
  });

  it('publishes nothing and cancels pending retries once unsubscribed: the source redelivers', async () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler, failed: () => 100, publish: () => Promise.reject(new Error('down')) });
    const input = new Subject<Delivery<number>>();
    const first = input.pipe(harness.build(to<number>('memory:out'))).subscribe();
    input.next(source(1).delivery);
    await settle();
    expect(harness.published).toHaveLength(1);
    first.unsubscribe();
    scheduler.flush();
    await settle();
    expect(harness.published).toHaveLength(1);

    const second = input.pipe(harness.build(to<number>('memory:out'))).subscribe();
    input.next(source(2).delivery);
    second.unsubscribe();
    await settle();
    expect(harness.published).toHaveLength(1);
  });
});
