/** Where JSON text stops being JSON, and why. Lines and columns count from 1, columns in characters. */
export interface JsonSyntaxProblem {
  /** Index into the text (UTF-16 code units). */
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** What is wrong, in words: `expected ',' or '}' after a property value`. */
  readonly message: string;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);

/**
 * The first syntax error of JSON text (RFC 8259), or `undefined` if it is valid JSON. A scanner of
 * our own rather than the engine's message, whose wording and position format change between Node
 * versions ("at position N", "(line L column C)", or none at all). Linear, iterative (no recursion,
 * whatever the nesting); meant for the error path, after `JSON.parse` threw.
 * @example jsonSyntaxProblem('{"a": 1,}') // { line: 1, column: 8, message: "a trailing comma before '}' is not JSON", … }
 */
export function jsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  const found = scan(text);
  return found === undefined ? undefined : { ...lineAndColumn(text, found.offset), ...found };
}

/** The 1-based line and column of `offset`; `\n`, `\r\n` and a lone `\r` each end a line. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let index = 0; index < offset && index < text.length; index += 1) {
    const char = text[index];
    if (char === '\n' || (char === '\r' && text[index + 1] !== '\n')) {
      line += 1;
      start = index + 1;
    }
  }
  return { line, column: [...text.slice(start, offset)].length + 1 };
}

type Found = { readonly offset: number; readonly message: string };

function scan(text: string): Found | undefined {
  const closers: ('}' | ']')[] = [];
  if (text.charCodeAt(0) === 0xfeff) return { offset: 0, message: 'the file starts with a byte order mark (U+FEFF): save it as UTF-8 without BOM' };
  let index = skipWhitespace(text, 0);
  for (;;) {
    // A value is expected at `index`.
    const char = text[index];
    if (char === '{' || char === '[') {
      index = skipWhitespace(text, index + 1);
      if (text[index] === (char === '{' ? '}' : ']')) index += 1;
      else {
        closers.push(char === '{' ? '}' : ']');
        if (char === '{') {
          const key = member(text, index);
          if (typeof key !== 'number') return key;
          index = key;
        }
        continue;
      }
    } else {
      const end = scalar(text, index);
      if (typeof end !== 'number') return end;
      index = end;
    }
    // After a value: a separator, a closer, or the end.
    for (;;) {
      index = skipWhitespace(text, index);
      const closer = closers.at(-1);
      if (closer === undefined) return index < text.length ? { offset: index, message: `${describe(text, index)} after the JSON value (only one value per file)` } : undefined;
      const next = text[index];
      if (next === closer) {
        closers.pop();
        index += 1;
        continue;
      }
      if (next !== ',') return { offset: index, message: notSeparator(text, index, closer) };
      const comma = index;
      index = skipWhitespace(text, index + 1);
      if (text[index] === '}' || text[index] === ']') return { offset: comma, message: `a trailing comma before '${text[index] ?? ''}' is not JSON` };
      if (closer === '}') {
        const key = member(text, index);
        if (typeof key !== 'number') return key;
        index = key;
      }
      break;
    }
  }
}

function notSeparator(text: string, index: number, closer: '}' | ']'): string {
  if (index >= text.length) return `unexpected end of file: an ${closer === '}' ? 'object' : 'array'} is not closed`;
  if (text[index] === '/') return 'comments are not JSON';
  const after = closer === '}' ? 'a property value' : 'an array element';
  const hint = /["{[\d-]/.test(text[index] as string) ? ' (a comma missing?)' : '';
  return `expected ',' or '${closer}' after ${after}, found ${describe(text, index)}${hint}`;
}

/** A property name and its colon, at `index`; returns where its value starts. */
function member(text: string, index: number): number | Found {
  if (text[index] !== '"') {
    const found = index >= text.length ? 'unexpected end of file: an object is not closed'
      : text[index] === "'" ? 'property names need double quotes, not single quotes'
        : text[index] === '/' ? 'comments are not JSON'
          : `expected a property name in double quotes, found ${describe(text, index)}`;
    return { offset: index, message: found };
  }
  const end = string(text, index);
  if (typeof end !== 'number') return end;
  const colon = skipWhitespace(text, end);
  if (text[colon] !== ':') return { offset: colon, message: colon < text.length ? `expected ':' after a property name, found ${describe(text, colon)}` : 'unexpected end of file after a property name' };
  return skipWhitespace(text, colon + 1);
}

/** A string, number or literal at `index`; returns the index after it. */
function scalar(text: string, index: number): number | Found {
  const char = text[index];
  if (char === '"') return string(text, index);
  if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) return number(text, index);
  for (const literal of ['true', 'false', 'null']) if (text.startsWith(literal, index)) return index + literal.length;
  if (index >= text.length) return { offset: index, message: 'unexpected end of file: a value is missing' };
  if (char === "'") return { offset: index, message: 'strings need double quotes, not single quotes' };
  if (char === '/') return { offset: index, message: 'comments are not JSON' };
  const word = /^[A-Za-z_$][\w$]*/.exec(text.slice(index, index + 32))?.[0];
  if (word !== undefined) return { offset: index, message: `unexpected '${word}': strings need double quotes; the only bare words are true, false and null` };
  return { offset: index, message: `expected a value, found ${describe(text, index)}` };
}

function string(text: string, open: number): number | Found {
  for (let index = open + 1; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x22) return index + 1;
    if (code < 0x20) return { offset: index, message: code === 0x0a || code === 0x0d ? 'line break inside a string (a closing quote missing, or write it as \\n)' : `control character ${describe(text, index)} inside a string (escape it as \\u00XX)` };
    if (code === 0x5c) {
      const escape = text[index + 1];
      if (escape === 'u') {
        if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(index + 2, index + 6))) return { offset: index, message: 'a \\u escape needs four hex digits' };
        index += 5;
      } else if (escape !== undefined && ESCAPES.has(escape)) index += 1;
      else return { offset: index, message: `bad escape '\\${escape ?? ''}' in a string (valid: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)` };
    }
  }
  return { offset: open, message: 'a string is never closed' };
}

const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

function number(text: string, start: number): number | Found {
  NUMBER.lastIndex = start;
  const match = NUMBER.exec(text);
  if (match === null) return { offset: start, message: `expected a digit after '-'` };
  const end = start + match[0].length;
  const next = text[end];
  if (match[1] === '0' && next !== undefined && next >= '0' && next <= '9') return { offset: start, message: 'a number cannot have a leading zero' };
  if ((next === '.' && match[2] === undefined && match[3] === undefined) || ((next === 'e' || next === 'E') && match[3] === undefined)) return { offset: end, message: `a number needs digits after '${next}'` };
  return end;
}

function skipWhitespace(text: string, index: number): number {
  while (index < text.length && WHITESPACE.has(text[index] as string)) index += 1;
  return index;
}

/** `'x'` for a printable character, `U+0007` for another. */
function describe(text: string, index: number): string {
  const point = text.codePointAt(index);
  if (point === undefined) return 'the end of file';
  return point < 0x20 || (point >= 0x7f && point <= 0x9f) || point === 0xfeff ? `U+${point.toString(16).toUpperCase().padStart(4, '0')}` : `'${String.fromCodePoint(point)}'`;
}
