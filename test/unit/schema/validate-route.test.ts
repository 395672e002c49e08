import { ContainerModule } from 'inversify';
import { NEVER, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createIntegration,
  createMessage,
  DeadLetterHeaders,
  defineUpcaster,
  from,
  onErrorRetryAll,
  retry,
  RouteDefinitionError,
  schemaModule,
  silentLogger,
  JsonSchemaRegistry,
  Transport,
  ValidationErrorsHeader,
  validateStep,
  type Delivery,
  type Endpoint,
  type Message,
  type RouteSource,
  type SchemaRegistry,
} from './route-test-api.ts';
import { TestKit } from '../../../facade/testing/index.ts';
import { shippedRegistry, validTelemetry } from './fixtures.ts';
import '../../../schemas/types.generated.ts'; // the shipped contracts, typed in the DSL (its module augmentation)

type App = ReturnType<typeof createIntegration>;
const running: { app: App; kit: TestKit }[] = [];

/** An outbound transport that records every publish: proves what never reached a broker. */
class SpyTransport implements Transport {
  readonly scheme = 'spy';
  readonly published: Message[] = [];
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(_endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    this.published.push(...messages);
  }
  consume(): Observable<Delivery> {
    return NEVER;
  }
}

async function start(routes: RouteSource[], registry: SchemaRegistry = shippedRegistry()): Promise<{ app: App; kit: TestKit; spy: SpyTransport }> {
  const spy = new SpyTransport();
  const app = createIntegration({
    routes,
    modules: [schemaModule({ registry }), new ContainerModule(({ bind }) => void bind<Transport>(Transport).toConstantValue(spy))],
    logger: silentLogger,
  });
  await app.start();
  const kit = new TestKit(app);
  running.push({ app, kit });
  return { app, kit, spy };
}

afterEach(async () => {
  for (const { app, kit } of running.splice(0)) {
    kit.close();
    await app.stop({ drainTimeoutMs: 100 });
  }
});

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 30));

