/**
 * What to set for a scheme Interchange has an adapter for, said when a route or a publish names it
 * and no transport serves it (the adapters are not loaded unless configured).
 */
const HINTS: Readonly<Record<string, string>> = {
  amqp: "set AMQP_URL=amqp://user:password@host:5672 for `interchange run`, or pass modules: [amqpModule({ url })] (from 'interchange-eip/adapters/amqp') to createIntegration",
  mqtt: "set MQTT_URL=mqtt://host:1883 for `interchange run` (without it, it starts an embedded broker), or pass modules: [mqttModule({ url })] (from 'interchange-eip/adapters/mqtt') to createIntegration",
};

/**
 * The sentence to append to "no transport for scheme X": what to set to get one; '' for a scheme
 * Interchange has no adapter for.
 * @example missingTransportHint('amqp') // "; set AMQP_URL=amqp://… for `interchange run`, or pass modules: [amqpModule({ url })] …"
 */
export function missingTransportHint(scheme: string): string {
  const hint = Object.hasOwn(HINTS, scheme) ? HINTS[scheme] : undefined;
  return hint === undefined ? '' : `; ${hint}`;
}
