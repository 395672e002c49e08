import type { Delivery } from '../core/index.ts';

/** One correlation group being aggregated. */
export interface AggregationGroup<A> {
  readonly key: string;
  readonly value: A;
  /** The inputs aggregated so far: settled together when the aggregate is. */
  readonly inputs: readonly Delivery[];
  readonly firstAt: number;
}

/**
 * Where open groups live (Camel's AggregationRepository). Synchronous: the aggregator processes each
 * input in one turn, which keeps groups consistent without locks. Durable stores belong behind a
 * write-behind cache implementing this interface.
 */
export interface AggregationRepository<A> {
  get(key: string): AggregationGroup<A> | undefined;
  put(group: AggregationGroup<A>): void;
  remove(key: string): void;
  keys(): Iterable<string>;
  readonly size: number;
}

/** The default repository: a Map. Groups are lost with the process, their inputs unacked (redelivered). */
export class InMemoryAggregationRepository<A> implements AggregationRepository<A> {
  private readonly groups = new Map<string, AggregationGroup<A>>();

  get(key: string): AggregationGroup<A> | undefined {
    return this.groups.get(key);
  }

  put(group: AggregationGroup<A>): void {
    this.groups.set(group.key, group);
  }

  remove(key: string): void {
    this.groups.delete(key);
  }

  keys(): Iterable<string> {
    return [...this.groups.keys()];
  }

  get size(): number {
    return this.groups.size;
  }
}