describe('contracts at the inbound edge', () => {
  it('passes valid messages on with the schema header set; dead-letters invalid ones with the ajv errors in headers', async () => {
    const { kit, app } = await start([
      from('memory:telemetry', { id: 'telemetry' })
        .deadLetterChannel('memory:dlq')
        .validate('device.telemetry@1', { id: 'check-telemetry' })
        .to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendAll('memory:telemetry', [validTelemetry, { deviceId: 'dev-2', ts: 'yesterday', temperature: 'warm', humidity: 140 }]);
    const [valid] = await out.expect(1);
    const [dead] = await dlq.expect(1);
    expect(valid?.body).toEqual(validTelemetry);
    expect(valid?.headers.schema).toBe('device.telemetry@1');
    expect(dead?.body).toEqual({ deviceId: 'dev-2', ts: 'yesterday', temperature: 'warm', humidity: 140 });
    expect(dead?.headers).toMatchObject({
      [DeadLetterHeaders.code]: 'SCHEMA_INVALID',
      [DeadLetterHeaders.route]: 'telemetry',
      [DeadLetterHeaders.step]: 'check-telemetry',
      [DeadLetterHeaders.attempts]: 1,
    });
    expect(dead?.headers[DeadLetterHeaders.error]).toBe('body does not match device.telemetry@1: /ts format: must match format "date-time"');
    expect(JSON.parse(String(dead?.headers[ValidationErrorsHeader]))).toEqual([{ pointer: '/ts', keyword: 'format', message: 'must match format "date-time"' }]);
    expect(dead?.headers.schema).toBeUndefined();
    expect(app.metrics().telemetry).toMatchObject({ received: 2, deadLettered: 1, retried: 0, inFlight: 0 });
  });

  it('reports every error when the registry collects all of them (allErrors)', async () => {
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').validate('device.telemetry@1').to('memory:out')], shippedRegistry({ allErrors: true }));
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', { ts: 'yesterday', temperature: 'warm', humidity: 140 });
    const [dead] = await dlq.expect(1);
    expect(JSON.parse(String(dead?.headers[ValidationErrorsHeader]))).toEqual([
      { pointer: '/deviceId', keyword: 'required', message: "must have required property 'deviceId'" },
      { pointer: '/ts', keyword: 'format', message: 'must match format "date-time"' },
      { pointer: '/temperature', keyword: 'type', message: 'must be number' },
      { pointer: '/humidity', keyword: 'maximum', message: 'must be <= 100' },
    ]);
    expect(dead?.headers[DeadLetterHeaders.error]).toContain('/deviceId required: must have required property');
  });

  it('never retries an invalid message, whatever the retry policy says', async () => {
    const { kit, app } = await start([
      from('memory:in', { id: 'r' }).deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 5, initialDelayMs: 1 }) }).validate('device.telemetry@1').to('memory:out'),
    ]);
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', { deviceId: 'x' });
    const [dead] = await dlq.expect(1);
    expect(dead?.headers).toMatchObject({ [DeadLetterHeaders.code]: 'SCHEMA_INVALID', [DeadLetterHeaders.attempts]: 1, [DeadLetterHeaders.reason]: 'not retried: the message itself is at fault' });
    expect(app.metrics().r).toMatchObject({ failed: 1, retried: 0, deadLettered: 1 });
  });

  it('is not retried even by an onError handler that retries everything (rejected once instead)', async () => {
    const { kit, app } = await start([from('memory:in?maxDeliveries=1', { id: 'r' }).onError(onErrorRetryAll, { maxAttempts: 4 }).validate('device.telemetry@1').to('memory:out')]);
    await kit.send('memory:in?maxDeliveries=1', { deviceId: 'x' });
    await settle();
    expect(app.metrics().r).toMatchObject({ failed: 1, retried: 0, rejected: 1 });
  });

  it('from(uri, { contract }) validates every inbound message first', async () => {
    const { kit } = await start([from('memory:in', { contract: 'device.telemetry@1' }).deadLetterChannel('memory:dlq').to('memory:out')]);
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendAll('memory:in', [validTelemetry, { ...validTelemetry, extra: true }]);
    expect((await out.expect(1))[0]?.headers.schema).toBe('device.telemetry@1');
    const [dead] = await dlq.expect(1);
    expect(dead?.headers[DeadLetterHeaders.step]).toBe('validate-1');
    expect(JSON.parse(String(dead?.headers[ValidationErrorsHeader]))).toEqual([{ pointer: '', keyword: 'additionalProperties', message: 'must NOT have additional properties' }]);
  });

  it('dead-letters a message whose schema header names an unknown subject or version, with a clear reason', async () => {
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').validate('device.telemetry@1').to('memory:out')]);
    const dlq = kit.mock('memory:dlq');
    await kit.sendMessages('memory:in', [
      createMessage(validTelemetry, { headers: { schema: 'device.telemetry@7' } }),
      createMessage(validTelemetry, { headers: { schema: 'device.location@1' } }),
      createMessage(validTelemetry, { headers: { schema: 'device.telemetry@2' } }),
    ]);
    const dead = await dlq.expect(3);
    expect(dead.map((message) => [message.headers[DeadLetterHeaders.code], message.headers[DeadLetterHeaders.error]])).toEqual([
      ['SCHEMA_UNKNOWN', "unknown contract 'device.telemetry@7' (registry has: backend.reading@1, device.telemetry@1, device.telemetry@2, order.placed@1, parcel.scanned@1)"],
      ['SCHEMA_UNKNOWN', "unknown contract 'device.location@1' (registry has: backend.reading@1, device.telemetry@1, device.telemetry@2, order.placed@1, parcel.scanned@1)"],
      ['SCHEMA_MISMATCH', 'message declares device.telemetry@2 but the step expects device.telemetry@1 (upcast it first with .upcast())'],
    ]);
  });

  it('validate() without a contract checks each message against its schema header', async () => {
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').validate().to('memory:out')]);
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendMessages('memory:in', [
      createMessage(validTelemetry, { headers: { schema: 'device.telemetry@1' } }),
      createMessage(validTelemetry, { headers: { schema: 'device.telemetry@2' } }),
      createMessage(validTelemetry),
    ]);
    await out.expect(1);
    const dead = await dlq.expect(2);
    expect(dead.map((message) => message.headers[DeadLetterHeaders.code])).toEqual(['SCHEMA_INVALID', 'SCHEMA_MISSING']);
    expect(dead[0]?.headers[DeadLetterHeaders.error]).toContain("/unit required: must have required property 'unit'");
  });

  it('parses text and byte payloads safely, and dead-letters forbidden-key, oversized, over-deep and unparseable ones each with its code', async () => {
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').validate('device.telemetry@1').to('memory:out')], shippedRegistry({ limits: { maxBytes: 512, maxDepth: 8 } }));
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendAll('memory:in', [
      JSON.stringify(validTelemetry),
      new TextEncoder().encode('{"__proto__":{"polluted":true},"deviceId":"dev-1","ts":"2026-11-23T09:00:00Z","temperature":21.5,"humidity":40}'),
      JSON.stringify({ ...validTelemetry, deviceId: 'x'.repeat(600) }),
      `${'['.repeat(20)}${']'.repeat(20)}`,
      '{"deviceId": ',
    ]);
    const valid = await out.expect(1);
    expect(valid.map((message) => message.body)).toEqual([validTelemetry]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const dead = await dlq.expect(4);
    expect(dead.map((message) => message.headers[DeadLetterHeaders.code])).toEqual(['PAYLOAD_UNPARSEABLE', 'PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_DEEP', 'PAYLOAD_UNPARSEABLE']);
    expect(dead[0]?.headers[DeadLetterHeaders.error]).toContain("key '__proto__' at / is not allowed");
  });

  it('a catastrophic-backtracking pattern does not stall the route', async () => {
    const evil = { $id: 'urn:evil:1', description: 'a pattern that backtracks exponentially in JavaScript', type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$', description: 'name' } }, required: ['name'] };
    const registry = new JsonSchemaRegistry({ contracts: [...shippedRegistry().contracts().map((ref) => ({ subject: ref.split('@')[0] as string, version: Number(ref.split('@')[1]), schema: shippedRegistry().schema(ref) })), { subject: 'evil', version: 1, schema: evil }] }, { limits: { maxBytes: 1_000_000 } });
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').step('validate', validateStep('evil@1')).to('memory:out')], registry);
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    const started = performance.now();
    // With JavaScript's engine, 30 characters of this already take seconds; RE2 answers in linear time.
    await kit.sendAll('memory:in', [{ name: `${'a'.repeat(100_000)}!` }, { name: 'aaa' }]);
    const [dead] = await dlq.expect(1);
    await out.expect(1);
    expect(dead?.headers[DeadLetterHeaders.error]).toBe('body does not match evil@1: /name pattern: must match pattern "^(a+)+$"');
    expect(performance.now() - started).toBeLessThan(2_000);
  }, 5_000);
});

