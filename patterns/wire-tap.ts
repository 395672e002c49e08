import { deliveryStep, isTemplate, stepSpec, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Wire tap: sends a copy of each message to `uri` without waiting, and passes the message on at
 * once. The tap is outside the message's guarantee (as in the EIP book): a failed tap send is logged,
 * never fails the message.
 * @example from('memory:orders').wireTap('memory:audit').to('memory:billing')
 */
export function wireTap<T>(uri: string): StepFactory<T, T> {
  return (context) =>
    deliveryStep<T, T>(context, (delivery, emit) => {
      const warn = (error: unknown): void => {
        context.log.warn('wire tap send failed', { route: context.routeId, step: context.stepId, uri, messageId: delivery.message.id, error });
      };
      // A publish that throws instead of rejecting is a failed tap send too, never the message's failure.
      try {
        context.publish(uri, [delivery.message]).catch(warn);
      } catch (error) {
        warn(error);
      }
      emit(delivery);
    });
}

/** `.wireTap(uri)`: the wire tap's DSL entry (kind `wireTap`; sends to `uri`, outside the message's guarantee). */
export function wireTapStep<T>(uri: string): StepSpec<T, T> {
  return stepSpec('wireTap', wireTap<T>(uri), { sendsTo: isTemplate(uri) ? [] : [uri] });
}
