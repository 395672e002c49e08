import { describe, expect, it } from 'vitest';
import { upcast } from '../../../patterns/upcast.ts';
import { validate } from '../../../patterns/validate.ts';
import { SchemaRegistry, SchemaValidationError, ValidationErrorsHeader } from '../../../src/schema/index.ts';
import { drive, Harness, source } from '../../patterns/harness.ts';
import { shippedRegistry, validTelemetry } from './fixtures.ts';

const services = new Map([[SchemaRegistry, shippedRegistry()]]);

describe('validate step', () => {
  it('emits valid messages synchronously with the schema header; parses text bodies', () => {
    const harness = new Harness({ services });
    const { output, send } = drive(harness.build(validate('device.telemetry@1')));
    send(source(validTelemetry, { id: 'a' }), source(JSON.stringify(validTelemetry), { id: 'b' }));
    expect(output.messages.map((message) => [message.id, message.body, message.headers.schema])).toEqual([
      ['a', validTelemetry, 'device.telemetry@1'],
      ['b', validTelemetry, 'device.telemetry@1'],
    ]);
  });

  it('hands an invalid message to the error handler with the validation errors header, and never schedules a retry', () => {
    const asked: number[] = [];
    // A context that (unlike the runtime) asks to retry a permanent failure: the step rejects instead.
    const harness = new Harness({
      services,
      failed: (_delivery, _error, attempt) => {
        asked.push(attempt);
        return 10;
      },
    });
    const { output, send } = drive(harness.build(validate('device.telemetry@1')));
    const input = source({ ...validTelemetry, temperature: 'x' });
    send(input);
    expect(asked).toEqual([1]);
    expect(input.outcome).toBe('nacked');
    expect(output.messages).toEqual([]);
    const [failure] = harness.failures;
    expect(failure?.error).toBeInstanceOf(SchemaValidationError);
    expect(JSON.parse(String(failure?.delivery.message.headers[ValidationErrorsHeader]))).toEqual([{ pointer: '/temperature', keyword: 'type', message: 'must be number' }]);
  });

  it('fails the route build when the contract is unknown or no registry is bound', () => {
    expect(() => new Harness({ services }).build(validate('nope@1'))).toThrow(/unknown contract 'nope@1'/);
    expect(() => new Harness().build(validate('device.telemetry@1'))).toThrow(/no SchemaRegistry is bound/);
    expect(() => new Harness({ services }).build(upcast('device.telemetry', 1, 5))).toThrow(/unknown contract 'device.telemetry@5'/);
  });
});
