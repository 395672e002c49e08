import { deliveryStep, stepSpec, toError, type Message, type StepContext, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { MemoryMessageStore, MessageStore } from '../src/stores/message-store.ts';

export interface StoreMessageOptions {
  /**
   * Where copies go. Default: the `MessageStore` bound in the integration's container, else one
   * in-memory ring of 1,000 messages shared by every such step of this process (`sharedMemoryMessageStore`).
   */
  readonly store?: MessageStore;
}

let shared: MemoryMessageStore | undefined;

/** The in-memory message store `storeMessage` steps fall back to when none is given nor bound: one per process. */
export function sharedMemoryMessageStore(): MemoryMessageStore {
  shared ??= new MemoryMessageStore();
  return shared;
}

function storeOf(context: StepContext, store: MessageStore | undefined): MessageStore {
  if (store !== undefined) return store;
  try {
    return context.service<MessageStore>(MessageStore);
  } catch {
    return sharedMemoryMessageStore();
  }
}

/**
 * Message store (EIP book), for debugging, opt-in: keeps each passing message in a `MessageStore`
 * (with its route, this step's id and the time), queryable by id or route, and passes the message on
 * at once. Like the wire tap it is outside the message's guarantee: the store is not waited for, and a
 * store that throws or rejects is logged (`storeFailed` counted), never fails or delays the message;
 * the source settles as the message does downstream. Nothing is held: nothing to drain.
 * @example
 * const debug = new MemoryMessageStore();
 * from('amqp:queue/orders', { id: 'orders' }).storeMessage({ store: debug }).to('amqp:queue/billing');
 * debug.get(messageId); debug.list({ routeId: 'orders', limit: 20 });
 */
export function storeMessage<T>({ store }: StoreMessageOptions = {}): StepFactory<T, T> {
  return (context) => {
    const messages = storeOf(context, store);
    const warn = (message: Message<unknown>, error: unknown): void => {
      context.count('storeFailed');
      context.log.warn('message store: a message could not be stored', { route: context.routeId, step: context.stepId, messageId: message.id, error: toError(error).message });
    };
    return deliveryStep<T, T>(context, (delivery, emit) => {
      const { message } = delivery;
      try {
        const added = messages.add({ message, routeId: context.routeId, stepId: context.stepId, storedAt: context.scheduler.now() });
        if (added !== undefined) added.then(undefined, (error: unknown) => warn(message, error));
      } catch (error) {
        warn(message, error);
      }
      emit(delivery);
    });
  };
}

/** `.storeMessage(options)`: the message store's DSL entry (kind `storeMessage`; outside the message's guarantee). */
export function storeMessageStep<T>(options?: StoreMessageOptions): StepSpec<T, T> {
  return stepSpec('storeMessage', storeMessage<T>(options));
}
