import { deliveryStep, deriveMessage, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Splitter: one message per item. Parts get deterministic ids (`<parent id>/<index>`), causation =
 * parent, correlation kept, and headers `splitIndex`/`splitSize`. The source is acked once every part
 * has settled (confirmed, filtered or dead-lettered) and rejected if any part was rejected.
 * No items: the source is acked at once.
 * @example from('memory:orders').split((m) => m.body.lines).to('memory:order-lines')
 */
export function split<T, P>(items: (message: Message<T>) => Iterable<P>): StepFactory<T, P> {
  return (context) =>
    deliveryStep<T, P>(context, (delivery, emit) => {
      const bodies = [...items(delivery.message)];
      const size = bodies.length;
      const parts = bodies.map((body, index) => deriveMessage(delivery.message, body, { key: String(index), headers: { splitIndex: index, splitSize: size } }));
      for (const part of delivery.fork(parts)) emit(part);
    });
}

/** `.split(items)`: the splitter's DSL entry (kind `split`). */
export function splitStep<T, P>(items: (message: Message<T>) => Iterable<P>): StepSpec<T, P> {
  return stepSpec('split', split(items));
}
