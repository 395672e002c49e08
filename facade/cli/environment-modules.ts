import type { Container, ContainerModule } from 'inversify';
import { amqpModule, AmqpTransport } from '../../adapters/amqp/index.ts';
import { mqttModule, MqttTransport } from '../../adapters/mqtt/index.ts';
import { checkUrlCredentials, parseEndpoint, redactUrl, type StepDefinition } from '../../src/core/index.ts';
import type { RouteSource } from '../../src/dsl/route-definition.ts';

export interface EnvironmentModule {
  readonly module: ContainerModule;
  /** One line for the console, secrets redacted. */
  readonly announcement: string;
}

/** The environment's broker and database URLs (adapters read them as defaults); checked by `environmentModules`. */
export const CREDENTIAL_URLS = ['AMQP_URL', 'MQTT_URL', 'DATABASE_URL', 'REDIS_URL'] as const;

/**
 * Transports configured by the environment, for `interchange run`. A route file's own binding of a
 * transport always wins.
 * - `AMQP_URL`: binds RabbitMQ.
 * - `MQTT_URL`, or any route using `mqtt:`: binds MQTT — to `MQTT_URL`, else to an embedded broker on
 *   loopback, so a first run needs nothing installed.
 * Throws `EndpointError` (the password never in it) when one of `CREDENTIAL_URLS` has a character its
 * user info must percent-encode (`checkUrlCredentials`), whether or not this binds a transport for it.
 */
export function environmentModules(container: Container, routes: readonly RouteSource[] = [], env: NodeJS.ProcessEnv = process.env): EnvironmentModule[] {
  const modules: EnvironmentModule[] = [];
  const amqpUrl = env.AMQP_URL;
  for (const name of CREDENTIAL_URLS) {
    const url = env[name];
    if (url !== undefined) checkUrlCredentials(url, name);
  }
  if (amqpUrl !== undefined && amqpUrl !== '' && !container.isBound(AmqpTransport)) {
    modules.push({ module: amqpModule({ url: amqpUrl }), announcement: `AMQP_URL is set: amqp: endpoints use RabbitMQ at ${redactUrl(amqpUrl)}` });
  }
  const mqttUrl = env.MQTT_URL === '' ? undefined : env.MQTT_URL;
  if ((mqttUrl !== undefined || schemesOf(routes).has('mqtt')) && !container.isBound(MqttTransport)) {
    modules.push(
      mqttUrl === undefined
        ? { module: mqttModule(), announcement: 'no MQTT_URL: mqtt: endpoints use an embedded MQTT broker on loopback (set MQTT_URL to use a real one)' }
        : { module: mqttModule({ url: mqttUrl }), announcement: `MQTT_URL is set: mqtt: endpoints use the broker at ${redactUrl(mqttUrl)}` },
    );
  }
  return modules;
}

/** The schemes routes consume from or send to (statically known destinations). */
function schemesOf(routes: readonly RouteSource[]): Set<string> {
  const schemes = new Set<string>();
  const add = (uri: string): void => {
    try {
      schemes.add(parseEndpoint(uri).scheme);
    } catch {
      // an unparseable URI is reported by route validation, with its route and step
    }
  };
  const walk = (steps: readonly StepDefinition[]): void => {
    for (const step of steps) {
      step.sendsTo.forEach(add);
      step.branches.forEach(walk);
    }
  };
  for (const route of routes) {
    const definition = route.definition();
    add(definition.source);
    walk(definition.steps);
  }
  return schemes;
}
