export { BufferTransport, type BufferTransportStatus } from './buffer-transport.ts';
export { bufferModule } from './buffer.module.ts';
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_REDELIVERY, DEFAULT_SEGMENT_BYTES, bufferEndpointOptionsSchema, bufferTransportOptionsSchema, type BufferTransportOptions } from './buffer-options.ts';
export type { BufferStats } from './buffer-types.ts';
export { BufferBusyError, BufferLockedError, BufferRecordError, BufferUnencodableError, BufferWriteError } from './buffer-errors.ts';
export { DEFAULT_BUFFER_DIR, environment } from './buffer-environment.ts';
