import { describe, expect, it } from 'vitest';
import { createMessage, NotConnectedError, PendingReplies, TimeoutError } from '../../src/core/index.ts';

// The request-reply bookkeeping the memory and MQTT transports share.
describe('PendingReplies', () => {
  const request = createMessage({ ask: 1 }, { id: 'req-1' });

  it('settles a request with the reply to its correlation id, once; an unknown or late reply is ignored', async () => {
    const pending = new PendingReplies('test');
    const waiting = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve());
    expect(pending.reply('other', createMessage('no'))).toBe(false);
    expect(pending.reply('c-1', createMessage('yes'))).toBe(true);
    await expect(waiting).resolves.toMatchObject({ body: 'yes' });
    expect(pending.reply('c-1', createMessage('late'))).toBe(false);
  });

  it('refuses a second request with a correlation id already waiting, and frees it once settled', async () => {
    const pending = new PendingReplies('test');
    const first = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve());
    await expect(pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve())).rejects.toMatchObject({ code: 'REQUEST_IN_FLIGHT' });
    pending.reply('c-1', createMessage('yes'));
    await first;
    const again = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve());
    pending.reply('c-1', createMessage('again'));
    await expect(again).resolves.toMatchObject({ body: 'again' });
  });

  it('rejects with TimeoutError, on abort, with the send’s failure (rejected or thrown), and frees the id each time', async () => {
    const pending = new PendingReplies('test');
    await expect(pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 5 }, () => Promise.resolve())).rejects.toBeInstanceOf(TimeoutError);
    const abort = new AbortController();
    const aborted = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000, signal: abort.signal }, () => Promise.resolve());
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
    await expect(pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000, signal: abort.signal }, () => Promise.resolve())).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
    await expect(pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.reject(new Error('unroutable')))).rejects.toThrow('unroutable');
    await expect(
      pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => {
        throw new Error('no reply channel');
      }),
    ).rejects.toThrow('no reply channel');
    const free = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve());
    expect(pending.reply('c-1', createMessage('free'))).toBe(true);
    await expect(free).resolves.toMatchObject({ body: 'free' });
  });

  it('close rejects what waits with NotConnectedError and refuses new requests until open', async () => {
    const pending = new PendingReplies('test');
    const waiting = pending.wait('test:svc', request.id, 'c-1', { timeoutMs: 10_000 }, () => Promise.resolve());
    pending.close();
    await expect(waiting).rejects.toBeInstanceOf(NotConnectedError);
    await expect(pending.wait('test:svc', request.id, 'c-2', { timeoutMs: 10_000 }, () => Promise.resolve())).rejects.toBeInstanceOf(NotConnectedError);
    pending.open();
    const reopened = pending.wait('test:svc', request.id, 'c-2', { timeoutMs: 10_000 }, () => Promise.resolve());
    pending.reply('c-2', createMessage('ok'));
    await expect(reopened).resolves.toMatchObject({ body: 'ok' });
  });
});
