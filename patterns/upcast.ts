import { deliveryStep, stepSpec, withBody, withHeaders, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { contractRef, ContractMismatchError, failWithEvidence, parseContractRef, registryFor, UnknownContractError } from '../src/schema/index.ts';

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
    return deliveryStep<unknown, O>(context, (delivery, emit) => {
      let translated: Message<O>;
      try {
        translated = translate(delivery.message);
      } catch (error) {
        failWithEvidence(context, delivery, error);
        return;
      }
      emit(delivery.with(translated));
    });
  };
}

/** `.upcast(subject, from, to)`: the translator's DSL entry (kind `upcast`); `O` is the `to` version's body type. */
export function upcastStep<O = unknown>(subject: string, from: number, to: number): StepSpec<unknown, O> {
  return stepSpec('upcast', upcast<O>(subject, from, to));
}
