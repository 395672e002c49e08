import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NatsTransport, type NatsTransportOptions } from '../../adapters/nats/index.ts';

/** The machine's NATS server with JetStream (scripts/services.sh starts it). */
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** Names unique to this run (helper tag `hn`): parallel runs never share a stream. */
export function runTag(label: string): string {
  return `hn_${label}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/** A transport against `url` whose dead letters go to a stream of the test's own. */
export function testTransport(options: NatsTransportOptions = {}): NatsTransport {
  return new NatsTransport({ url: NATS_URL, connectTimeoutMs: 3_000, ...options });
}

/** Fails loudly (never skips) when the NATS server or its JetStream is down. */
export async function requireNats(url: string = NATS_URL): Promise<void> {
  const nc = await connect({ servers: url, timeout: 3_000 }).catch((error: unknown) => {
    throw new Error(`NATS is not reachable at ${url} (start it: scripts/services.sh): ${(error as Error).message}`);
  });
  try {
    await jetstreamManager(nc);
  } finally {
    await nc.close();
  }
}

/** The NATS server's version (`2.9.10`), as it announces itself; fails loudly when it is down. */
export async function natsServerVersion(url: string = NATS_URL): Promise<string> {
  const nc = await connect({ servers: url, timeout: 3_000 }).catch((error: unknown) => {
    throw new Error(`NATS is not reachable at ${url} (start it: scripts/services.sh): ${(error as Error).message}`);
  });
  try {
    return nc.info?.version ?? '0.0.0';
  } finally {
    await nc.close();
  }
}

/** Whether version `a` (`2.10.14`) is at least `b`. */
export function versionAtLeast(a: string, b: string): boolean {
  const parse = (version: string): number[] => version.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i += 1) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}

/** Deletes streams (with their consumers), ignoring the absent ones. */
export async function deleteStreams(names: readonly string[], url: string = NATS_URL): Promise<void> {
  const nc = await connect({ servers: url, timeout: 3_000 });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of names) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}
