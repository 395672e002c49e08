import type { ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { failWithEvidence, MAX_REPORTED_ISSUES, SchemaValidationError, ValidationErrorsHeader } from '../../src/schema/index.ts';
import { Harness, source } from './harness.ts';

const issue = (n: number): ErrorObject => ({ instancePath: `/items/${n}`, schemaPath: '#/x', keyword: 'type', params: {}, message: 'must be number' });

describe('failWithEvidence', () => {
  it('fails a schema violation for good, carrying its issues and the given evidence as headers', () => {
    const harness = new Harness();
    const input = source({ items: ['a'] }, { id: 'm1', headers: { mqttTopic: 'devices/d1/telemetry' } });
    const error = new SchemaValidationError('device.telemetry@1', [issue(0)]);
    failWithEvidence(harness.context, input.delivery, error, { 'x-mqtt-topic': 'devices/d1/telemetry' });
    expect(harness.failures).toHaveLength(1);
    const [failure] = harness.failures;
    expect(failure?.error).toBe(error);
    expect(failure?.attempt).toBe(1);
    expect(failure?.delivery.message.id).toBe('m1');
    expect(failure?.delivery.message.body).toBe(input.message.body);
    expect(failure?.delivery.message.headers['x-mqtt-topic']).toBe('devices/d1/telemetry');
    expect(JSON.parse(String(failure?.delivery.message.headers[ValidationErrorsHeader]))).toEqual([{ pointer: '/items/0', keyword: 'type', message: 'must be number' }]);
    expect(input.outcome).toBe('nacked'); // settled through the failed delivery: same obligation
  });

  it('reports at most MAX_REPORTED_ISSUES issues', () => {
    const harness = new Harness();
    const error = new SchemaValidationError('c@1', Array.from({ length: MAX_REPORTED_ISSUES + 5 }, (_, n) => issue(n)));
    failWithEvidence(harness.context, source({}).delivery, error);
    expect(JSON.parse(String(harness.failures[0]?.delivery.message.headers[ValidationErrorsHeader]))).toHaveLength(MAX_REPORTED_ISSUES);
  });

  it('passes the delivery as it is when there is no evidence to add', () => {
    const harness = new Harness();
    const input = source('not json');
    failWithEvidence(harness.context, input.delivery, new Error('PAYLOAD_UNPARSEABLE'));
    expect(harness.failures[0]?.delivery).toBe(input.delivery);
    expect(harness.failures[0]?.delivery.message.headers[ValidationErrorsHeader]).toBeUndefined();
  });

  it('rejects rather than retries when a foreign error handler still asks for a retry', () => {
    const harness = new Harness({ failed: () => 100 });
    const input = source({});
    failWithEvidence(harness.context, input.delivery, new SchemaValidationError('c@1', [issue(0)]));
    expect(input.outcome).toBe('nacked');
    expect(input.reasons[0]).toBeInstanceOf(SchemaValidationError);
  });
});
