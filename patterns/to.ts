import { isTemplate, PartialPublishError, resolveEndpointTemplate, stepSpec, type Delivery, type Message, type StepContext, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';
import { validate } from './validate.ts';

export type Destination<T> = string | ((message: Message<T>) => string);

/**
 * Sends each message to an endpoint and passes it on once the destination has confirmed it.
 * `{name}` placeholders in the URI are filled from headers, then body fields.
 *
 * Throughput: deliveries arriving in the same tick are published as one batch per URI (one
 * confirm wait for many messages); the batch is bounded by the route's prefetch. A failed batch
 * fails each of its deliveries on its own, so the error handler may retry or dead-letter one by one;
 * a `PartialPublishError` fails only the messages it names, the others were confirmed and go on.
 * @example from('memory:orders').to('amqp:exchange/orders?routingKey=order.{region}')
 */
export function to<T>(destination: Destination<T>): StepFactory<T, T> {
  // a static URI (the usual case): the whole batch is one group, no URI resolved per delivery
  const fixed = typeof destination === 'string' && !isTemplate(destination) ? destination : undefined;
  const uriOf =
    typeof destination === 'function' ? destination : isTemplate(destination) ? (message: Message<T>) => resolveEndpointTemplate(destination, message) : () => destination;
  return (context) =>
    stepLifecycle<T, T>(context, (step) => {
      let batch: Delivery<T>[] = [];
      /** One publish of a group to its URI; each delivery goes on once confirmed, or fails on its own. */
      const publishGroup = (uri: string, group: readonly Delivery<T>[], attempt: number): void => {
        step.begin();
        publish(context, uri, group).then(
          () => {
            for (const delivery of group) step.emit(delivery);
            step.end();
          },
          (error: unknown) => {
            // some messages failed alone (e.g. unencodable): the others were confirmed and go on
            if (error instanceof PartialPublishError) group.forEach((delivery, index) => {
              const own = error.failures.get(index);
              if (own === undefined) step.emit(delivery);
              else step.fail(delivery, own, attempt, resend);
            });
            else for (const delivery of group) step.fail(delivery, error, attempt, resend);
            step.end();
          },
        );
      };
      const send = (deliveries: readonly Delivery<T>[], attempt: number): void => {
        if (fixed !== undefined) {
          publishGroup(fixed, deliveries, attempt);
          return;
        }
        const byUri = new Map<string, Delivery<T>[]>();
        for (const delivery of deliveries) {
          let uri: string;
          try {
            uri = uriOf(delivery.message);
          } catch (error) {
            step.fail(delivery, error, attempt, resend);
            continue;
          }
          const group = byUri.get(uri);
          if (group === undefined) byUri.set(uri, [delivery]);
          else group.push(delivery);
        }
        for (const [uri, group] of byUri) publishGroup(uri, group, attempt);
      };
      const resend = (delivery: Delivery<T>, attempt: number): void => send([delivery], attempt);
      // A batch waiting for its flush is pending work: the step does not complete before it went out.
      const flush = (): void => {
        // Unsubscribed before the batch went out: its deliveries stay unsettled, for the source to redeliver.
        if (step.closed) return;
        const deliveries = batch;
        batch = [];
        send(deliveries, 1);
        step.end();
      };
      return {
        next: (delivery) => {
          if (batch.push(delivery) === 1) {
            step.begin();
            queueMicrotask(flush);
          }
        },
      };
    });
}

/** `.to(destination, { contract })`: the sender's options in the DSL. */
export interface ToStepOptions {
  /** Validate each body against this contract first: an invalid one fails (never retried) and is never sent. */
  readonly contract?: string;
}

/**
 * `.to(destination, { contract })`: the sender's DSL entry (kind `to`; sends, to `destination` when it
 * is a static URI). With `contract`, an outbound `validate` runs first, in the same step.
 */
export function toStep<T>(destination: Destination<T>, { contract }: ToStepOptions = {}): StepSpec<T, T> {
  const send = to(destination);
  const sendsTo = typeof destination === 'string' && !isTemplate(destination) ? [destination] : [];
  const destinations = typeof destination === 'string' ? [destination] : [];
  if (contract === undefined) return stepSpec('to', send, { sends: true, sendsTo, destinations });
  const check = validate<T>(contract, { direction: 'outbound' });
  return stepSpec<T, T>(
    'to',
    (context) => {
      const validated = check(context);
      const sent = send(context);
      return (source) => sent(validated(source));
    },
    { sends: true, sendsTo, destinations, contract },
  );
}

function publish<T>(context: StepContext, uri: string, deliveries: readonly Delivery<T>[]): Promise<void> {
  try {
    return context.publish(
      uri,
      deliveries.map((delivery) => delivery.message),
    );
  } catch (error) {
    return Promise.reject(error);
  }
}
