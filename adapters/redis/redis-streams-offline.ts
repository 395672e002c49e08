import type { Redis } from 'ioredis';

/** One pending "the link dropped" per client, shared by every waiter (one `close` listener, however many subscriptions stop at once). */
const drops = new WeakMap<Redis, Promise<false>>();

function linkDrop(client: Redis): Promise<false> {
  let drop = drops.get(client);
  if (drop === undefined) {
    drop = new Promise<false>((resolve) => {
      client.once('close', () => {
        drops.delete(client);
        resolve(false);
      });
    });
    drops.set(client, drop);
  }
  return drop;
}

/**
 * Runs `work` on `client` only while its link is up: `false` at once when the client is not `ready`,
 * or as soon as the link drops before `work` has settled; else `true` once it has (its rejection
 * rejects). The transport's clients queue commands through an outage (`maxRetriesPerRequest: null`),
 * so shutdown work waiting on them would wait for Redis to come back; with this it does not.
 * @example if (!(await whileOnline(client, () => client.quit()))) client.disconnect();
 */
export async function whileOnline(client: Redis, work: () => Promise<unknown>): Promise<boolean> {
  if (client.status !== 'ready') return false;
  return Promise.race([work().then(() => true), linkDrop(client)]);
}
