import type { GeneratedContracts } from '../../schemas/types.generated.ts';

/**
 * The TypeScript type of every contract, by `subject@version`: generated from `schemas/` by
 * `interchange schemas types` (checked in as `schemas/types.generated.ts`, verified up to date by a
 * test). Projects with contracts of their own add them by declaration merging:
 * `declare module 'interchange' { interface ContractTypes { 'order.placed@1': OrderPlacedV1 } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- open for declaration merging
export interface ContractTypes extends GeneratedContracts {}

/** A contract the compiler knows: `'device.telemetry@1' | …`. */
export type ContractName = keyof ContractTypes & string;

/** The body type of a contract. */
export type ContractType<N extends ContractName> = ContractTypes[N];

/** Subjects that have a version `V`, e.g. `ContractSubject<1>`. */
export type ContractSubject = ContractName extends `${infer S}@${number}` ? S : never;

/** The versions of a subject the compiler knows. */
export type ContractVersion<S extends string> = ContractName extends infer N ? (N extends `${S}@${infer V extends number}` ? V : never) : never;

/**
 * Whether a body type `T` may be sent as contract `N`: assignable to it and no field the contract
 * lacks. A tuple so it can be a rest parameter: empty when it matches, one impossible argument when not.
 */
export type ContractCheck<T, N extends ContractName> = [N] extends [never]
  ? []
  : [T] extends [ContractType<N>]
    ? [Exclude<keyof T, keyof ContractType<N>>] extends [never]
      ? []
      : [error: `the body has fields that ${N} does not allow`, extra: Exclude<keyof T, keyof ContractType<N>>]
    : [error: `the body type does not match ${N}`];
