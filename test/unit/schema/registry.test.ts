import { describe, expect, it } from 'vitest';
import {
  JsonSchemaRegistry,
  loadContracts,
  SchemaDefinitionError,
  SchemaValidationError,
  UnknownContractError,
  type ContractSource,
} from '../../../src/schema/index.ts';
import { contract, contractsFolder, objectSchema, shippedRegistry, validTelemetry } from './fixtures.ts';

const str = { type: 'string', description: 'a string' };

describe('schema registry', () => {
  it('loads and compiles every shipped contract, one per subject version', () => {
    const registry = shippedRegistry();
    expect(registry.contracts()).toEqual(['backend.reading@1', 'device.telemetry@1', 'device.telemetry@2', 'order.placed@1', 'parcel.scanned@1']);
    expect(registry.versions('device.telemetry')).toEqual([1, 2]);
    expect(registry.subject('device.telemetry')?.compatibility).toBe('BACKWARD');
    expect(registry.subject('backend.reading')?.compatibility).toBe('FULL');
    expect(registry.validator('device.telemetry@1')).toBe(registry.validator('device.telemetry@1'));
  });

  it('device.telemetry@1 is the contract issue 6 specifies', () => {
    const registry = shippedRegistry();
    expect(registry.validate('device.telemetry@1', validTelemetry)).toBe(validTelemetry);
    expect(registry.validate('device.telemetry@1', { deviceId: 'd', ts: '2026-11-23T09:00:00.123+01:00', temperature: -3, battery: 100 })).toBeDefined();
    const invalid: [unknown, string, string][] = [
      [{ ts: validTelemetry.ts, temperature: 1 }, '/deviceId', 'required'],
      [{ ...validTelemetry, ts: '23/11/2026' }, '/ts', 'format'],
      [{ ...validTelemetry, ts: '2026-11-23 09:00' }, '/ts', 'format'],
      [{ ...validTelemetry, temperature: '21' }, '/temperature', 'type'],
      [{ ...validTelemetry, humidity: 101 }, '/humidity', 'maximum'],
      [{ ...validTelemetry, battery: -1 }, '/battery', 'minimum'],
      [{ ...validTelemetry, pressure: 1000 }, '', 'additionalProperties'],
    ];
    for (const [body, pointer, keyword] of invalid) {
      const error = catchError(() => registry.validate('device.telemetry@1', body));
      expect(error).toBeInstanceOf(SchemaValidationError);
      expect((error as SchemaValidationError).code).toBe('SCHEMA_INVALID');
      expect((error as SchemaValidationError).issues[0]).toMatchObject({ pointer, keyword });
      expect((error as SchemaValidationError).errors[0]?.keyword).toBe(keyword);
    }
  });

  it('names pointer, keyword and message of every error in the error message', () => {
    const registry = shippedRegistry({ allErrors: true });
    const error = catchError(() => registry.validate('device.telemetry@1', { deviceId: 'd', ts: 'x', temperature: 'hot' })) as SchemaValidationError;
    expect(error.message).toBe("body does not match device.telemetry@1: /ts format: must match format \"date-time\"; /temperature type: must be number");
  });

  it('refuses an unknown subject or version with a typed error', () => {
    const registry = shippedRegistry();
    expect(() => registry.validate('device.telemetry@9', {})).toThrow(UnknownContractError);
    expect(() => registry.validator('nope@1')).toThrow(/unknown contract 'nope@1' \(registry has: backend.reading@1, device.telemetry@1, device.telemetry@2, order.placed@1, parcel.scanned@1\)/);
    expect(catchError(() => registry.schema('device.telemetry'))).toMatchObject({ code: 'SCHEMA_UNKNOWN', message: expect.stringContaining('subject@version') });
  });

  it('resolves $refs between contracts of the registry and inside a contract', () => {
    const units = objectSchema('https://example.test/common.point/1.json', { lat: { type: 'number', description: 'latitude', unit: '°' } }, ['lat']);
    const located = objectSchema('https://example.test/asset.located/1.json', {
      where: { $ref: '../common.point/1.json', description: 'position' },
      name: { $ref: '#/$defs/name', description: 'asset name' },
    }, ['where', 'name'], { $defs: { name: { type: 'string', minLength: 2 } } });
    const registry = new JsonSchemaRegistry({ contracts: [contract('common.point', 1, units), contract('asset.located', 1, located)] });
    expect(registry.validate('asset.located@1', { where: { lat: 1 }, name: 'pump' })).toBeDefined();
    expect(() => registry.validate('asset.located@1', { where: { lat: 'x' }, name: 'pump' })).toThrow(/\/where\/lat type/);
    expect(() => registry.validate('asset.located@1', { where: { lat: 1 }, name: 'p' })).toThrow(/\/name minLength/);
  });

  it('refuses remote $refs when it loads, without fetching anything', () => {
    for (const ref of ['https://evil.example/schema.json', 'http://example.test/other.json#/x', '../unknown/1.json']) {
      const schema = objectSchema('https://example.test/a/1.json', { x: { $ref: ref, description: 'x' } });
      const error = catchError(() => new JsonSchemaRegistry({ contracts: [contract('a', 1, schema)] }));
      expect(error).toBeInstanceOf(SchemaDefinitionError);
      expect((error as Error).message).toContain(`remote $ref refused (only contracts of the registry and local refs resolve): ${ref}`);
    }
  });

  it('compiles in strict mode: unknown keywords and contracts without $id are refused', () => {
    expect(() => new JsonSchemaRegistry({ contracts: [contract('a', 1, { ...objectSchema('urn:a:1', {}), colour: 'red' })] }, { precompile: true })).toThrow(/strict mode: unknown keyword: "colour"/);
    const invalidDraft = () => new JsonSchemaRegistry({ contracts: [contract('a', 1, objectSchema('urn:a:1', { n: { type: 'number', description: 'n', unit: '1', minimum: '0' } }))] });
    expect(invalidDraft).toThrow(/a@1: schema is invalid: data\/properties\/n\/minimum must be number/);
    const dir = contractsFolder({ 'a/1.json': { type: 'object', description: 'no id' } });
    expect(() => loadContracts(dir)).toThrow(/a\/1.json: a contract needs a "\$id"/);
    const draft7 = contractsFolder({ 'a/1.json': { $id: 'urn:a', $schema: 'http://json-schema.org/draft-07/schema#' } });
    expect(() => loadContracts(draft7)).toThrow(/"\$schema" must be https:\/\/json-schema.org\/draft\/2020-12\/schema/);
    const broken = contractsFolder({ 'a/1.json': '{ "$id": ' });
    expect(() => loadContracts(broken)).toThrow(SchemaDefinitionError);
    const badMode = contractsFolder({ 'a/1.json': { $id: 'urn:a' }, 'a/subject.json': { compatibility: 'SIDEWAYS' } });
    expect(() => loadContracts(badMode)).toThrow(/"compatibility" must be one of BACKWARD, FORWARD, FULL, NONE/);
  });

  it('loads a folder: versions in order, subject.json for the mode, BACKWARD by default, other files ignored', () => {
    const dir = contractsFolder({
      'b/2.json': objectSchema('urn:b:2', { s: str }),
      'b/1.json': objectSchema('urn:b:1', { s: str }),
      'b/README.md': '# not a contract',
      'c/1.json': objectSchema('urn:c:1', {}),
      'c/subject.json': { compatibility: 'NONE', description: 'the c things' },
      'types.generated.ts': 'export {};',
    });
    const registry = JsonSchemaRegistry.fromDirectory(dir);
    expect(registry.contracts()).toEqual(['b@1', 'b@2', 'c@1']);
    expect(registry.subjects()).toEqual([
      { subject: 'b', compatibility: 'BACKWARD' },
      { subject: 'c', compatibility: 'NONE', description: 'the c things' },
    ]);
  });

  it('starts with 200 subjects (10-field contracts); each compiles once, on first use (its start-up time is a benchmark figure, not a timed test)', () => {
    const contracts: ContractSource[] = [];
    for (let n = 0; n < 200; n += 1) {
      const properties = Object.fromEntries(Array.from({ length: 10 }, (_, f) => [`field${f}`, f % 2 === 0 ? { type: 'number', minimum: 0, description: 'n', unit: '1' } : { type: 'string', maxLength: 64, pattern: '^[a-z0-9-]+$', description: 's' }]));
      contracts.push(contract(`subject.n${n}`, 1, objectSchema(`https://example.test/subject.n${n}/1.json`, properties, ['field0', 'field1'])));
    }
    const registry = new JsonSchemaRegistry({ contracts });
    expect(registry.validate('subject.n199@1', { field0: 1, field1: 'a-b' })).toBeDefined();
    expect(registry.contracts()).toHaveLength(200);
    expect(registry.validator('subject.n199@1')).toBe(registry.validator('subject.n199@1'));
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
