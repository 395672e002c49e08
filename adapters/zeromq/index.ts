export * from './zeromq-transport.ts';
export * from './zeromq.module.ts';
export * from './zeromq-options.ts';
export * from './zeromq-errors.ts';
export { resolveZeroMqEndpoint, type ZeroMqInboundHeaders, type ZeroMqPattern, type ZeroMqTarget } from './zeromq-endpoint.ts';
export { decodeFrames, encodeFrames, MAX_ENVELOPE_BYTES, MAX_HEADER_CHARS, MAX_ID_BYTES, TOPIC_HEADER, type InboundFrames } from './zeromq-codec.ts';
export { environment } from './environment.ts';
