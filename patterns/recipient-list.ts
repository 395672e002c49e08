import { deliveryStep, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Recipient list: sends each message to every endpoint `recipients` names for it, all at once, and
 * passes it on when every destination has confirmed. An empty list passes it on unsent.
 * Any failed send fails the message (a retry sends to every recipient again: at-least-once).
 * @example recipientList((m) => m.body.priority === 'high' ? ['memory:audit', 'memory:pager'] : ['memory:audit'])
 */
export function recipientList<T>(recipients: (message: Message<T>) => readonly string[]): StepFactory<T, T> {
  return (context) =>
    deliveryStep<T, T>(context, async (delivery, emit) => {
      const uris = recipients(delivery.message);
      await Promise.all(uris.map((uri) => context.publish(uri, [delivery.message])));
      emit(delivery);
    });
}

/** `.recipientList(recipients)`: the recipient list's DSL entry (kind `recipientList`; sends, to endpoints known per message). */
export function recipientListStep<T>(recipients: (message: Message<T>) => readonly string[]): StepSpec<T, T> {
  return stepSpec('recipientList', recipientList(recipients), { sends: true });
}
