import { createConnection } from 'node:net';
import { defer, switchMap } from 'rxjs';
import { MqttTransport, type MqttTransportOptions } from '../../adapters/mqtt/index.ts';
import { parseEndpoint, type Endpoint, type Logger, type Message, type Transport } from '../../src/core/index.ts';

/** The machine's Mosquitto (MQTT 5). Tests that need it fail — never skip — when it is down. */
export const MOSQUITTO_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';

/** Rejects with a clear message unless something accepts TCP connections at `url`. */
export async function requireBroker(url: string = MOSQUITTO_URL): Promise<void> {
  const { hostname, port } = new URL(url);
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port || 1883) });
    socket.setTimeout(2_000, () => socket.destroy(new Error('timeout')));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', (error) => reject(new Error(`MQTT broker not reachable at ${url}: ${error.message} — start it (mosquitto -d -c /etc/mosquitto/mosquitto.conf)`)));
  });
}

let run = 0;
/** A client id unique to this test run (stable within it). */
export function runClientId(label: string): string {
  run += 1;
  return `it-${label}-${process.pid}-${Date.now().toString(36)}-${run}`;
}

/** Short-lived sessions, so test runs do not pile sessions up in the shared broker. */
export function testTransport(options: MqttTransportOptions & { readonly logger?: Logger }): MqttTransport {
  return new MqttTransport({ sessionExpirySeconds: 600, connectTimeoutMs: 5_000, reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 }, ...options });
}

/**
 * A transport whose `publish` first waits until the destination's consumer session exists
 * (`MqttTransport.provision`, like declaring a queue): MQTT drops messages for sessions that do not
 * exist yet, and the contract publishes before it consumes.
 */
export class ProvisionedEndpoints {
  private readonly pending = new Map<string, Promise<void>>();
  constructor(private readonly provisioner: MqttTransport) {}

  endpoint(uri: string): Endpoint {
    const endpoint = parseEndpoint(uri);
    this.pending.set(endpoint.uri, this.provisioner.provision(endpoint));
    return endpoint;
  }

  wrap(transport: MqttTransport): Transport {
    return {
      scheme: transport.scheme,
      connect: () => transport.connect(),
      close: () => transport.close(),
      // the consumer's session is the one being provisioned: take it over only once provisioning is done
      consume: (endpoint, options) => defer(() => this.pending.get(endpoint.uri) ?? Promise.resolve()).pipe(switchMap(() => transport.consume(endpoint, options))),
      publish: async (endpoint: Endpoint, messages: readonly Message[]) => {
        await this.pending.get(endpoint.uri);
        await transport.publish(endpoint, messages);
      },
    };
  }
}

export { sleep, until as waitFor } from '../support/wait.ts';
