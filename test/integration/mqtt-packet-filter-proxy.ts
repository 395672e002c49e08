import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** MQTT control packet types (the high nibble of the fixed header's first byte). */
export const PUBREC = 5;

/**
 * A TCP proxy in front of an MQTT broker that can drop chosen packet types sent by the client — the
 * way to make "the client sent its PUBREC, the broker never got it" happen on purpose. Broker →
 * client bytes pass untouched; client → broker bytes are split into packets (fixed header +
 * remaining length) and forwarded unless `drop` holds their type.
 */
export class PacketFilterProxy {
  readonly drop = new Set<number>();
  /** Packets dropped so far, by type. */
  readonly dropped = new Map<number, number>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly upstream: { readonly host: string; readonly port: number }) {}

  async start(): Promise<string> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private accept(client: Socket): void {
    const broker = createConnection(this.upstream);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    this.sockets.add(client).add(broker);
    const end = (): void => {
      client.destroy();
      broker.destroy();
      this.sockets.delete(client);
      this.sockets.delete(broker);
    };
    client.on('close', end).on('error', end);
    broker.on('close', end).on('error', end);
    broker.on('data', (chunk: Buffer) => client.write(chunk));
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const length = packetLength(pending);
        if (length === undefined || pending.length < length) return;
        const packet = pending.subarray(0, length);
        pending = pending.subarray(length);
        const type = (packet[0] as number) >> 4;
        if (this.drop.has(type)) this.dropped.set(type, (this.dropped.get(type) ?? 0) + 1);
        else broker.write(packet);
      }
    });
  }
}

/** Total length of the packet at the start of `buffer` (fixed header included), if known yet. */
function packetLength(buffer: Buffer): number | undefined {
  let remaining = 0;
  for (let i = 1; i <= 4; i += 1) {
    const byte = buffer[i];
    if (byte === undefined) return undefined;
    remaining += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return 1 + i + remaining;
  }
  throw new Error('malformed MQTT remaining length');
}
