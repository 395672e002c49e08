import { JsonSchemaRegistry } from '../src/spi.ts';

/** A 10-field contract: 5 bounded numbers, 5 patterned strings (the patterns are linear, so V8 runs them). */
const tenFields = Object.fromEntries(
  Array.from({ length: 10 }, (_, f) => [
    `f${f}`,
    f % 2 === 0 ? { type: 'number', minimum: 0, description: 'a number', unit: '1' } : { type: 'string', maxLength: 64, pattern: '^[a-z0-9-]+$', description: 'a code' },
  ]),
);

/** The bench route's readings as a contract (`bench.reading@1`). */
const reading = {
  $id: 'urn:bench:reading:1',
  description: 'A bench reading',
  type: 'object',
  properties: {
    deviceId: { type: 'string', description: 'device id' },
    temperature: { type: 'number', description: 'temperature', unit: '°C' },
    seq: { type: 'integer', minimum: 0, description: 'sequence number', unit: '1' },
  },
  required: ['deviceId', 'temperature', 'seq'],
  additionalProperties: false,
};

export const benchRegistry = new JsonSchemaRegistry({
  contracts: [
    { subject: 'bench.ten', version: 1, schema: { $id: 'urn:bench:ten:1', description: 'ten fields', type: 'object', properties: tenFields, required: Object.keys(tenFields), additionalProperties: false } },
    { subject: 'bench.reading', version: 1, schema: reading },
  ],
});

/** Nanoseconds per validation of one valid 10-field body: through the registry (depth check included) and ajv's function alone. */
export function validationCost(count = 1_000_000): { registryNs: number; ajvNs: number } {
  const body = Object.fromEntries(Object.keys(tenFields).map((key, i) => [key, i % 2 === 0 ? i : `value-${i}`]));
  const time = (work: () => void): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i += 1) work();
    return Number(process.hrtime.bigint() - started) / count;
  };
  const check = benchRegistry.validator('bench.ten@1');
  time(() => benchRegistry.validate('bench.ten@1', body)); // warm up
  return { registryNs: time(() => benchRegistry.validate('bench.ten@1', body)), ajvNs: time(() => check(body)) };
}
