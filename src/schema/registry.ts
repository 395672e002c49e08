import { Ajv2020, type AnySchemaObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';
import { toError } from '../core/errors.ts';
import { contractRef, type ContractRef, type ContractSource, type SubjectInfo } from './contract.ts';
import { SchemaDefinitionError, SchemaValidationError, UnknownContractError } from './errors.ts';
import { DEFAULT_COMPATIBILITY, loadContracts } from './loader.ts';
import { re2Engine } from './regex-engine.ts';
import { inPlaceRefCycle } from './ref-cycles.ts';
import { foreignRefs } from './remote-refs.ts';
import { assertAllowedKeys, assertDepth, DEFAULT_PAYLOAD_LIMITS, parseJsonSafely, withinLimits, type PayloadLimits } from './safe-json.ts';
import { defaultsUpcaster, type Upcaster } from './upcaster.ts';
import { classificationKeyword, classifiedFields } from '../security/classification.ts';
import { indexClassification } from '../security/classification-index.ts';

/** DI token of the schema registry (shares its name with the interface, Theia style). */
export const SchemaRegistry: unique symbol = Symbol.for('interchange.SchemaRegistry');

/**
 * The message contracts: JSON Schemas by `subject@version`, each compiled once.
 * Steps reach it with `context.service(SchemaRegistry)`.
 */
export interface SchemaRegistry {
  /** Limits applied to every payload before validation. */
  readonly limits: Required<PayloadLimits>;
  has(ref: string): boolean;
  /** Every contract, `subject@version`, sorted by subject then version. */
  contracts(): readonly ContractRef[];
  subjects(): readonly SubjectInfo[];
  subject(name: string): SubjectInfo | undefined;
  /** The versions of a subject, ascending. */
  versions(subject: string): readonly number[];
  /** The JSON Schema of a contract; `UnknownContractError` if there is none. */
  schema(ref: string): AnySchemaObject;
  /**
   * The compiled validator of a contract, compiled on first use and cached; `UnknownContractError`
   * if there is none, `SchemaDefinitionError` if it does not compile. Raw ajv: what it throws is not
   * wrapped (`validate` wraps it).
   */
  validator(ref: string): ValidateFunction;
  /** Compiles every contract now (`schemas check`, or `precompile`); throws the first `SchemaDefinitionError`. */
  compileAll(): void;
  /**
   * The body, parsed if it is text or bytes (limits first, prototype-safe), checked against `ref`.
   * Throws `SchemaValidationError` (invalid), `UnknownContractError`, a payload error
   * (`PAYLOAD_TOO_LARGE`, `PAYLOAD_TOO_DEEP`, `PAYLOAD_UNPARSEABLE` — also for a `__proto__` or
   * `constructor` key, parsed or not), or `SchemaDefinitionError` if the validator itself threw;
   * all of them permanent.
   */
  validate(ref: string, body: unknown, direction?: 'inbound' | 'outbound'): unknown;
  /** Translates a body of `subject@from` into `subject@to` (registered translators, else defaults), validated. */
  upcast(subject: string, from: number, to: number, body: unknown): unknown;
}

export interface SchemaRegistryOptions {
  /** Payload limits (default 1 MiB, depth 64). */
  readonly limits?: PayloadLimits;
  /** Report every error, not only the first (ajv's allErrors; default false: cheaper on untrusted data). */
  readonly allErrors?: boolean;
  /** Translators between consecutive (or any two) versions of a subject, for `.upcast()`. */
  readonly upcasters?: readonly Upcaster[];
  /**
   * Compile every contract at construction (default false: each is compiled when a route that uses
   * it starts, or on first use — 200 contracts take ~0.5 s to compile, routes use a few).
   */
  readonly precompile?: boolean;
}

/**
 * The registry over a set of contracts: ajv (draft 2020-12, strict, ajv-formats, RE2 for patterns)
 * compiles each version once and caches it. Construction checks every contract's shape and refs;
 * compilation happens when a route using the contract starts (the DSL's steps ask for their
 * validators then), so a bad contract still fails at start, not on the first message. `$ref`s may point at other contracts of the set (by `$id`) or inside the same schema;
 * anything else is refused (`SchemaDefinitionError`), nothing is ever fetched.
 * Contracts may carry a `unit` annotation on numeric properties, and `x-classification` (`public`,
 * `internal`, `personal`, `secret`) on any property (see `classifiedFields`).
 * @example new JsonSchemaRegistry(loadContracts('schemas'))
 */
export class JsonSchemaRegistry implements SchemaRegistry {
  readonly limits: Required<PayloadLimits>;
  private readonly sources = new Map<string, ContractSource>();
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly subjectInfo = new Map<string, SubjectInfo>();
  private readonly versionsOf = new Map<string, number[]>();
  private readonly upcasters = new Map<string, Upcaster>();
  private readonly ajv: Ajv2020;

  /** Loads `directory` (see `loadContracts`) and compiles it. */
  static fromDirectory(directory: string, options: SchemaRegistryOptions = {}): JsonSchemaRegistry {
    return new JsonSchemaRegistry(loadContracts(directory), options);
  }

  constructor({ contracts, subjects = [] }: { contracts: readonly ContractSource[]; subjects?: readonly SubjectInfo[] }, options: SchemaRegistryOptions = {}) {
    this.limits = { ...DEFAULT_PAYLOAD_LIMITS, ...options.limits };
    for (const info of subjects) this.subjectInfo.set(info.subject, info);
    const ajv = createAjv(options.allErrors ?? false);
    this.ajv = ajv;
    const ids = new Set<string>();
    for (const source of contracts) {
      const ref = contractRef(source.subject, source.version);
      if (this.sources.has(ref)) throw new SchemaDefinitionError(`duplicate contract ${ref}`, source.file);
      this.sources.set(ref, source);
      if (!this.subjectInfo.has(source.subject)) this.subjectInfo.set(source.subject, { subject: source.subject, compatibility: DEFAULT_COMPATIBILITY });
      const versions = this.versionsOf.get(source.subject) ?? [];
      versions.push(source.version);
      this.versionsOf.set(source.subject, versions);
      if (typeof source.schema.$id !== 'string') throw new SchemaDefinitionError('a contract needs a "$id"', source.file ?? ref);
      ids.add(source.schema.$id);
    }
    for (const versions of this.versionsOf.values()) versions.sort((a, b) => a - b);
    for (const [ref, source] of this.sources) {
      const foreign = foreignRefs(source.schema, ids);
      if (foreign.length > 0) throw new SchemaDefinitionError(`remote $ref refused (only contracts of the registry and local refs resolve): ${foreign.join(', ')}`, source.file ?? ref);
      try {
        ajv.addSchema(source.schema);
      } catch (cause) {
        throw new SchemaDefinitionError((cause as Error).message, source.file ?? ref, { cause });
      }
    }
    const cycle = inPlaceRefCycle([...this.sources].map(([ref, source]) => ({ name: source.file ?? ref, schema: source.schema })));
    if (cycle !== undefined) {
      const first = cycle[0]!;
      const path = cycle.map(({ name, pointer }) => `${name === first.name ? '' : name}#${pointer}`).join(' → ');
      throw new SchemaDefinitionError(`reference cycle that reaches no property or item, so validation would never end: ${path} (put the recursion under "properties" or "items")`, first.name);
    }
    for (const upcaster of options.upcasters ?? []) {
      for (const version of [upcaster.from, upcaster.to]) this.requireSource(contractRef(upcaster.subject, version));
      this.upcasters.set(`${upcaster.subject}@${upcaster.from}>${upcaster.to}`, upcaster);
    }
    // `x-classification` annotations: indexed by contract for the failure path and the console (docs/security.md)
    for (const ref of this.sources.keys()) indexClassification(ref, classifiedFields(this, ref));
    if (options.precompile === true) this.compileAll();
  }

  compileAll(): void {
    for (const ref of this.sources.keys()) this.validator(ref);
  }

  has(ref: string): boolean {
    return this.sources.has(ref);
  }

  contracts(): readonly ContractRef[] {
    return [...this.versionsOf.keys()].sort().flatMap((subject) => this.versions(subject).map((version) => contractRef(subject, version)));
  }

  subjects(): readonly SubjectInfo[] {
    return [...this.subjectInfo.values()].filter((info) => this.versionsOf.has(info.subject)).sort((a, b) => a.subject.localeCompare(b.subject));
  }

  subject(name: string): SubjectInfo | undefined {
    return this.subjectInfo.get(name);
  }

  versions(subject: string): readonly number[] {
    return this.versionsOf.get(subject) ?? [];
  }

  schema(ref: string): AnySchemaObject {
    return this.requireSource(ref).schema;
  }

  validator(ref: string): ValidateFunction {
    const cached = this.validators.get(ref);
    if (cached !== undefined) return cached;
    const source = this.requireSource(ref);
    let validate: ValidateFunction;
    try {
      validate = this.ajv.compile(source.schema);
    } catch (cause) {
      throw new SchemaDefinitionError(`does not compile: ${(cause as Error).message}`, source.file ?? ref, { cause });
    }
    this.validators.set(ref, validate);
    return validate;
  }

  validate(ref: string, body: unknown, direction: 'inbound' | 'outbound' = 'inbound'): unknown {
    const validate = this.validator(ref);
    const parsed = this.parse(body);
    let valid: boolean;
    try {
      valid = validate(parsed) as boolean;
    } catch (cause) {
      // A validator that throws (a stack overflow, a bug in a keyword) would throw again: never a transient failure.
      const error = toError(cause);
      throw new SchemaDefinitionError(`the validator of ${ref} threw ${error.name}: ${error.message}`, this.requireSource(ref).file ?? ref, { cause });
    }
    if (!valid) throw new SchemaValidationError(ref, validate.errors ?? [], direction);
    return parsed;
  }

  upcast(subject: string, from: number, to: number, body: unknown): unknown {
    this.requireSource(contractRef(subject, from));
    const target = contractRef(subject, to);
    this.requireSource(target);
    let current = this.parse(body);
    const direct = this.upcasters.get(`${subject}@${from}>${to}`);
    if (direct !== undefined) current = direct.translate(current);
    else {
      for (let version = from; version < to; version += 1) {
        if (!this.has(contractRef(subject, version + 1))) continue;
        const step = this.upcasters.get(`${subject}@${version}>${version + 1}`) ?? defaultsUpcaster(this.schema(contractRef(subject, version + 1)));
        current = step.translate(current);
      }
    }
    return this.validate(target, current);
  }

  /** Text and bytes are parsed safely within the limits; objects are checked for depth and forbidden keys alike. */
  private parse(body: unknown): unknown {
    if (typeof body === 'string' || body instanceof Uint8Array) return parseJsonSafely(body, this.limits);
    if (withinLimits(body, this.limits.maxDepth)) return body;
    // something is off: the precise checks say what (too deep first)
    assertDepth(body, this.limits.maxDepth);
    assertAllowedKeys(body, this.limits.maxDepth);
    return body;
  }

  private requireSource(ref: string): ContractSource {
    const source = this.sources.get(ref);
    if (source === undefined) throw new UnknownContractError(ref, this.contracts());
    return source;
  }
}

function createAjv(allErrors: boolean): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors, code: { regExp: re2Engine }, loadSchema: undefined });
  (formatsPlugin as unknown as (ajv: Ajv2020) => void)(ajv);
  ajv.addKeyword({ keyword: 'unit', schemaType: 'string', metaSchema: { type: 'string' } });
  ajv.addKeyword({ ...classificationKeyword });
  return ajv;
}
