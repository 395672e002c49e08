import { execFileSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { createMessage } from '../../facade/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { BrokerAdmin, connectedTransport, sleep, uniqueName, until } from '../integration/amqp-support.ts';

// Raises RabbitMQ's memory alarm (watermark near 0) so it blocks publishers, then restores the watermark.
const rabbitmqctl = (...args: string[]): string => execFileSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 60_000 });
const original = rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().').trim().split('\n').at(-1) ?? '0.4';
const restore = (): void => {
  rabbitmqctl('set_vm_memory_high_watermark', /^[0-9.]+$/.test(original) ? original : '0.4');
};
const admin = new BrokerAdmin();
afterAll(async () => {
  restore();
  await admin.close();
});

it('connection.blocked pauses publishing (state "blocked"); unblocked, the held publish is confirmed', async () => {
  const queue = uniqueName('blocked');
  admin.track({ queues: [queue] });
  const transport = await connectedTransport({ topology: { queues: [{ name: queue }] } });
  try {
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, [createMessage({ before: true })]);
    rabbitmqctl('set_vm_memory_high_watermark', '0.0000001');
    // the broker blocks a connection when it next publishes: this one is held
    let settled = false;
    const held = transport.publish(endpoint, [createMessage({ during: true })]).finally(() => {
      settled = true;
    });
    await until(() => transport.status.state === 'blocked', () => `state ${transport.status.state}`, 20_000);
    await sleep(500);
    expect(settled).toBe(false);
    restore();
    await held;
    await until(() => transport.status.state === 'connected', () => `state ${transport.status.state}`, 20_000);
    await until(async () => (await admin.messageCount(queue)) === 2, () => 'expected both messages in the queue');
  } finally {
    restore();
    await transport.close();
  }
});
