import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `environmentModules` in a fresh Node process (a clean module cache) with `env`, and reports
 * the announcements and which client libraries (CommonJS, so visible in `require.cache`) got loaded.
 */
async function environmentIn(env: Record<string, string>): Promise<{ announcements: string[]; loaded: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    const { Container } = await import('inversify');
    const { environmentModules } = await import('./facade/cli/environment-modules.ts');
    const found = await environmentModules(new Container(), [], JSON.parse(process.env.PROBE_ENV));
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const loaded = ['amqplib', 'mqtt', 'pg', 'ioredis'].filter((name) => cache.some((path) => path.includes('/node_modules/' + name + '/')));
    process.stdout.write(JSON.stringify({ announcements: found.map((entry) => entry.announcement), loaded }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { PATH: process.env.PATH, PROBE_ENV: JSON.stringify(env) },
  });
  return JSON.parse(stdout) as { announcements: string[]; loaded: string[] };
}

describe('interchange run loads an adapter’s client library only when it binds the adapter', () => {
  it('loads none of amqplib, mqtt.js, pg, ioredis when the environment binds nothing (DATABASE_URL and REDIS_URL are only checked)', async () => {
    const found = await environmentIn({ DATABASE_URL: 'postgres://app:pw@db.local/app', REDIS_URL: 'redis://cache.local:6379' });
    expect(found).toEqual({ announcements: [], loaded: [] });
  }, 20_000);

  it('loads amqplib alone for AMQP_URL, mqtt.js alone for MQTT_URL', async () => {
    const amqp = await environmentIn({ AMQP_URL: 'amqp://rabbit.local:5672' });
    expect(amqp).toEqual({ announcements: ['AMQP_URL is set: amqp: endpoints use RabbitMQ at amqp://rabbit.local:5672'], loaded: ['amqplib'] });
    const mqtt = await environmentIn({ MQTT_URL: 'mqtt://broker.local:1883' });
    expect(mqtt).toEqual({ announcements: ['MQTT_URL is set: mqtt: endpoints use the broker at mqtt://broker.local:1883'], loaded: ['mqtt'] });
  }, 20_000);
});
