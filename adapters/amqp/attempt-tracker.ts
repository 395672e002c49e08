/**
 * This process's count of deliveries per message, for queues whose broker does not count them
 * (classic queues only flag `redelivered`): the attempt at which a message was last nacked, keyed by
 * queue and message id. Bounded (oldest entries dropped first), so it never grows without limit;
 * with several consumer processes it is a lower bound, and the broker's redelivered flag the floor.
 */
export class AttemptTracker {
  private readonly attempts = new Map<string, number>();

  constructor(private readonly capacity = 10_000) {}

  get size(): number {
    return this.attempts.size;
  }

  record(queue: string, id: string, attempt: number): void {
    const key = `${queue}\0${id}`;
    this.attempts.delete(key);
    this.attempts.set(key, attempt);
    if (this.attempts.size > this.capacity) {
      const oldest = this.attempts.keys().next();
      if (oldest.done !== true) this.attempts.delete(oldest.value);
    }
  }

  last(queue: string, id: string): number | undefined {
    return this.attempts.get(`${queue}\0${id}`);
  }

  forget(queue: string, id: string): void {
    this.attempts.delete(`${queue}\0${id}`);
  }
}
