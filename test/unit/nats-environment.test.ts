import { describe, expect, it } from 'vitest';
import { environment } from '../../adapters/nats/environment.ts';

const context = (env: Record<string, string | undefined>, schemes: string[] = [], bound = false) => ({ env, schemes: new Set(schemes), isBound: () => bound });

describe('nats environment (interchange run)', () => {
  it('binds NATS_URL, redacted in the announcement', async () => {
    const binding = await environment.bind?.(context({ NATS_URL: 'nats://user:secret@nats.local:4222' }));
    expect(binding?.announcement).toBe('NATS_URL is set: nats: endpoints use the server at nats://user:***@nats.local:4222');
    expect(environment.variables).toEqual(['NATS_URL']);
  });

  it('binds the local server for routes using nats: without NATS_URL; nothing otherwise, nor when the route file bound it', async () => {
    expect((await environment.bind?.(context({}, ['nats'])))?.announcement).toMatch(/nats:\/\/127\.0\.0\.1:4222/);
    expect(await environment.bind?.(context({}, ['mqtt']))).toBeUndefined();
    expect(await environment.bind?.(context({ NATS_URL: 'nats://x:4222' }, [], true))).toBeUndefined();
  });
});
