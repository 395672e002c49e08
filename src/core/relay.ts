import { Observable, type Subscriber } from 'rxjs';

/**
 * A hot source with exactly one subscriber at a time: `next` calls that subscriber directly. What the
 * runtime pushes deliveries into (a route's intake, a fan-out's branch inputs), where an RxJS `Subject`
 * — built for many subscribers — allocated per value (a copy of its observer list and its iterator:
 * ~450 bytes a message over a 5-step route with a choice, measured in issue 17).
 *
 * Contract: values before a subscriber or after it unsubscribed are dropped (as a `Subject`'s are);
 * after `complete`/`error` (then `stopped`) nothing more is passed on and a late subscriber is
 * completed (or errored) at once; a second subscriber while one is subscribed is an error of that
 * second subscription — two would silently split the stream.
 */
export class Relay<T> extends Observable<T> {
  private target: Subscriber<T> | undefined = undefined;
  private ended: { readonly error: unknown } | 'completed' | undefined = undefined;

  constructor() {
    super((subscriber) => {
      const ended = this.ended;
      if (ended === 'completed') subscriber.complete();
      else if (ended !== undefined) subscriber.error(ended.error);
      else if (this.target !== undefined) subscriber.error(new Error('Relay: it has a subscriber already (one at a time)'));
      else {
        this.target = subscriber;
        return () => {
          if (this.target === subscriber) this.target = undefined;
        };
      }
      return undefined;
    });
  }

  /** Whether it has completed or errored. */
  get stopped(): boolean {
    return this.ended !== undefined;
  }

  next(value: T): void {
    if (this.ended === undefined) this.target?.next(value);
  }

  error(error: unknown): void {
    if (this.ended !== undefined) return;
    this.ended = { error };
    const target = this.target;
    this.target = undefined;
    target?.error(error);
  }

  complete(): void {
    if (this.ended !== undefined) return;
    this.ended = 'completed';
    const target = this.target;
    this.target = undefined;
    target?.complete();
  }
}
