import { describe, expect, it } from 'vitest';
import { InMemoryAggregationRepository, type AggregationGroup } from '../../src/stores/aggregation-repository.ts';
import { source } from './harness.ts';

const group = (key: string, value: number[]): AggregationGroup<number[]> => ({ key, value, inputs: [source(value).delivery], firstAt: 0 });

describe('InMemoryAggregationRepository', () => {
  it('stores, replaces and removes groups by key', () => {
    const repository = new InMemoryAggregationRepository<number[]>();
    expect(repository.size).toBe(0);
    expect(repository.get('a')).toBeUndefined();
    repository.put(group('a', [1]));
    repository.put(group('b', [2]));
    repository.put(group('a', [1, 3]));
    expect(repository.size).toBe(2);
    expect(repository.get('a')?.value).toEqual([1, 3]);
    repository.remove('a');
    expect(repository.get('a')).toBeUndefined();
    expect([...repository.keys()]).toEqual(['b']);
  });

  it('lists keys as a snapshot, so groups can be removed while iterating', () => {
    const repository = new InMemoryAggregationRepository<number[]>();
    for (const key of ['a', 'b', 'c']) repository.put(group(key, []));
    const seen: string[] = [];
    for (const key of repository.keys()) {
      seen.push(key);
      repository.remove(key);
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(repository.size).toBe(0);
  });
});
