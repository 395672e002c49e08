import { describe, expect, it } from 'vitest';
import { JsonSchemaRegistry, SchemaDefinitionError, checkRegistry, classificationLines, contractsMarkdown } from '../../../src/schema/index.ts';
import { classifiedFields, deriveClassifiedFields, fieldsOfClass } from '../../../src/security/classification.ts';
import { indexedClassification } from '../../../src/security/classification-index.ts';

const customer = {
  $id: 'urn:test:classify.customer:1',
  description: 'a customer',
  type: 'object',
  properties: {
    name: { type: 'string', description: 'display name' },
    email: { type: 'string', description: 'contact', 'x-classification': 'personal' },
    card: { type: 'string', description: 'card number', 'x-classification': 'secret' },
    segment: { type: 'string', description: 'segment', 'x-classification': 'internal' },
    public: { type: 'string', description: 'said aloud', 'x-classification': 'public' },
    address: {
      type: 'object',
      description: 'postal address',
      properties: { street: { type: 'string', description: 'street', 'x-classification': 'personal' }, country: { type: 'string', description: 'country' } },
    },
    orders: { type: 'array', description: 'orders', items: { $ref: '#/$defs/order' } },
    health: { type: 'object', description: 'a whole classified object', 'x-classification': 'secret', properties: { note: { type: 'string', description: 'note', 'x-classification': 'personal' } } },
    tags: { type: 'object', description: 'free map', additionalProperties: { type: 'string', 'x-classification': 'personal' } },
  },
  $defs: {
    order: { type: 'object', properties: { iban: { type: 'string', description: 'iban', 'x-classification': 'secret' }, total: { type: 'number', description: 'total', unit: 'EUR' } } },
  },
};

const envelope = {
  $id: 'urn:test:classify.envelope:1',
  description: 'wraps a customer of another contract',
  type: 'object',
  properties: {
    who: { $ref: 'urn:test:classify.customer:1', description: 'the customer' },
    both: { description: 'union', anyOf: [{ type: 'string', 'x-classification': 'personal' }, { type: 'number', unit: '1', 'x-classification': 'secret' }] },
  },
};

const registryOf = (...schemas: Record<string, unknown>[]): JsonSchemaRegistry =>
  new JsonSchemaRegistry({ contracts: schemas.map((schema) => ({ subject: String(schema.$id).split(':')[2] as string, version: 1, schema })) });

describe('x-classification keyword', () => {
  it('is accepted by the strict registry on any property, and validation ignores it', () => {
    const registry = registryOf(customer);
    expect(registry.validate('classify.customer@1', { name: 'Ada', email: 'ada@example.org' })).toEqual({ name: 'Ada', email: 'ada@example.org' });
  });

  it('refuses a value outside public, internal, personal, secret', () => {
    const bad = { $id: 'urn:test:classify.bad:1', type: 'object', properties: { x: { type: 'string', 'x-classification': 'confidential' } } };
    expect(() => registryOf(bad).compileAll()).toThrow(SchemaDefinitionError);
  });
});

describe('classifiedFields', () => {
  it('derives JSON pointers with * for array items and map values, through $defs, whole classified objects covering their inside', () => {
    expect(classifiedFields(registryOf(customer), 'classify.customer@1')).toEqual([
      { pointer: '/address/street', classification: 'personal' },
      { pointer: '/card', classification: 'secret' },
      { pointer: '/email', classification: 'personal' },
      { pointer: '/health', classification: 'secret' },
      { pointer: '/orders/*/iban', classification: 'secret' },
      { pointer: '/segment', classification: 'internal' },
      { pointer: '/tags/*', classification: 'personal' },
    ]);
  });

  it('follows $refs to other contracts of the registry, and takes the strictest class of a union', () => {
    const fields = classifiedFields(registryOf(customer, envelope), 'classify.envelope@1');
    expect(fields).toContainEqual({ pointer: '/who/email', classification: 'personal' });
    expect(fields).toContainEqual({ pointer: '/who/orders/*/iban', classification: 'secret' });
    expect(fields).toContainEqual({ pointer: '/both', classification: 'secret' });
  });

  it('follows a recursive $ref once, and escapes ~ and / in property names', () => {
    const tree = { type: 'object', properties: { 'a/b': { type: 'string', 'x-classification': 'personal' }, child: { $ref: '#' } } };
    expect(deriveClassifiedFields(tree)).toEqual([
      { pointer: '/a~1b', classification: 'personal' },
      { pointer: '/child/a~1b', classification: 'personal' },
    ]);
  });

  it('is empty for a contract without classified fields; fieldsOfClass selects classes', () => {
    const plain = { $id: 'urn:test:classify.plain:1', type: 'object', properties: { n: { type: 'number' } } };
    const registry = registryOf(plain, customer);
    expect(classifiedFields(registry, 'classify.plain@1')).toEqual([]);
    expect(fieldsOfClass(classifiedFields(registry, 'classify.customer@1'), ['internal'])).toEqual([{ pointer: '/segment', classification: 'internal' }]);
  });

  it('is indexed by contract when a registry is built (what dead letters and the console consult)', () => {
    registryOf(customer);
    expect(indexedClassification('classify.customer@1').map((field) => field.pointer)).toContain('/email');
    expect(indexedClassification('nobody@1')).toEqual([]);
  });
});

describe('schemas check and docs', () => {
  it('check reports each classified contract and its fields, without failing', () => {
    const report = checkRegistry(registryOf(customer));
    expect(report.classified).toEqual([{ contract: 'classify.customer@1', fields: classifiedFields(registryOf(customer), 'classify.customer@1') }]);
    expect(classificationLines(report)[0]).toMatch(/^classified: classify\.customer@1 \/address\/street personal, \/card secret, /);
  });

  it('docs show a classification column, also for a class a $ref brings', () => {
    const markdown = contractsMarkdown(registryOf(customer));
    expect(markdown).toContain('| field | type | required | unit | classification | constraints | description |');
    expect(markdown).toMatch(/\| `email` \| string \| no \| {2}\| personal \|/);
    expect(markdown).toMatch(/\| `card` \| string \| no \| {2}\| secret \|/);
    expect(markdown).toMatch(/\| `name` \| string \| no \| {2}\| {2}\|/);
  });
});
