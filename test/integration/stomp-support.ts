import amqp from 'amqplib';
import { StompTransport, type StompTransportOptions } from '../../adapters/stomp/index.ts';
import type { Logger } from '../../src/core/index.ts';

/** RabbitMQ's STOMP plugin and ActiveMQ's STOMP connector on this machine (tests fail, never skip, when one is down). */
export const RABBITMQ_STOMP_URL = process.env.STOMP_URL ?? 'stomp://guest:guest@127.0.0.1:61613';
export const ACTIVEMQ_STOMP_URL = process.env.ACTIVEMQ_STOMP_URL ?? 'stomp://127.0.0.1:61623';
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A name prefix unique to this run: every queue and topic the STOMP tests create starts with it. */
export function runTag(label: string): string {
  return `hS-${label}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A quiet logger that keeps what it was told (tests assert on warnings). */
export function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  };
  return { lines, info: record('info'), warn: record('warn'), error: record('error') };
}

export async function connectedTransport(options: StompTransportOptions, log: Logger = recordingLogger()): Promise<StompTransport> {
  const transport = new StompTransport({ connectTimeoutMs: 10_000, ...options }, log);
  await transport.connect();
  return transport;
}

/** Deletes RabbitMQ queues by name (what `/queue/…` SENDs and SUBSCRIBEs declared), over AMQP 0-9-1. */
export async function deleteRabbitQueues(names: Iterable<string>): Promise<void> {
  const list = [...names];
  if (list.length === 0) return;
  const connection = await amqp.connect(AMQP_URL);
  try {
    for (const name of list) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

/** How many messages a RabbitMQ queue holds (ready), over AMQP 0-9-1; undefined when it does not exist. */
export async function rabbitQueueDepth(name: string): Promise<number | undefined> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    const ok = await channel.checkQueue(name).catch(() => undefined);
    return ok?.messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}
