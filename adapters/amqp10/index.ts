export * from './amqp10-transport.ts';
export * from './amqp10.module.ts';
export * from './amqp10-options.ts';
export * from './amqp10-errors.ts';
export { resolveAmqp10Target, type Amqp10Target } from './amqp10-endpoint.ts';
export { decodeMessage, encodeMessage, isReservedHeaderName, MAX_BODY_DEPTH, MAX_BODY_ENTRIES, MAX_ID_BYTES, MAX_PROPERTIES, MAX_PROPERTIES_BYTES, type InboundProperties, type MessageOrigin, type EncodeSettings } from './amqp10-codec.ts';
export { environment } from './environment.ts';
