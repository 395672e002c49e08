// The public API and the SPI the route tests use, plus two helpers.
import { retryAfter } from '../../../facade/index.ts';
import { validate } from '../../../patterns/validate.ts';

export * from '../../../facade/index.ts';
export { JsonSchemaRegistry, Transport, ValidationErrorsHeader, type Delivery, type Endpoint, type SchemaRegistry } from '../../../src/spi.ts';
export const onErrorRetryAll = (): ReturnType<typeof retryAfter> => retryAfter(1);
export const validateStep = validate;
