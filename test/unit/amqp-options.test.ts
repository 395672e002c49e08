import { describe, expect, it } from 'vitest';
import { AmqpConfigurationError, validateAmqpEndpointOptions, validateAmqpOptions } from '../../adapters/amqp/index.ts';

// AMQP options go through defineOptions like every adapter's: AmqpConfigurationError naming each
// option, what was expected and given, never TLS material or a URL's password.
const refusal = (run: () => unknown): Error => {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
};

describe('AMQP options', () => {
  it('transport options: every problem by path, TLS material and passwords masked', () => {
    const error = refusal(() =>
      validateAmqpOptions({
        url: 'http://app:hunter22@rabbit',
        heartbeatSeconds: 1.5,
        tls: { key: '-----BEGIN PRIVATE KEY----- secret', passphrase: 'open-sesame', rejectUnauthorized: 'no' as unknown as boolean },
        topology: { queues: [{ name: 'q', type: 'classic', deliveryLimit: 3 }] },
      }),
    );
    expect(error).toBeInstanceOf(AmqpConfigurationError);
    expect(error.message).toMatch(/^invalid AMQP transport options: /);
    expect(error.message).toContain("url must match pattern \"^amqps?://\", got 'http://app:***@rabbit'");
    expect(error.message).toContain('heartbeatSeconds must be integer, got 1.5');
    expect(error.message).toContain("tls.rejectUnauthorized must be boolean, got 'no'");
    expect(error.message).toContain('topology.queues[0]');
    for (const secret of ['hunter22', 'PRIVATE KEY', 'open-sesame']) expect(error.message).not.toContain(secret);
  });

  it('TLS buffers and absent (undefined) options are accepted', () => {
    expect(() => validateAmqpOptions({ url: undefined, tls: { ca: [Buffer.from('ca')], cert: Buffer.from('cert'), key: Buffer.from('key') }, maxDeliveries: 3 })).not.toThrow();
  });

  it('endpoint options name the URI', () => {
    const error = refusal(() => validateAmqpEndpointOptions('amqp:exchange/e?mandatry=true&type=fan', { mandatry: 'true', type: 'fan' }));
    expect(error).toBeInstanceOf(AmqpConfigurationError);
    expect(error.message).toBe("invalid options in 'amqp:exchange/e?mandatry=true&type=fan': unknown option 'mandatry' (did you mean 'mandatory'?); type must be one of direct, topic, fanout, headers, got 'fan'");
    // a routing key is no secret: the quoted URI keeps it (the redaction policy hides api keys, not routing keys)
    expect(refusal(() => validateAmqpEndpointOptions('amqp:exchange/e?routingKey=r&bad=1', { routingKey: 'r', bad: '1' })).message).toContain("'amqp:exchange/e?routingKey=r&bad=1'");
  });
});
