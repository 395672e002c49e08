import { describe, expect, it } from 'vitest';
import { redactText, redactUrl } from '../../src/core/index.ts';

describe('redaction policy (one for every adapter)', () => {
  it('hides the password of a URL and keeps the user name', () => {
    expect(redactUrl('amqp://app:s3cret@rabbit:5672/prod')).toBe('amqp://app:***@rabbit:5672/prod');
    expect(redactUrl('mqtts://device:p%40ss@broker:8883')).toBe('mqtts://device:***@broker:8883');
  });

  it('hides password-like query parameters, and leaves URLs without secrets as they are', () => {
    expect(redactUrl('postgres://db/test?user=app&password=hunter2&sslmode=require')).toBe('postgres://db/test?user=app&password=***&sslmode=require');
    expect(redactUrl('mqtt://127.0.0.1:1883')).toBe('mqtt://127.0.0.1:1883');
    expect(redactUrl('amqp://guest@rabbit')).toBe('amqp://guest@rabbit');
  });

  it('removes secrets a client library echoes in its error messages', () => {
    expect(redactText('connect failed: amqp://u:hunter2@h (hunter2 rejected)', ['hunter2'])).toBe('connect failed: amqp://u:***@h (*** rejected)');
  });
});
