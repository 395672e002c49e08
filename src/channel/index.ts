export * from './memory-transport.ts';
export * from './memory-options.ts';
export * from './memory-queue.ts';
export * from './memory.module.ts';
export * from './unsettled-list.ts';
