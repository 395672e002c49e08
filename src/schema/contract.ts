import type { AnySchemaObject } from 'ajv';

/** How a subject's versions may change (Confluent Schema Registry's modes, non-transitive). */
export type CompatibilityMode = 'BACKWARD' | 'FORWARD' | 'FULL' | 'NONE';

export const COMPATIBILITY_MODES: readonly CompatibilityMode[] = ['BACKWARD', 'FORWARD', 'FULL', 'NONE'];

/** One version of a subject: a JSON Schema (draft 2020-12) with a `$id`. */
export interface ContractSource {
  readonly subject: string;
  readonly version: number;
  readonly schema: AnySchemaObject;
  /** Where it was loaded from, for error messages. */
  readonly file?: string;
}

/** A subject: its compatibility mode and description (`schemas/<subject>/subject.json`). */
export interface SubjectInfo {
  readonly subject: string;
  readonly compatibility: CompatibilityMode;
  readonly description?: string;
}

/** `subject@version`, as the `schema` header and the DSL name a contract. */
export type ContractRef = `${string}@${number}`;

/** Parses `subject@version`; `undefined` if it is not of that shape. */
export function parseContractRef(ref: string): { subject: string; version: number } | undefined {
  const match = /^([A-Za-z0-9][\w.-]*)@([1-9]\d*)$/.exec(ref);
  if (match === null) return undefined;
  return { subject: match[1] as string, version: Number(match[2]) };
}

export function contractRef(subject: string, version: number): ContractRef {
  return `${subject}@${version}`;
}
