import { deliveryStep, RouteDefinitionError, stepSpec, withBody, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { failWithEvidence, MissingContractError, registryFor, type SchemaRegistry } from '../src/schema/index.ts';
import { classifiedFields, fieldsOfClass, PROTECTED_CLASSES, type Classification } from '../src/security/classification.ts';
import { checkKeys, encryptBody, type KeySource } from '../src/security/encrypt-message.ts';
import { concretePointers, matches } from '../src/security/redact-classified.ts';
import { PROTECT_KIND } from '../src/security/trust-zone.ts';

export interface ProtectOptions {
  /** Encrypt each classified field into an envelope with the keyring's active key (see `encryptBody`). */
  readonly keys?: KeySource;
  /** Drop the classified fields instead: a content filter for an endpoint that must not see them. */
  readonly drop?: boolean;
  /** The classes protected (default `internal`, `personal`, `secret`). */
  readonly classes?: readonly Classification[];
  /** The contract of the bodies (default: the one each message's `schema` header names). */
  readonly contract?: string;
  /** Bind each envelope to the message id (default true; see `encryptBody`). */
  readonly bindMessageId?: boolean;
}

/**
 * Protects the classified fields of each message before it leaves the trust zone: the fields of its
 * contract (`x-classification`, the `schema` header `.validate()` set, or `contract`) whose class is
 * in `classes` are encrypted, each into its own envelope (`keys`, via `encryptBody`), or dropped
 * (`drop: true`). A message whose contract has no such field goes on untouched. A message with no
 * contract to go by fails (`MissingContractError`, permanent: dead-lettered, never sent in clear).
 * The result no longer matches its contract: its `schema` header is removed. Synchronous.
 * Exactly one of `keys` and `drop`; an unknown `contract` is a `RouteDefinitionError` at start.
 * @example from('memory:customers').validate('customer.registered@1').protect({ keys }).to('amqp:exchange/partner')
 */
export function protect<T>({ keys, drop = false, classes = PROTECTED_CLASSES, contract, bindMessageId = true }: ProtectOptions): StepFactory<T, unknown> {
  if ((keys === undefined) === !drop) throw new RouteDefinitionError('protect: give either keys (encrypt the classified fields) or drop: true (remove them)');
  if (keys !== undefined) checkKeys(keys, 'protect');
  return (context) => {
    const registry = registryFor(context, contract === undefined ? [] : [contract]);
    const fieldsOf = protectedFields(registry, classes);
    return deliveryStep<T, unknown>(context, (delivery, emit) => {
      const message = delivery.message;
      const ref = contract ?? message.headers.schema;
      let out: Message<unknown>;
      try {
        if (ref === undefined) throw new MissingContractError();
        const pointers = fieldsOf(ref);
        if (pointers.length === 0) {
          emit(delivery);
          return;
        }
        // a text or byte body is parsed (and checked) first: the fields are found in the parsed body
        const body = typeof message.body === 'string' || message.body instanceof Uint8Array ? registry.validate(ref, message.body) : message.body;
        out = drop ? withBody(message, dropFields(body, pointers)) : encryptBody(withBody(message, body), { keys: keys as KeySource, fields: pointers.flatMap((pointer) => concretePointers(body, pointer)), bindMessageId });
      } catch (error) {
        failWithEvidence(context, delivery, error);
        return;
      }
      emit(delivery.with(out));
    });
  };
}

/** `.protect(options)`: the DSL entry (kind `protect`). */
export function protectStep<T>(options: ProtectOptions): StepSpec<T, unknown> {
  return stepSpec(PROTECT_KIND, protect<T>(options));
}

/** The pointers to protect per contract, derived once per contract. */
function protectedFields(registry: SchemaRegistry, classes: readonly Classification[]): (ref: string) => readonly string[] {
  const cache = new Map<string, readonly string[]>();
  return (ref) => {
    let pointers = cache.get(ref);
    if (pointers === undefined) {
      pointers = fieldsOfClass(classifiedFields(registry, ref), classes).map((field) => field.pointer);
      cache.set(ref, pointers);
    }
    return pointers;
  };
}

/** A copy of `body` without what `pointers` match (a matched array item is removed from its array). */
function dropFields(body: unknown, pointers: readonly string[]): unknown {
  let out = body;
  for (const pointer of pointers) {
    // deepest and last first, so the indices of earlier matches stay valid
    for (const { tokens } of matches(out, pointer).reverse()) out = removeAt(out, tokens, 0);
  }
  return out;
}

function removeAt(node: unknown, tokens: readonly string[], depth: number): unknown {
  if (tokens.length === 0) return undefined;
  const token = tokens[depth] as string;
  if (depth === tokens.length - 1) {
    if (Array.isArray(node)) return node.filter((_item, index) => String(index) !== token);
    const { [token]: _removed, ...rest } = node as Record<string, unknown>;
    return rest;
  }
  const child = removeAt((node as Record<string, unknown>)[token], tokens, depth + 1);
  if (Array.isArray(node)) {
    const copy = [...(node as unknown[])];
    copy[Number(token)] = child;
    return copy;
  }
  return { ...(node as Record<string, unknown>), [token]: child };
}