describe('contracts at the outbound edge', () => {
  it('refuses an invalid outbound message before it reaches the transport, with a SchemaValidationError', async () => {
    const { kit, spy, app } = await start([
      from<{ id: string; t: number }>('memory:in', { id: 'out' })
        .deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3, initialDelayMs: 1 }) })
        .transform((m) => ({ deviceId: m.body.id, timestamp: m.body.t, temperatureC: 20, temperatureF: 68 }))
        .to('spy:readings', { contract: 'backend.reading@1', id: 'publish' }),
    ]);
    const dlq = kit.mock('memory:dlq');
    await kit.sendAll('memory:in', [{ id: 'ok', t: 1 }, { id: 'bad', t: -5 }]);
    const [dead] = await dlq.expect(1);
    await settle();
    expect(spy.published.map((message) => message.body)).toEqual([{ deviceId: 'ok', timestamp: 1, temperatureC: 20, temperatureF: 68 }]);
    expect(spy.published[0]?.headers.schema).toBe('backend.reading@1');
    expect(dead?.headers).toMatchObject({
      [DeadLetterHeaders.code]: 'SCHEMA_INVALID',
      [DeadLetterHeaders.step]: 'publish',
      [DeadLetterHeaders.error]: 'outbound message refused: body does not match backend.reading@1: /timestamp minimum: must be >= 0',
      [DeadLetterHeaders.attempts]: 1,
    });
    expect(app.metrics().out).toMatchObject({ retried: 0, deadLettered: 1, completed: 1 });
  });
});

