/**
 * This process's count of deliveries per message, for brokers that do not count them (RabbitMQ 3.10's
 * AMQP 1.0 plugin sets only `first-acquirer`): the attempt at which a message was last released,
 * keyed by address and a stable message key (its id, or a digest of its bytes when it has no usable
 * id). With several consumer processes it is a lower bound, and `first-acquirer: false` the floor
 * (attempt ≥ 2).
 *
 * Bounded: at `capacity` entries, the least recently recorded one is dropped only when it was last
 * recorded over `staleMs` ago; otherwise `record` refuses (returns false) — the caller then
 * dead-letters instead of releasing, so no message is released without being counted (dropping a
 * live count would let a poison message come back at attempt 2 forever).
 */
export class AttemptCounter {
  private readonly attempts = new Map<string, { attempt: number; at: number }>();

  constructor(
    private readonly capacity = 10_000,
    private readonly staleMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.attempts.size;
  }

  /** Whether the attempt was recorded (false: full of live counts — dead-letter rather than release). */
  record(address: string, key: string, attempt: number): boolean {
    const entry = `${address}\0${key}`;
    const at = this.now();
    if (!this.attempts.delete(entry) && this.attempts.size >= this.capacity) {
      const oldest = this.attempts.entries().next();
      if (oldest.done === true || at - oldest.value[1].at < this.staleMs) return false;
      this.attempts.delete(oldest.value[0]);
    }
    this.attempts.set(entry, { attempt, at });
    return true;
  }

  last(address: string, key: string): number | undefined {
    return this.attempts.size === 0 ? undefined : this.attempts.get(`${address}\0${key}`)?.attempt;
  }

  forget(address: string, key: string): void {
    if (this.attempts.size > 0) this.attempts.delete(`${address}\0${key}`);
  }
}
