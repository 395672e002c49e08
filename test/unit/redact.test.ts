import { describe, expect, it } from 'vitest';
import { checkUrlCredentials, EndpointError, redactText, redactUrl } from '../../src/core/index.ts';

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

// [url, redacted, the secret that must not survive]
const hostileUrls: readonly (readonly [string, string, string])[] = [
  ['amqp://guest:se/cretpw@host:5672/vhost', 'amqp://guest:***@host:5672/vhost', 'cretpw'],
  ['amqp://guest:se?cretpw@host', 'amqp://guest:***@host', 'cretpw'],
  ['amqp://guest:se#cretpw@host', 'amqp://guest:***@host', 'cretpw'],
  ['amqp://guest:se@cretpw@host', 'amqp://guest:***@host', 'cretpw'],
  ['amqp://guest:se:cretpw@host', 'amqp://guest:***@host', 'cretpw'],
  ['amqp://guest:se%40cretpw@host', 'amqp://guest:***@host', 'cretpw'],
  ['amqp://guest: secretpw@host', 'amqp://guest:***@host', 'secretpw'],
  ['amqp://guest:se/cret?pw#x@y@host:5672', 'amqp://guest:***@host:5672', 'cret'],
  ['  amqps://guest:secretpw@host', '  amqps://guest:***@host', 'secretpw'],
  ['AMQPS://guest:secretpw@host', 'AMQPS://guest:***@host', 'secretpw'],
  ['amqp://:secretpw@host', 'amqp://:***@host', 'secretpw'],
  ['mqtts://device:secretpw@[::1]:8883', 'mqtts://device:***@[::1]:8883', 'secretpw'],
  ['mqtt://device:secret/pw@[2001:db8::1]:1883/x', 'mqtt://device:***@[2001:db8::1]:1883/x', 'pw'],
  ['postgres://app:secretpw@db:5432/orders?sslmode=require', 'postgres://app:***@db:5432/orders?sslmode=require', 'secretpw'],
  ['postgres://db/orders?password=secret&pw&sslmode=require', 'postgres://db/orders?password=***&sslmode=require', 'pw'],
  ['postgres://db/orders?sslpassword=secretpw', 'postgres://db/orders?sslpassword=***', 'secretpw'],
  ['redis://host:6379?pass=secretpw', 'redis://host:6379?pass=***', 'secretpw'],
  ['https://api/x?secret=secretpw&token=tokenpw&api_key=keypw', 'https://api/x?secret=***&token=***&api_key=***', 'pw'],
  ['guest:secretpw@host:5672', 'guest:***@host:5672', 'secretpw'],
  ['host=db password=secretpw', 'host=db password=***', 'secretpw'],
];

describe('redactUrl against hostile URLs (by structure, not by URL grammar)', () => {
  it.each(hostileUrls)('%s', (url, redacted, secret) => {
    expect(redactUrl(url)).toBe(redacted);
    expect(redactUrl(url)).not.toContain(secret);
  });

  it('keeps a URL without a password whole: no user info, a user alone, an IPv6 host', () => {
    for (const url of ['mqtt://127.0.0.1:1883', 'amqp://guest@rabbit:5672/%2F', 'mqtts://[::1]:8883', 'amqps://user@[2001:db8::1]:5671/vhost?heartbeat=10']) expect(redactUrl(url)).toBe(url);
  });

  it('hides too much rather than too little when an @ sits in a path or query', () => {
    expect(redactUrl('amqp://guest:secretpw@host/vhost?name=a@b')).toBe('amqp://guest:***@b');
  });
});

describe('checkUrlCredentials', () => {
  it('accepts URLs whose user info is percent-encoded, or which have none', () => {
    for (const url of ['amqp://guest:se%2Fcret%3Fpw%23x%40y@host:5672', 'amqp://guest:se:cret@host', 'mqtt://127.0.0.1:1883', 'mqtts://device@[::1]:8883', 'amqp://guest:100%25@host']) {
      expect(() => checkUrlCredentials(url, 'AMQP_URL')).not.toThrow();
    }
  });

  it.each([
    ['amqp://guest:se/cretpw@host', "'/' as %2F in the password"],
    ['amqp://guest:se?cretpw@host', "'?' as %3F in the password"],
    ['amqp://guest:se#cretpw@host', "'#' as %23 in the password"],
    ['amqp://guest:se@cretpw@host', "'@' as %40 in the password"],
    ['amqp://guest: secretpw@host', "' ' as %20 in the password"],
    ['amqp://guest:se\tcretpw@host', "'U+0009' as %09 in the password"],
    ['amqp://guest:100%pw@host', "'%' as %25 in the password"],
    ['amqp://gu/est:pw@host', "'/' as %2F in the user name"],
  ])('refuses %j, saying what to encode and never the password', (url, advice) => {
    let thrown: unknown;
    try {
      checkUrlCredentials(url, 'AMQP_URL');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EndpointError);
    const message = (thrown as EndpointError).message;
    expect(message).toContain(`percent-encode ${advice}`);
    expect(message).toContain('of AMQP_URL');
    expect(message).not.toMatch(/cretpw|secretpw|100%pw/);
  });

  it('names every offending character once', () => {
    expect(() => checkUrlCredentials('amqp://guest:se/cret?pw#x@y@host', 'MQTT_URL')).toThrow(
      "MQTT_URL has '/', '?', '#', '@' unencoded in its user info (amqp://guest:***@host): percent-encode '/' as %2F in the password, '?' as %3F in the password, '#' as %23 in the password, '@' as %40 in the password of MQTT_URL",
    );
  });
});

describe('redactUrl and keys', () => {
  it('hides keys that are secrets, keeps routing and partition keys', () => {
    expect(redactUrl('x?api_key=1&apikey=2&sslkey=3&private-key=4&accessKey=5&key=6')).toBe('x?api_key=***&apikey=***&sslkey=***&private-key=***&accessKey=***&key=***');
    expect(redactUrl('amqp:exchange/telemetry?routingKey=reading.d1&partitionKey=p')).toBe('amqp:exchange/telemetry?routingKey=reading.d1&partitionKey=p');
  });
});
