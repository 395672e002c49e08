export * from './test-kit.ts';
export * from './mock-endpoint.ts';
export * from './test-integration.ts';
export * from './advice.ts';
export { describeTransportContract, type ContractSetup, type TransportFeatures } from './transport-contract.ts';
