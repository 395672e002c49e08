export * from './test-kit.ts';
export * from './mock-endpoint.ts';
export * from './test-integration.ts';
export * from './advice.ts';
