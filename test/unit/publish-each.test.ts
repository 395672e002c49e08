import { describe, expect, it } from 'vitest';
import { createMessage, PartialPublishError, publishEach, UnencodableMessageError } from '../../src/core/index.ts';

const messages = [1, 2, 3, 4].map((n) => createMessage(n));
const encode = (message: { body: unknown }): number => {
  if (message.body === 2) throw new UnencodableMessageError('TEST', 'two cannot be encoded');
  return message.body as number;
};

describe('publishEach', () => {
  it("sends what encodes, and names each failure by the message's index", async () => {
    const sent: number[][] = [];
    const failure = await publishEach(messages, encode, async (items) => void sent.push(items)).catch((error: unknown) => error);
    expect(sent).toEqual([[1, 3, 4]]);
    expect(failure).toBeInstanceOf(PartialPublishError);
    expect([...(failure as PartialPublishError).failures.keys()]).toEqual([1]);
  });

  it("maps the send's own partial failures back to the messages' indexes", async () => {
    const lost = new Error('nacked');
    const failure = (await publishEach(messages, encode, () => Promise.reject(new PartialPublishError(new Map([[1, lost]]), 3))).catch((error: unknown) => error)) as PartialPublishError;
    expect([...failure.failures]).toEqual([
      [1, expect.any(UnencodableMessageError)],
      [2, lost],
    ]);
  });

  it("gives every sent message the send's error when it fails whole", async () => {
    const down = new Error('down');
    const failure = (await publishEach(messages, encode, () => Promise.reject(down)).catch((error: unknown) => error)) as PartialPublishError;
    expect([...failure.failures.keys()]).toEqual([0, 1, 2, 3]);
    expect(failure.failures.get(3)).toBe(down);
  });

  it('leaves the send error unchanged when every message encodes', async () => {
    const down = new Error('down');
    await expect(publishEach([messages[0]!], encode, () => Promise.reject(down))).rejects.toBe(down);
  });
});
