/**
 * The TypeScript type of every contract the compiler knows, by `subject@version`. Empty here: the
 * library ships no contracts. A project adds its own by module augmentation, which the file
 * `interchange schemas types` writes already contains — import that file once and the DSL types the
 * bodies of its contracts:
 * `declare module 'interchange-eip' { interface ContractTypes { 'order.placed@1': OrderPlacedV1 } }`.
 * Without it, `ContractName` is `never`: naming a contract in the DSL does not compile.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- open for declaration merging
export interface ContractTypes {}

/** A contract the compiler knows: `'device.telemetry@1' | …`. */
export type ContractName = keyof ContractTypes & string;

/** The body type of a contract. */
export type ContractType<N extends ContractName> = ContractTypes[N];

/** Subjects that have a version `V`, e.g. `ContractSubject<1>`. */
export type ContractSubject = ContractName extends `${infer S}@${number}` ? S : never;

/** The versions of a subject the compiler knows. */
export type ContractVersion<S extends string> = ContractName extends infer N ? (N extends `${S}@${infer V extends number}` ? V : never) : never;

/**
 * Whether a body type `T` may be sent as contract `N`: assignable to it, and no field the contract
 * forbids (`additionalProperties: false`), at any depth — in nested objects and array items too.
 * `unknown` (no constraint) when it may; otherwise an object type with one required property,
 * `contractMismatch`, whose type is the problem in words:
 * `` "`temperatureF` is missing for backend.reading@1" | "`lines[].discount` is not a field of order.placed@1" ``.
 * A method intersects its options parameter with it (`options?: ToOptions<N> & ContractCheck<T, N>`),
 * so the compiler's diagnostic on that argument names the offending fields
 * ("Property 'contractMismatch' is missing in type … but required in type '{ readonly contractMismatch:
 * "`complete` is missing for order.priced@1"; }'"). The message is the point: nobody passes it.
 */
export type ContractCheck<T, N extends ContractName> = [N] extends [never]
  ? unknown
  : ContractProblems<T, ContractType<N>> extends infer Problem extends string
    ? [Problem] extends [never]
      ? unknown
      : { readonly contractMismatch: Problem extends string ? `${Problem} ${N}` : never }
    : never;

/**
 * The problems of sending `T` as a contract of type `C`, as messages that end where the contract's
 * name goes (`` "`temperatureF` is missing for" ``); `never` when there are none. Distributes over a
 * union body: each member must fit. (`ContractCheck` appends the name: building new strings is also
 * what keeps the compiler from printing a type alias instead of the messages.)
 */
export type ContractProblems<T, C> = IsAny<T> extends true
  ? never
  : unknown extends T
    ? 'the body is unknown: .validate() or .transform() it before sending it as'
    : T extends unknown
      ? [T] extends [C]
        ? ExtraFields<T, C, '', []>
        : Mismatches<T, C, '', []> extends infer Found extends string
          ? [Found] extends [never] ? 'the body type does not match' : Found
          : never
      : never;

/** How deep the checks look (recursive types stay cheap): deeper, a mismatch is named without detail and extra fields pass. */
type MaxDepth = 8;

type IsAny<T> = 0 extends 1 & T ? true : false;

/** `lines`, `lines[]`, `lines[].sku`: where a problem is. */
type At<Path extends string, Key extends string> = Path extends '' ? Key : `${Path}.${Key}`;

/** Every key of every member of a (possibly union) object type. */
type AnyKey<C> = C extends unknown ? keyof C : never;
/** The type of `K` in whichever members of `C` have it. */
type ValueOf<C, K> = C extends unknown ? (K extends keyof C ? C[K] : never) : never;
/** The keys `C` requires: neither optional nor an index signature. */
type RequiredKeys<C> = { [K in keyof C]-?: string extends K ? never : number extends K ? never : object extends Pick<C, K> ? never : K }[keyof C];
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;
type ObjectLike<T> = T extends readonly unknown[] ? false : T extends (...args: never[]) => unknown ? false : T extends object ? true : false;

