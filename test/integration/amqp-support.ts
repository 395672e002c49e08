import { randomBytes } from 'node:crypto';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { parseEndpoint, silentLogger, type Message } from '../../src/core/index.ts';
import { AmqpTransport, type AmqpTransportOptions } from '../../adapters/amqp/index.ts';
import { sleep, until } from '../support/wait.ts';

/** Test helpers for the AMQP integration and fault tests: the broker URL, unique names, an admin channel. */

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A unique name per call: `it-<label>-<random>`. */
export function uniqueName(label: string): string {
  return `it-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * A raw amqplib connection for checking the broker directly and deleting what a test created.
 * Connecting fails loudly when RabbitMQ is down: these tests never skip.
 */
export class BrokerAdmin {
  private model: ChannelModel | undefined;
  readonly queues = new Set<string>();
  readonly exchanges = new Set<string>();

  async channel(): Promise<Channel> {
    if (this.model === undefined) {
      this.model = await connect(AMQP_URL).catch((error: unknown) => {
        throw new Error(`RabbitMQ is not reachable at ${AMQP_URL}: start it (rabbitmq-server -detached)`, { cause: error });
      });
      const model = this.model;
      model.on('error', () => undefined);
      // a broker restart closes it: the next call connects again
      model.on('close', () => {
        if (this.model === model) this.model = undefined;
      });
    }
    const channel = await this.model.createChannel();
    channel.on('error', () => undefined);
    return channel;
  }

  /** Remembers names to delete in `cleanup`. */
  track(names: { queues?: readonly string[]; exchanges?: readonly string[] }): void {
    for (const queue of names.queues ?? []) this.queues.add(queue);
    for (const exchange of names.exchanges ?? []) this.exchanges.add(exchange);
  }

  async messageCount(queue: string): Promise<number> {
    const channel = await this.channel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async cleanup(): Promise<void> {
    for (const queue of this.queues) {
      const channel = await this.channel();
      await channel.deleteQueue(queue).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    for (const exchange of this.exchanges) {
      const channel = await this.channel();
      await channel.deleteExchange(exchange).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    this.queues.clear();
    this.exchanges.clear();
  }

  async close(): Promise<void> {
    await this.cleanup();
    await this.model?.close().catch(() => undefined);
    this.model = undefined;
  }
}

/** A connected transport on the test broker, quiet unless told otherwise. */
export async function connectedTransport(options: AmqpTransportOptions = {}): Promise<AmqpTransport> {
  const transport = new AmqpTransport({ url: AMQP_URL, connectTimeoutMs: 5_000, ...options }, silentLogger);
  await transport.connect();
  return transport;
}

export { sleep, until };

/**
 * Reads a queue (acking everything) until at least `atLeast` messages have arrived and no more
 * arrive for 200 ms, then returns them: what a route left in its output, duplicates included
 * (`url`: another vhost of the test broker).
 */
export async function readUntilQuiet(queue: string, atLeast: number, timeoutMs: number, url = AMQP_URL): Promise<Message[]> {
  const reader = await connectedTransport({ url });
  const got: Message[] = [];
  const subscription = reader.consume(parseEndpoint(`amqp:queue/${queue}`), { prefetch: 1000 }).subscribe((delivery) => {
    got.push(delivery.message);
    delivery.ack();
  });
  let previous = -1;
  try {
    await until(
      async () => {
        const stable = got.length === previous && got.length >= atLeast;
        previous = got.length;
        await sleep(200);
        return stable;
      },
      () => `read ${got.length} of at least ${atLeast} from ${queue}`,
      timeoutMs,
    );
  } finally {
    subscription.unsubscribe();
    await reader.close();
  }
  return got;
}
