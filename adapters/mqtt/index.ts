export * from './mqtt-transport.ts';
export * from './mqtt-options.ts';
export * from './mqtt.module.ts';
export * from './embedded-broker.ts';
export * from './topic-pattern.ts';
export * from './message-codec.ts';
export * from './mqtt-subscription.ts';
export * from './forward-store.ts';
