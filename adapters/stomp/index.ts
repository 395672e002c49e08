export * from './stomp-transport.ts';
export * from './stomp-options.ts';
export * from './stomp-errors.ts';
export * from './stomp.module.ts';
export { resolveStompTarget, type StompTarget, type DestinationKind } from './stomp-endpoint.ts';
export { encodeFrame, decodeFrame, isReservedHeaderName, isWireReserved, ID_HEADER, TYPES_HEADER, ESCAPED_PREFIX, DESTINATION_HEADER, type EncodedFrame, type InboundPolicy } from './stomp-codec.ts';
export { deadLetterHeaders } from './stomp-consumer.ts';
export type { BrokerFlavour } from './stomp-link.ts';
export { environment } from './environment.ts';
