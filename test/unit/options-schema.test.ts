import { describe, expect, it } from 'vitest';
import { defineOptions, EndpointError, InterchangeError, InvalidOptionsError, parseEndpoint, positiveIntegerOption } from '../../src/core/index.ts';

// One way to declare and validate options (defineOptions): the texts name the option, what was
// expected and what was given, the endpoint URI, and never a secret.
const endpointOptions = defineOptions(
  {
    type: 'object',
    additionalProperties: false,
    properties: {
      type: { enum: ['queue', 'pubsub'] },
      capacity: positiveIntegerOption('messages held'),
      maxDeliveries: positiveIntegerOption('deliveries', 6),
      token: { type: 'string', pattern: '^[a-z]+$' },
    },
  },
  { secrets: ['token'] },
);

const clientOptions = defineOptions<{ readonly url?: string; readonly password?: string; readonly tls?: { readonly key?: string; readonly verify?: boolean }; readonly queues?: readonly { readonly name: string }[] }>(
  {
    type: 'object',
    additionalProperties: false,
    properties: {
      url: { type: 'string', pattern: '^demo://' },
      password: { type: 'string' },
      tls: { type: 'object', additionalProperties: false, properties: { key: {}, verify: { type: 'boolean' } } },
      queues: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 } } } },
      relay: { oneOf: [{ const: false }, { type: 'object', additionalProperties: false, properties: { batchSize: { type: 'integer', minimum: 1 } } }] },
    },
  },
  { secrets: ['password', 'key'] },
);

const refusal = (run: () => unknown): Error => {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
};

describe('defineOptions', () => {
  it('returns valid options as they are, and accepts absent (undefined) ones', () => {
    const endpoint = parseEndpoint('memory:orders?type=pubsub&capacity=10');
    expect(endpointOptions.validate(endpoint.options, endpoint)).toBe(endpoint.options);
    expect(clientOptions.validate({ url: undefined, tls: { verify: true, key: undefined } }, 'demo options')).toEqual({ url: undefined, tls: { verify: true, key: undefined } });
    expect(endpointOptions.problems({ type: 'queue' })).toEqual([]);
  });

  it('an unknown endpoint option is an EndpointError naming it and the URI, with the near miss', () => {
    const endpoint = parseEndpoint('memory:orders?tpye=pubsub');
    const error = refusal(() => endpointOptions.validate(endpoint.options, endpoint));
    expect(error).toBeInstanceOf(EndpointError);
    expect(error.message).toBe("invalid options in 'memory:orders?tpye=pubsub': unknown option 'tpye' (did you mean 'type'?)");
    expect(endpointOptions.problems({ colour: 'red' })).toEqual(["unknown option 'colour' (known: capacity, maxDeliveries, token, type)"]);
  });

  it('says what was expected and what was given, every problem', () => {
    const endpoint = parseEndpoint('memory:x?type=fanout&capacity=zero&maxDeliveries=1234567');
    expect(refusal(() => endpointOptions.validate(endpoint.options, endpoint)).message).toBe(
      "invalid options in 'memory:x?type=fanout&capacity=zero&maxDeliveries=1234567': type must be one of queue, pubsub, got 'fanout'; capacity must be a positive integer, got 'zero'; maxDeliveries must be a positive integer of at most 6 digits, got '1234567'",
    );
  });

  it('names nested options by path, and the branch that was meant', () => {
    expect(clientOptions.problems({ tls: { verify: 'no' }, queues: [{ name: 'a' }, {}] })).toEqual(["tls.verify must be boolean, got 'no'", "queues[1] must have option 'name'"]);
    expect(clientOptions.problems({ relay: { batchSize: 0 } })).toEqual(["relay.batchSize must be >= 1, got 0"]);
  });

  it('masks secrets: values of secret options, URL passwords, secret query parameters', () => {
    const endpoint = parseEndpoint('memory:x?token=Sup3r-Secret&capacity=0');
    const message = refusal(() => endpointOptions.validate(endpoint.options, endpoint)).message;
    expect(message).toContain("token must match pattern \"^[a-z]+$\", got ***");
    expect(message).not.toContain('Sup3r-Secret');

    const config = refusal(() => clientOptions.validate({ url: 'ftp://app:hunter22@host', password: 12345678, tls: { key: 'PEM-KEY-MATERIAL', keyy: 'PEM-KEY-MATERIAL' } }, 'demo options'));
    expect(config).toBeInstanceOf(InvalidOptionsError);
    expect(config).toBeInstanceOf(InterchangeError);
    expect(config.message).toContain("invalid demo options: url must match pattern \"^demo://\", got 'ftp://app:***@host'");
    expect(config.message).toContain("password must be string, got ***");
    expect(config.message).toContain("unknown option 'tls.keyy' (did you mean 'key'?)");
    for (const secret of ['hunter22', '12345678', 'PEM-KEY-MATERIAL']) expect(config.message).not.toContain(secret);
  });

  it('throws the error the adapter names', () => {
    class DemoConfigError extends Error {}
    const options = defineOptions({ type: 'object', additionalProperties: false, properties: {} }, { error: (message) => new DemoConfigError(message) });
    const error = refusal(() => options.validate({ x: 1 }, { uri: 'demo:q?x=1' }));
    expect(error).toBeInstanceOf(DemoConfigError);
    expect(error.message).toBe("invalid options in 'demo:q?x=1': unknown option 'x' (none are accepted here)");
  });
});
