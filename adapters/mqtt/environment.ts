import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The MQTT adapter's declaration for `interchange run`: `MQTT_URL`, or any route using `mqtt:`, binds
 * MQTT (unless the route file binds an `MqttTransport` itself) — to `MQTT_URL`, else to an embedded
 * broker on loopback, so a first run needs nothing installed.
 *
 * Cheap to import: the transport (and mqtt.js with it) is imported by `bind`, and only when it may
 * bind, so `bind` resolves asynchronously; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'mqtt',
  variables: ['MQTT_URL'],
  bind: async ({ env, schemes, isBound }) => {
    const url = env.MQTT_URL === '' ? undefined : env.MQTT_URL;
    if (url === undefined && !schemes.has('mqtt')) return undefined;
    const [{ MqttTransport }, { mqttModule }] = await Promise.all([import('./mqtt-transport.ts'), import('./mqtt.module.ts')]);
    if (isBound(MqttTransport)) return undefined;
    return url === undefined
      ? { module: mqttModule(), announcement: 'no MQTT_URL: mqtt: endpoints use an embedded MQTT broker on loopback (set MQTT_URL to use a real one)' }
      : { module: mqttModule({ url }), announcement: `MQTT_URL is set: mqtt: endpoints use the broker at ${redactUrl(url)}` };
  },
};
