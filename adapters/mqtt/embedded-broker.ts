import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from '../../src/core/index.ts';

export interface EmbeddedBroker {
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process MQTT broker (aedes, MQTT 3.1.1 and 5 subset; memory persistence: nothing
 * survives the process) listening on 127.0.0.1 only — never on a public interface — and logs that it
 * did. `port` 0 (default) picks a free port.
 * @example const broker = await startEmbeddedBroker({ log: consoleLogger }); new MqttTransport({ url: broker.url })
 */
export async function startEmbeddedBroker({ port = 0, log }: { port?: number; log?: Logger } = {}): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  log?.info(`embedded MQTT broker (aedes) listening on ${url} — loopback only, in memory; set MQTT_URL to use a real broker`);
  return {
    url,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