/** Fields of `T` that `C` does not have where `C` admits no others (no index signature), at any depth. */
type ExtraFields<T, C, Path extends string, Depth extends unknown[]> = Depth['length'] extends MaxDepth
  ? never
  : T extends readonly (infer Item)[]
    ? [Extract<C, readonly unknown[]>] extends [never] ? never : ExtraFields<Item, Extract<C, readonly unknown[]>[number], `${Path}[]`, [...Depth, unknown]>
    : ObjectLike<T> extends true
      ? [ObjectsOf<C>] extends [never]
        ? never
        : string extends AnyKey<ObjectsOf<C>>
          ? never
          : {
              [K in keyof T & string]-?: K extends AnyKey<ObjectsOf<C>>
                ? ExtraFields<T[K], ValueOf<ObjectsOf<C>, K>, At<Path, K>, [...Depth, unknown]>
                : `\`${At<Path, K>}\` is not a field of`;
            }[keyof T & string]
      : never;

/**
 * Why `T` is not assignable to `C`, field by field (missing, optional, wrong type), plus its extra
 * fields. Distributes over a union `T`: members that fit add only their extra fields.
 */
type Mismatches<T, C, Path extends string, Depth extends unknown[]> = Depth['length'] extends MaxDepth
  ? `\`${Path}\` does not match`
  : T extends unknown
    ? [T] extends [C]
      ? ExtraFields<T, C, Path, Depth>
      : T extends readonly (infer Item)[]
        ? [Extract<C, readonly unknown[]>] extends [never]
          ? WrongType<C, Path>
          : Mismatches<Item, Extract<C, readonly unknown[]>[number], `${Path}[]`, [...Depth, unknown]>
        : ObjectLike<T> extends true
          ? [ObjectsOf<C>] extends [never]
            ? WrongType<C, Path>
            : IsUnion<ObjectsOf<C>> extends true
              ? `${Where<Path>} matches none of the alternatives of`
              : ObjectMismatches<T, ObjectsOf<C>, Path, Depth>
          : WrongType<C, Path>
    : never;

/** The object (not array, not function) members of `C`. */
type ObjectsOf<C> = C extends unknown ? (ObjectLike<C> extends true ? C : never) : never;

type Where<Path extends string> = Path extends '' ? 'the body' : `\`${Path}\``;

type ObjectMismatches<T, C, Path extends string, Depth extends unknown[]> =
  | { [K in RequiredKeys<C> & string]: K extends keyof T ? never : `\`${At<Path, K>}\` is missing for` }[RequiredKeys<C> & string]
  | {
      [K in keyof T & string]-?: K extends keyof C
        ? undefined extends T[K]
          ? undefined extends C[K]
            ? Mismatches<T[K], C[K], At<Path, K>, [...Depth, unknown]>
            : [T[K]] extends [undefined]
              ? `\`${At<Path, K>}\` is missing for`
              : [Exclude<T[K], undefined>] extends [C[K]]
                ? `\`${At<Path, K>}\` may be undefined, but is required by`
                : Mismatches<Exclude<T[K], undefined>, C[K], At<Path, K>, [...Depth, unknown]>
          : Mismatches<T[K], C[K], At<Path, K>, [...Depth, unknown]>
        : string extends keyof C
          ? never
          : `\`${At<Path, K>}\` is not a field of`;
    }[keyof T & string];

type WrongType<C, Path extends string> = `${Where<Path>} must be ${Expected<Exclude<C, undefined>>} for`;

/** What a contract type expects, in words. */
type Expected<C> = [C] extends [null]
  ? 'null'
  : null extends C
    ? `${ExpectedNonNull<Exclude<C, null>>} or null`
    : ExpectedNonNull<C>;
type ExpectedNonNull<C> = [C] extends [string]
  ? string extends C ? 'a string' : `one of ${Literals<C>}`
  : [C] extends [number]
    ? number extends C ? 'a number' : `one of ${Literals<C>}`
    : [C] extends [boolean]
      ? boolean extends C ? 'a boolean' : `${C & boolean}`
      : [C] extends [readonly unknown[]]
        ? 'an array'
        : ObjectLike<C> extends true
          ? 'an object'
          : 'of the contract\'s type';

/** `'C' | 'F'` → `'C', 'F'` (in the order the compiler keeps the union). */
type Literals<C, Done extends string = ''> = [C] extends [never]
  ? Done
  : LastOf<C> extends infer L extends string | number
    ? Literals<Exclude<C, L>, Done extends '' ? Quoted<L> : `${Quoted<L>}, ${Done}`>
    : Done;
type Quoted<L extends string | number> = L extends string ? `'${L}'` : `${L}`;
type LastOf<U> = ((U extends unknown ? (k: () => U) => void : never) extends (k: infer I) => void ? I : never) extends () => infer L ? L : never;
