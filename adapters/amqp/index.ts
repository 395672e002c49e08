export * from './amqp-transport.ts';
export * from './amqp.module.ts';
export * from './amqp-options.ts';
export * from './amqp-topology.ts';
export * from './amqp-errors.ts';
export * from './amqp-endpoint.ts';
export { AmqpConnectionManager, type AmqpConnectionState, type AmqpConnectionStatus } from './amqp-connection.ts';
export { CodecError, decodeMessage, encodeMessage } from './amqp-codec.ts';
export { DIRECT_REPLY_TO } from './amqp-request-reply.ts';