describe('upcasting between versions', () => {
  it('fills the defaults of new fields when no translator is registered, and sets the new schema header', async () => {
    const { kit } = await start([from('memory:in', { contract: 'device.telemetry@1' }).upcast('device.telemetry', 1, 2).to('memory:out')]);
    const out = kit.mock('memory:out');
    await kit.send('memory:in', validTelemetry);
    const [upcast] = await out.expect(1);
    expect(upcast?.body).toEqual({ ...validTelemetry, unit: 'C' });
    expect(upcast?.headers.schema).toBe('device.telemetry@2');
  });

  it('uses a registered translator, passes messages already at the target version, and validates the result', async () => {
    const registry = shippedRegistry({ upcasters: [defineUpcaster('device.telemetry', 1, 2, (v1) => ({ ...v1, temperature: (v1.temperature * 9) / 5 + 32, unit: 'F' }))] });
    const { kit } = await start([from('memory:in').deadLetterChannel('memory:dlq').upcast('device.telemetry', 1, 2).to('memory:out')], registry);
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendMessages('memory:in', [
      createMessage({ ...validTelemetry, temperature: 100 }, { headers: { schema: 'device.telemetry@1' } }),
      createMessage({ ...validTelemetry, unit: 'C' }, { headers: { schema: 'device.telemetry@2' } }),
      createMessage({ deviceId: 'no-ts', temperature: 1 }),
      createMessage(validTelemetry, { headers: { schema: 'backend.reading@1' } }),
    ]);
    const done = await out.expect(2);
    expect(done.map((message) => message.body)).toEqual([{ ...validTelemetry, temperature: 212, unit: 'F' }, { ...validTelemetry, unit: 'C' }]);
    const dead = await dlq.expect(2);
    expect(dead.map((message) => message.headers[DeadLetterHeaders.code])).toEqual(['SCHEMA_INVALID', 'SCHEMA_MISMATCH']);
  });

  it('chains translators across several versions and validates each input version first', () => {
    const registry = shippedRegistry();
    expect(registry.upcast('device.telemetry', 1, 2, validTelemetry)).toEqual({ ...validTelemetry, unit: 'C' });
    expect(() => registry.upcast('device.telemetry', 1, 3, validTelemetry)).toThrow(/unknown contract 'device.telemetry@3'/);
  });
});

describe('build-time checks', () => {
  it('a route validating against an unknown contract, or without a registry, does not start', async () => {
    const app = createIntegration({ routes: [from('memory:in', { id: 'x' }).step('validate', validateUnknown()).to('memory:out')], modules: [schemaModule({ registry: shippedRegistry() })], logger: silentLogger });
    await expect(app.start()).rejects.toThrow(RouteDefinitionError);
    await expect(app.start()).rejects.toThrow(/unknown contract 'device.telemetry@9'/);
    await app.stop({ drainTimeoutMs: 10 });
    const bare = createIntegration({ routes: [from('memory:in').validate('device.telemetry@1').to('memory:out')], logger: silentLogger });
    await expect(bare.start()).rejects.toThrow(/no SchemaRegistry is bound: add schemaModule\(\{ directory: 'schemas' \}\)/);
    await bare.stop({ drainTimeoutMs: 10 });
  });

  it('schemaModule({ directory }) loads a folder and fails fast on a bad one', () => {
    expect(() => schemaModule({ directory: 'schemas' })).not.toThrow();
    expect(() => schemaModule({ directory: 'no/such/folder' })).toThrow(/no contracts folder at no\/such\/folder/);
  });
});

function validateUnknown() {
  return validateStep('device.telemetry@9');
}
