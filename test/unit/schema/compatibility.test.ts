import type { AnySchemaObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { checkCompatibility, lintContract, schemaChanges, type CompatibilityMode } from '../../../src/schema/index.ts';

const v1: AnySchemaObject = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    count: { type: 'integer' },
    note: { type: 'string' },
    kind: { enum: ['a', 'b'] },
    place: { type: 'object', properties: { lat: { type: 'number' } }, required: ['lat'] },
  },
  required: ['id', 'count'],
  additionalProperties: false,
};

function v2(change: (schema: { properties: Record<string, AnySchemaObject>; required: string[]; additionalProperties?: boolean }) => void): AnySchemaObject {
  const copy = structuredClone(v1) as { properties: Record<string, AnySchemaObject>; required: string[] };
  change(copy);
  return copy;
}

/** Which modes reject the change from v1 to `next`. */
function rejectedBy(next: AnySchemaObject): CompatibilityMode[] {
  return (['BACKWARD', 'FORWARD', 'FULL', 'NONE'] as const).filter((mode) => checkCompatibility('s', mode, 1, v1, 2, next).length > 0);
}

describe('compatibility between versions', () => {
  it('explains precisely: "v2 adds required field `unit` without a default: BACKWARD-incompatible"', () => {
    const [problem, ...rest] = checkCompatibility('device.telemetry', 'BACKWARD', 1, { type: 'object', properties: {} }, 2, { type: 'object', properties: { unit: { type: 'string' } }, required: ['unit'] });
    expect(rest).toEqual([]);
    expect(problem?.explanation).toBe('device.telemetry v2 adds required field `unit` without a default: BACKWARD-incompatible (mode BACKWARD; readers of the new version cannot read data written with the previous one)');
    expect(problem).toMatchObject({ field: 'unit', breaks: ['BACKWARD'], subject: 'device.telemetry', from: 1, to: 2 });
  });

  const cases: [string, AnySchemaObject, CompatibilityMode[]][] = [
    // added fields (v1 is closed: additionalProperties false, so v1 readers reject any new field)
    ['adds a required field without a default', v2((s) => { s.properties.unit = { type: 'string' }; s.required.push('unit'); }), ['BACKWARD', 'FORWARD', 'FULL']],
    ['adds a required field with a default', v2((s) => { s.properties.unit = { type: 'string', default: 'C' }; s.required.push('unit'); }), ['FORWARD', 'FULL']],
    ['adds an optional field', v2((s) => { s.properties.extra = { type: 'string' }; }), ['FORWARD', 'FULL']],
    ['adds an optional field to an open object', v2((s) => { delete s.additionalProperties; s.properties.extra = { type: 'string' }; }), ['FORWARD', 'FULL']],
    // removed fields
    ['removes a required field', v2((s) => { delete s.properties.count; s.required = ['id']; }), ['BACKWARD', 'FORWARD', 'FULL']],
    ['removes an optional field (closed object)', v2((s) => { delete s.properties.note; }), ['BACKWARD', 'FULL']],
    // required-ness
    ['makes an optional field required', v2((s) => { s.required.push('note'); }), ['BACKWARD', 'FULL']],
    ['makes a required field optional', v2((s) => { s.required = ['id']; }), ['FORWARD', 'FULL']],
    // types
    ['widens integer to number', v2((s) => { s.properties.count = { type: 'number' }; }), ['FORWARD', 'FULL']],
    ['narrows by changing number to integer', v2((s) => { s.properties.place = { type: 'object', properties: { lat: { type: 'integer' } }, required: ['lat'] }; }), ['BACKWARD', 'FULL']],
    ['changes a type', v2((s) => { s.properties.id = { type: 'integer' }; }), ['BACKWARD', 'FORWARD', 'FULL']],
    ['adds an enum value', v2((s) => { s.properties.kind = { enum: ['a', 'b', 'c'] }; }), ['FORWARD', 'FULL']],
    ['removes an enum value', v2((s) => { s.properties.kind = { enum: ['a'] }; }), ['BACKWARD', 'FULL']],
    ['adds a required nested field', v2((s) => { s.properties.place = { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } }, required: ['lat', 'lon'] }; }), ['BACKWARD', 'FULL']],
    ['changes nothing that matters', v2((s) => { s.properties.id = { type: 'string', description: 'now documented' }; }), []],
  ];

  for (const [what, next, modes] of cases) {
    it(`${what}: rejected by ${modes.join(', ') || 'no mode'}`, () => {
      expect(rejectedBy(next)).toEqual(modes);
    });
  }

  it('NONE accepts anything', () => {
    expect(checkCompatibility('s', 'NONE', 1, v1, 2, { type: 'string' })).toEqual([]);
  });

  it('names nested fields and both directions when a change breaks both', () => {
    const changes = schemaChanges(v1, v2((s) => { s.properties.place = { type: 'object', properties: { lat: { type: 'string' } }, required: ['lat'] }; }));
    expect(changes).toEqual([{ field: 'place.lat', change: 'changes the type of `place.lat` from number to string', breaks: ['BACKWARD', 'FORWARD'] }]);
    const [full] = checkCompatibility('s', 'FULL', 1, v1, 2, v2((s) => { s.properties.id = { type: 'integer' }; }));
    expect(full?.explanation).toMatch(/^s v2 changes the type of `id` from string to integer: BACKWARD-incompatible and FORWARD-incompatible \(mode FULL;/);
  });
});

describe('documentation lint', () => {
  it('wants a description on the contract and on every property, and a unit on numeric ones', () => {
    const problems = lintContract('x@1', {
      type: 'object',
      properties: {
        documented: { type: 'string', description: 'fine' },
        bare: { type: 'string' },
        amount: { type: 'number', description: 'how much' },
        place: { type: 'object', description: 'where', properties: { lat: { type: 'number', unit: '°' } } },
        measured: { type: 'integer', description: 'count', unit: '1' },
      },
    });
    expect(problems.map((problem) => problem.problem)).toEqual([
      'the contract has no description',
      'property `bare` has no description',
      'numeric property `amount` has no unit (add "unit": "…")',
      'property `place.lat` has no description',
    ]);
  });
});
