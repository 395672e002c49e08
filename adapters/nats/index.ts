export * from './nats-transport.ts';
export * from './nats-options.ts';
export * from './nats-errors.ts';
export * from './nats.module.ts';
export { natsTarget, natsEndpointOptions, defaultConsumerName, type CoreTarget, type JetStreamTarget, type NatsEndpointOptions } from './nats-endpoint.ts';
export { encodeMessage, decodeMessage, isReservedHeaderName, MSG_ID, type HeaderMapping, type InboundHeaders, type InboundPolicy } from './nats-codec.ts';
export { DEFAULT_NATS_URL, type NatsTransportStatus } from './nats-connection.ts';
export { environment } from './environment.ts';
