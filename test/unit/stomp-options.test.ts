import { describe, expect, it } from 'vitest';
import { encodeFrame, parseStompUrl, StompConfigurationError } from '../../adapters/stomp/index.ts';
import { createMessage } from '../../src/core/index.ts';

describe('parseStompUrl', () => {
  it('a malformed percent-escape in login, passcode or virtual host is a StompConfigurationError without the secret', () => {
    for (const url of ['stomp://u:s3cret%zz@h', 'stomp://us%zzer:s3cret@h', 'stomp://u:s3cret@h/v%zz']) {
      let error: unknown;
      try {
        parseStompUrl(url);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(StompConfigurationError);
      expect((error as Error).message).not.toContain('s3cret');
    }
  });
});

describe('STOMP header names brokers act on', () => {
  it('CC, BCC, x-quorum-initial-group-size and transformation travel escaped as ic-h-<name>', () => {
    const { headers } = encodeFrame(createMessage({}, { headers: { CC: 'a', bcc: 'b', 'x-quorum-initial-group-size': 3, transformation: 'jms-xml' } }), { outbound: 'all', persistent: true }, 1 << 20);
    for (const name of ['CC', 'bcc', 'x-quorum-initial-group-size', 'transformation']) {
      expect(headers).not.toHaveProperty([name]);
      expect(headers).toHaveProperty([`ic-h-${name}`]);
    }
  });
});
