import { afterEach, describe, expect, it } from 'vitest';
import { wireTap } from '../../patterns/wire-tap.ts';
import { createIntegration, from, silentLogger, type Integration, type Logger } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { deferred, drive, Harness, settle, sources } from './harness.ts';

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { readonly warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] } {
  const warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  return { ...silentLogger, warn: (message, fields) => warnings.push({ message, fields }), warnings };
}

describe('wireTap', () => {
  it('sends a copy of each message to the tap and passes the message on without waiting for it', async () => {
    const tapConfirm = deferred();
    const harness = new Harness({ publish: () => tapConfirm.promise });
    const { output, send } = drive(harness.build(wireTap<number>('memory:audit')));
    const inputs = sources([1, 2]);
    send(...inputs);
    // Passed on synchronously, while the tap send is still unconfirmed.
    expect(output.messages).toEqual(inputs.map((i) => i.message));
    expect(harness.published.map((call) => [call.uri, call.messages])).toEqual([
      ['memory:audit', [inputs[0]!.message]],
      ['memory:audit', [inputs[1]!.message]],
    ]);
    output.ackAll();
    expect(inputs.map((i) => i.acks)).toEqual([1, 1]);
    tapConfirm.resolve();
  });

  it('does not fail the message when the tap send rejects; it logs a warning', async () => {
    const log = recordingLogger();
    const harness = new Harness({ log, publish: () => Promise.reject(new Error('audit down')) });
    const { output, send } = drive(harness.build(wireTap<number>('memory:audit')));
    const inputs = sources([1]);
    send(...inputs);
    await settle();
    expect(output.bodies).toEqual([1]);
    expect(harness.failures).toEqual([]);
    expect(inputs[0]!.nacks).toBe(0);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]!.fields).toMatchObject({ uri: 'memory:audit', messageId: inputs[0]!.message.id });
  });

  it('does not fail the message when the tap send throws synchronously', async () => {
    const log = recordingLogger();
    const harness = new Harness({
      log,
      publish: () => {
        throw new Error('no transport for scheme');
      },
    });
    const { output, send } = drive(harness.build(wireTap<number>('memory:audit')));
    const inputs = sources([1, 2]);
    send(...inputs);
    await settle();
    expect(output.bodies).toEqual([1, 2]);
    expect(harness.failures).toEqual([]);
    expect(inputs.map((i) => i.nacks)).toEqual([0, 0]);
    expect(log.warnings).toHaveLength(2);
  });
});

describe('wireTap through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
  });

  it('delivers both the tapped copy and the message', async () => {
    app = createIntegration({ logger: silentLogger, routes: [from<string>('memory:in').wireTap('memory:audit').to('memory:out')] });
    await app.start();
    kit = new TestKit(app);
    const audit = kit.mock<string>('memory:audit');
    const out = kit.mock<string>('memory:out');
    await kit.sendAll('memory:in', ['a', 'b']);
    const [outMessages, auditMessages] = await Promise.all([out.expect(2), audit.expect(2)]);
    expect(outMessages.map((m) => m.body)).toEqual(['a', 'b']);
    expect(auditMessages.map((m) => m.id)).toEqual(outMessages.map((m) => m.id));
    expect(app.metrics()['memory:in']).toMatchObject({ completed: 2, failed: 0 });
  });
});
