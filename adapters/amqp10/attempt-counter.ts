/**
 * This process's count of deliveries per message, for brokers that do not count them (RabbitMQ 3.10's
 * AMQP 1.0 plugin sets only `first-acquirer`): the attempt at which a message was last released,
 * keyed by address and message id. Bounded (oldest entries dropped first); with several consumer
 * processes it is a lower bound, and `first-acquirer: false` the floor (attempt ≥ 2).
 */
export class AttemptCounter {
  private readonly attempts = new Map<string, number>();

  constructor(private readonly capacity = 10_000) {}

  get size(): number {
    return this.attempts.size;
  }

  record(address: string, id: string, attempt: number): void {
    const key = `${address}\0${id}`;
    this.attempts.delete(key);
    this.attempts.set(key, attempt);
    if (this.attempts.size > this.capacity) {
      const oldest = this.attempts.keys().next();
      if (oldest.done !== true) this.attempts.delete(oldest.value);
    }
  }

  last(address: string, id: string): number | undefined {
    return this.attempts.size === 0 ? undefined : this.attempts.get(`${address}\0${id}`);
  }

  forget(address: string, id: string): void {
    if (this.attempts.size > 0) this.attempts.delete(`${address}\0${id}`);
  }
}
