import { defer, ignoreElements, merge, tap, type Observable } from 'rxjs';
import type { Delivery } from './delivery.ts';
import { deliveryStep } from './delivery-step.ts';
import { Relay } from './relay.ts';
import type { AnyStep, StepContext } from './step.ts';

/**
 * Runs deliveries through several branches and merges what comes out of them (content-based router,
 * multicast). `dispatch` hands each incoming delivery to zero or more branch inputs by index; it runs
 * inside `deliveryStep`, so a throw fails that one delivery through the route's error handler.
 * Branches complete once the source has completed and the dispatcher is idle.
 */
export function fanOut(
  context: StepContext,
  branches: readonly AnyStep[],
  dispatch: (delivery: Delivery, inputs: readonly Relay<Delivery>[]) => void,
): AnyStep {
  return (source) =>
    defer(() => {
      // each branch input is subscribed once, by its branch: a Relay, no Subject's per-value allocation
      const inputs = branches.map(() => new Relay<Delivery>());
      const outputs: Observable<Delivery>[] = inputs.map((input, index) => input.pipe(branches[index] as AnyStep));
      const dispatcher = source.pipe(
        deliveryStep<unknown, never>(context, (delivery) => dispatch(delivery, inputs)),
        tap({ complete: () => inputs.forEach((input) => input.complete()) }),
        ignoreElements(),
      );
      return merge(...outputs, dispatcher);
    });
}
