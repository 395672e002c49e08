import { createRequire } from 'node:module';
import type { RegExpEngine, RegExpLike } from 'ajv/dist/types/index.js';

interface Re2Constructor {
  new (pattern: string, flags: string): RegExpLike;
}

const require = createRequire(import.meta.url);
let re2: Re2Constructor | undefined;

/**
 * re2-wasm, loaded on the first pattern that needs it: loading it instantiates its WebAssembly module
 * with 16 MiB of memory, which a process whose contracts have no such pattern (or no contracts: a bare
 * bridge) should not carry (issue 17: RSS).
 */
function RE2(): Re2Constructor {
  re2 ??= (require('re2-wasm') as { RE2: Re2Constructor }).RE2;
  return re2;
}

/**
 * The regular-expression engine for `pattern` and `patternProperties`: no pattern in a contract can
 * backtrack catastrophically (`^(a+)+$` on 'aaaa…!' answers in microseconds).
 *
 * - Patterns of the shape proven linear for a backtracking engine (`isBacktrackingLinear`: anchored
 *   at `^`, no groups or alternation, at most one variable quantifier — `^[A-Za-z0-9._-]+$`, the
 *   common case) run on V8's own RegExp: ~50 ns a test.
 * - Every other pattern runs on Google's RE2 compiled to WebAssembly (re2-wasm), which matches in time
 *   linear in the input whatever the pattern, at ~2–3 µs a test (the string crosses into wasm memory).
 *
 * Why re2-wasm and not the native `re2` package: npm here cannot download re2's prebuilt binaries and
 * building it from source needs a C++ toolchain and minutes per install on every machine and CI run;
 * the WebAssembly build ships inside the npm package. Why not only a static "safe-regex" check: such
 * checks guess (star height) with false negatives; ours only ever picks the fast engine for a shape
 * that is linear by construction, and never refuses a pattern RE2 can run.
 * Cost: RE2 has no look-around or back-references — a contract using them fails to compile with a
 * `SchemaDefinitionError` naming the pattern.
 */
export const re2Engine: RegExpEngine = Object.assign(
  (pattern: string, flags: string): RegExpLike => {
    const key = `${flags}/${pattern}`;
    let compiled = compiledPatterns.get(key);
    if (compiled === undefined) {
      compiled = isBacktrackingLinear(pattern) ? new RegExp(pattern, flags) : new (RE2())(pattern, flags.includes('u') ? flags : `${flags}u`);
      compiledPatterns.set(key, compiled);
    }
    return compiled;
  },
  { code: 'require("re2-wasm").RE2' },
);

/** Patterns are stateless for `test` without the g/y flags (ajv never sets them): contracts sharing one share it. */
const compiledPatterns = new Map<string, RegExpLike>();

/**
 * Whether a backtracking engine runs `pattern` in time linear in the input: it starts with `^` (one
 * start position), has no group, alternation, back-reference or look-around, and at most one
 * quantifier whose count varies (`*`, `+`, `?`, `{n,}`, `{n,m}`; `{n}` is fixed) — so there are at
 * most input-length ways to match. Conservative: `false` only means "use RE2".
 */
export function isBacktrackingLinear(pattern: string): boolean {
  if (!pattern.startsWith('^')) return false;
  let variable = 0;
  let index = 1;
  while (index < pattern.length) {
    const char = pattern[index] as string;
    if (char === '(' || char === ')' || char === '|' || char === '^') return false;
    if (char === '$') {
      if (index !== pattern.length - 1) return false;
      index += 1;
    } else if (char === '\\') {
      const next = pattern[index + 1];
      if (next === undefined || /[1-9k]/.test(next)) return false;
      index += 2;
      if ((next === 'p' || next === 'P' || next === 'u') && pattern[index] === '{') {
        const close = pattern.indexOf('}', index);
        if (close === -1) return false;
        index = close + 1;
      }
    } else if (char === '[') {
      index += 1;
      if (pattern[index] === '^') index += 1;
      if (pattern[index] === ']') index += 1;
      while (index < pattern.length && pattern[index] !== ']') index += pattern[index] === '\\' ? 2 : 1;
      if (index >= pattern.length) return false;
      index += 1;
    } else if (char === '*' || char === '+' || char === '?') {
      variable += 1;
      index += 1;
      if (pattern[index] === '?') index += 1;
    } else if (char === '{') {
      const match = /^\{(\d+)(,(\d*))?\}\??/.exec(pattern.slice(index));
      if (match === null) return false;
      if (match[2] !== undefined && match[3] !== match[1]) variable += 1;
      index += match[0].length;
    } else {
      index += 1;
    }
    if (variable > 1) return false;
  }
  return true;
}
