import { Observable } from 'rxjs';
import { withBody, withHeaders, type Delivery, type Message, type StepFactory } from '../src/core/index.ts';
import { contractRef, ContractMismatchError, failPermanently, parseContractRef, registryFor, SchemaValidationError, UnknownContractError, ValidationErrorsHeader, validationErrorsHeaderValue } from '../src/schema/index.ts';

/**
 * Message translator between versions of one subject: a body of `subject@from` (or of any version
 * between `from` and `to`, as its `schema` header says; no header means `from`) is checked against
 * its version, translated by the registered upcasters — consecutive ones chained, or defaults of
 * new fields filled where none is registered — and validated against `subject@to`, whose name goes in
 * the `schema` header. A body already at `to` passes once validated. Failures are typed and never
 * retried, like `validate`'s.
 * @example from('memory:telemetry').step('upcast', upcast('device.telemetry', 1, 2))
 */
export function upcast<O = unknown>(subject: string, from: number, to: number): StepFactory<unknown, O> {
  const target = contractRef(subject, to);
  return (context) => {
    const registry = registryFor(context, [contractRef(subject, from), target]);
    const translate = (message: Message<unknown>): Message<O> => {
      const declared = message.headers.schema;
      let version = from;
      if (declared !== undefined) {
        if (!registry.has(declared)) throw new UnknownContractError(declared, registry.contracts());
        const parsed = parseContractRef(declared);
        if (parsed === undefined || parsed.subject !== subject || parsed.version < from || parsed.version > to) throw new ContractMismatchError(declared, `${subject}@${from}..${to}`);
        version = parsed.version;
      }
      const body = registry.validate(contractRef(subject, version), message.body);
      const translated = version === to ? body : registry.upcast(subject, version, to, body);
      return withHeaders(withBody(message, translated as O), { schema: target });
    };
    return (source) =>
      new Observable<Delivery<O>>((subscriber) =>
        source.subscribe({
          next: (delivery) => {
            let translated: Message<O>;
            try {
              translated = translate(delivery.message);
            } catch (error) {
              const failing = error instanceof SchemaValidationError ? delivery.with(withHeaders(delivery.message, { [ValidationErrorsHeader]: validationErrorsHeaderValue(error.issues) })) : delivery;
              failPermanently(context, failing, error as Error);
              return;
            }
            subscriber.next(delivery.with(translated));
          },
          error: (error: unknown) => subscriber.error(error),
          complete: () => subscriber.complete(),
        }),
      );
  };
}
