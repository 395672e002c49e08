import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/index.ts';
import { openDatabase, PostgresDelayedMessageStore, type Database } from '../../adapters/postgres/index.ts';
import { ChildScript } from '../support/child-script.ts';
import { POSTGRES_URL, until } from '../unit/postgres/support.ts';

// The durable delayer on PostgreSQL (127.0.0.1:5432) across a crash: a child process stores delayed
// messages, is killed with SIGKILL while most are still held, and a new child resumes them.

const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const table = `hb_delay_restart_${run}`;
const arrivals = `hb_delay_arrivals_${run}`;
const KEY = 'hb-restart/hold';
let db: Database;

beforeAll(async () => {
  db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  await db.query(`CREATE TABLE public."${arrivals}" (n integer PRIMARY KEY, due_at bigint NOT NULL, arrived_at bigint NOT NULL, times integer NOT NULL)`);
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS public."${arrivals}"`);
  await db.query(`DROP TABLE IF EXISTS public."${table}"`);
  await db.close();
});

async function startChild(mode: 'send' | 'resume', count = 0): Promise<ChildScript> {
  const child = new ChildScript('test/integration/delay-restart-child.ts', [POSTGRES_URL, table, arrivals, mode, String(count)]);
  await until(() => child.lines.includes('started'), () => `delay child did not start: ${child.lines.join(' | ')}`, 30_000);
  return child;
}

interface Arrival {
  n: number;
  due_at: string;
  arrived_at: string;
  times: number;
}

const arrived = async (): Promise<Arrival[]> => (await db.query<Arrival>(`SELECT n, due_at, arrived_at, times FROM public."${arrivals}" ORDER BY n`)).rows;

it('killed with SIGKILL while messages are delayed, a restarted instance delivers every one, none before its due time, on time once it runs', async () => {
  const total = 40;
  const first = await startChild('send', total);
  let restarted: ChildScript | undefined;
  try {
    await until(() => first.lines.includes('sent'), () => `first child: ${first.lines.join(' | ')}`, 30_000);
    await until(async () => (await arrived()).length >= 3, () => 'the first child delivered nothing', 30_000); // some went on before the crash…
    await first.kill('SIGKILL');
    const store = new PostgresDelayedMessageStore(db, { table });
    const before = (await arrived()).length;
    expect(await store.count(KEY)).toBeGreaterThanOrEqual(total - before); // …the rest is in the store (a message out at the kill is in both)
    expect(before).toBeLessThan(total);

    restarted = await startChild('resume');
    const restartedAt = Date.now();
    await until(async () => (await arrived()).length === total, () => `restarted child: ${restarted?.lines.join(' | ')}`, 30_000);
    await until(async () => (await store.count(KEY)) === 0, () => 'the store still holds messages', 10_000);

    const rows = await arrived();
    expect(rows.map((row) => row.n)).toEqual(Array.from({ length: total }, (_, n) => n)); // none lost
    for (const row of rows) {
      const due = Number(row.due_at);
      const at = Number(row.arrived_at);
      expect(at, `message ${row.n} arrived before its due time`).toBeGreaterThanOrEqual(due);
      // due while an instance ran: on time (the poller wakes at the due time); due while none ran: at the restart
      expect(at - Math.max(due, restartedAt), `message ${row.n} was late`).toBeLessThan(1_500);
    }
    expect(rows.filter((row) => row.times > 1).length).toBeLessThanOrEqual(1); // a duplicate only for one out at the kill
  } finally {
    await first.kill('SIGKILL');
    await restarted?.kill('SIGTERM');
  }
});
