import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BufferTransport } from '../../adapters/buffer/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

// One temp directory for the file; every case uses fresh buffer names in it (and a fresh transport).
const directory = mkdtempSync(join(tmpdir(), 'interchange-buffer-contract-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describeTransportContract('buffer', {
  create: async () => {
    const transport = new BufferTransport({ directory, logger: silentLogger, redelivery: { initialMs: 5, maxMs: 20 } });
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`buffer:${name}`),
  boundedEndpoint: (name, capacity) => parseEndpoint(`buffer:${name}?maxEntries=${capacity}`),
  features: {
    guaranteedOrder: true,
    redeliversOnNack: true,
    redeliversUnsettledOnUnsubscribe: true,
    // one consumer per buffer at a time (a second one errors with BufferBusyError)
    competingConsumers: false,
    publishSubscribe: false,
    boundedPublish: true,
    persistentAcrossReconnect: true,
  },
});
