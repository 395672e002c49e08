// Child process of delay-restart.test.ts: an integration whose route holds messages in a durable
// delayer on PostgreSQL, then records each arrival in a table.
// Arguments: <database url> <store table> <arrivals table> <mode: send|resume> [<count>].
// `send`: sends <count> messages `{ n }` whose `deliverAt` header is spread from 1.5 s after now,
// 150 ms apart, and prints "sent" once every one is stored. Both modes print "started" once the
// route runs; the parent kills the process (SIGKILL) whenever it likes.
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { silentLogger } from '../../src/core/index.ts';
import { openDatabase, PostgresDelayedMessageStore } from '../../adapters/postgres/index.ts';

const [databaseUrl = '', table = '', arrivals = '', mode = 'resume', count = '0'] = process.argv.slice(2);
const db = await openDatabase({ url: databaseUrl, log: silentLogger });
const store = await PostgresDelayedMessageStore.open(db, { table });
const { kit } = await startTestIntegration({
  routes: [
    from<{ n: number }>('memory:hb-delay-restart-in', { id: 'hb-restart' })
      .delay((m) => new Date(Number(m.headers.deliverAt)), { id: 'hold', store, leaseMs: 1_000, pollIntervalMs: 200 })
      .process(async (m) => {
        await db.query(
          `INSERT INTO public."${arrivals}" (n, due_at, arrived_at, times) VALUES ($1, $2, $3, 1) ON CONFLICT (n) DO UPDATE SET times = "${arrivals}".times + 1`,
          [m.body.n, Number(m.headers.deliverAt), Date.now()],
        );
      })
      .to('memory:hb-delay-restart-done?type=pubsub'),
  ],
});
process.stdout.write('started\n');
if (mode === 'send') {
  const start = Date.now() + 1_500;
  await Promise.all(Array.from({ length: Number(count) }, (_, n) => kit.send('memory:hb-delay-restart-in', { n }, { deliverAt: start + n * 150 })));
  while ((await store.count('hb-restart/hold')) + Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM public."${arrivals}"`)).rows[0]?.n) < Number(count)) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.stdout.write('sent\n');
}
