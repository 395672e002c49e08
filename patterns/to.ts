import { Observable, type Subscription } from 'rxjs';
import { isTemplate, PartialPublishError, resolveEndpointTemplate, scheduleTracked, type Delivery, type Message, type StepContext, type StepFactory } from '../src/core/index.ts';

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
  const uriOf =
    typeof destination === 'function' ? destination : isTemplate(destination) ? (message: Message<T>) => resolveEndpointTemplate(destination, message) : () => destination;
  return (context) => (source) =>
    new Observable<Delivery<T>>((subscriber) => {
      let batch: Delivery<T>[] = [];
      let pending = 0;
      let sourceDone = false;
      const retries = new Set<Subscription>();
      const completeIfIdle = (): void => {
        if (sourceDone && pending === 0 && batch.length === 0) subscriber.complete();
      };
      const send = (deliveries: readonly Delivery<T>[], attempt: number): void => {
        const byUri = new Map<string, Delivery<T>[]>();
        for (const delivery of deliveries) {
          let uri: string;
          try {
            uri = uriOf(delivery.message);
          } catch (error) {
            fail(delivery, error, attempt);
            continue;
          }
          const group = byUri.get(uri);
          if (group === undefined) byUri.set(uri, [delivery]);
          else group.push(delivery);
        }
        for (const [uri, group] of byUri) {
          pending += 1;
          publish(context, uri, group).then(
            () => {
              pending -= 1;
              for (const delivery of group) subscriber.next(delivery);
              completeIfIdle();
            },
            (error: unknown) => {
              // some messages failed alone (e.g. unencodable): the others were confirmed and go on
              if (error instanceof PartialPublishError) group.forEach((delivery, index) => {
                const own = error.failures.get(index);
                if (own === undefined) subscriber.next(delivery);
                else fail(delivery, own, attempt);
              });
              else for (const delivery of group) fail(delivery, error, attempt);
              pending -= 1;
              completeIfIdle();
            },
          );
        }
      };
      const fail = (delivery: Delivery<T>, error: unknown, attempt: number): void => {
        const delay = context.failed(delivery, error, attempt);
        if (delay === undefined) return;
        pending += 1;
        scheduleTracked(context.scheduler, retries, delay, () => {
          pending -= 1;
          send([delivery], attempt + 1);
          completeIfIdle();
        });
      };
      const flush = (): void => {
        // Unsubscribed before the batch went out: its deliveries stay unsettled, for the source to redeliver.
        if (subscriber.closed) return;
        const deliveries = batch;
        batch = [];
        send(deliveries, 1);
        completeIfIdle();
      };
      const subscription = source.subscribe({
        next: (delivery) => {
          if (batch.push(delivery) === 1) queueMicrotask(flush);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          completeIfIdle();
        },
      });
      return () => {
        subscription.unsubscribe();
        for (const retryTimer of retries) retryTimer.unsubscribe();
        retries.clear();
      };
    });
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
