import { deliveryStep, stepSpec, withBody, withHeaders, type Headers, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { ContractMismatchError, failWithEvidence, MissingContractError, registryFor, UnknownContractError } from '../src/schema/index.ts';

export interface ValidateOptions {
  /**
   * `inbound` (default): a message whose `schema` header names an unknown contract, or another one
   * than `contract`, fails. `outbound` (`.to(uri, { contract })`): the body is checked against
   * `contract` whatever its header says, and the failure reads "outbound message refused".
   */
  readonly direction?: 'inbound' | 'outbound';
}

/**
 * Validator: checks each body against a contract of the `SchemaRegistry` (bound by `schemaModule`).
 * Text and byte bodies are parsed first (size and depth limits, prototype-safe), so the body
 * downstream is the parsed value. A valid message continues with its `schema` header set to
 * `subject@version`. An invalid one fails with a typed error — `SchemaValidationError`
 * (`SCHEMA_INVALID`, ajv's errors), `UnknownContractError` (`SCHEMA_UNKNOWN`), `ContractMismatchError`,
 * `MissingContractError`, payload errors (`PAYLOAD_TOO_LARGE`, `PAYLOAD_TOO_DEEP`,
 * `PAYLOAD_UNPARSEABLE`) — and carries `x-interchange-validation-errors` to the error handler; it is
 * never retried (the same message fails the same way). Synchronous; no concurrency of its own.
 * Without `contract`, each message is checked against the contract its `schema` header names.
 * @example from('mqtt:devices/+/telemetry').step('validate', validate('device.telemetry@1'))
 */
export function validate<O = unknown>(contract?: string, { direction = 'inbound' }: ValidateOptions = {}): StepFactory<unknown, O> {
  return (context) => {
    const registry = registryFor(context, contract === undefined ? [] : [contract]);
    // the header a valid message gets, built once for the step's own contract (not per message)
    const contractHeader: Headers | undefined = contract === undefined ? undefined : { schema: contract };
    const check = (message: Message<unknown>): Message<O> => {
      const declared = message.headers.schema;
      let ref = contract;
      if (direction === 'inbound' && declared !== undefined) {
        if (!registry.has(declared)) throw new UnknownContractError(declared, registry.contracts());
        if (contract !== undefined && declared !== contract) throw new ContractMismatchError(declared, contract);
        ref = declared;
      }
      if (ref === undefined) throw new MissingContractError();
      const body = registry.validate(ref, message.body, direction) as O;
      if (body === message.body && declared === ref) return message as Message<O>;
      const header = ref === contract && contractHeader !== undefined ? contractHeader : { schema: ref };
      return withHeaders(body === message.body ? (message as Message<O>) : withBody(message, body), header);
    };
    return deliveryStep<unknown, O>(context, (delivery, emit) => {
      let checked: Message<O>;
      try {
        checked = check(delivery.message);
      } catch (error) {
        failWithEvidence(context, delivery, error);
        return;
      }
      emit(delivery.with(checked));
    });
  };
}

/**
 * `.validate(contract)`: the validator's DSL entry (kind `validate`). `O` is the body type from here
 * on, as the DSL typed it from the contract.
 */
export function validateStep<O = unknown>(contract?: string, options?: ValidateOptions): StepSpec<unknown, O> {
  return stepSpec('validate', validate<O>(contract, options), { contract });
}
