import { InMemoryPersistentAggregationRepository } from '../../src/stores/persistent-aggregation-repository.ts';
import { describeAggregationRepository, type Probe } from '../support/aggregation-repository-suite.ts';

// The shared suite against the reference implementation. An in-memory repository cannot share its
// state with a second instance, so `open` hands every caller of one namespace the same instance (made
// with the first caller's options): the "two instances" cases run on one, and check it serialises.
// No crash case: nothing survives the process.
describeAggregationRepository(
  'in memory',
  () => {
    const instances = new Map<string, InMemoryPersistentAggregationRepository<Probe>>();
    return Promise.resolve({
      open: ({ namespace, now, seenRetentionMs }) => {
        let instance = instances.get(namespace);
        if (instance === undefined) {
          instance = new InMemoryPersistentAggregationRepository<Probe>({ now, seenRetentionMs });
          instances.set(namespace, instance);
        }
        return Promise.resolve(instance);
      },
      cleanup: () => {
        instances.clear();
        return Promise.resolve();
      },
    });
  },
  { seenRetention: true },
);
