import { hostname } from 'node:os';
import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { MqttTransportOptions } from './mqtt-options.ts';
import { MqttTransport } from './mqtt-transport.ts';

/**
 * Binds the MQTT transport (`mqtt:`) into the `Transport` multi-binding. The broker is `url`, else
 * the `MQTT_URL` environment variable, else an embedded in-process broker on loopback (started on
 * `connect`, announced in the log). The client id defaults to `MQTT_CLIENT_ID`, else
 * `interchange-<hostname>` — stable, so persistent sessions survive a restart.
 * Throws `MqttConfigError` at resolution for invalid options.
 * @example createIntegration({ routes, modules: [mqttModule({ url: 'mqtt://127.0.0.1:1883', clientId: 'telemetry-1' })] })
 */
export function mqttModule(options: MqttTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(MqttTransport)
      .toDynamicValue((context) => {
        const url = options.url ?? (process.env.MQTT_URL || undefined);
        const clientId = options.clientId ?? (process.env.MQTT_CLIENT_ID || `interchange-${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 48));
        const logger = context.get<Logger>(Logger, { optional: true });
        return new MqttTransport({ ...options, clientId, ...(url === undefined ? {} : { url }), ...(logger === undefined ? {} : { logger }) });
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(MqttTransport);
  });
}
