import { EndpointError } from './errors.ts';
import { redactUrl, userInfoBounds } from './redact.ts';

/** Characters that may not stand unencoded in user info, with their percent-encoding. */
const RESERVED: Readonly<Record<string, string>> = { '/': '%2F', '?': '%3F', '#': '%23', '@': '%40', ' ': '%20', '%': '%25' };

/**
 * Refuses a URL whose user name or password holds a character that must be percent-encoded there
 * (`/ ? # @`, whitespace or control characters, a `%` not starting an escape): client libraries
 * then split the URL elsewhere, connect to a "host" made of part of the password, and echo it in
 * their errors. Throws `EndpointError` naming `name`, the characters and their encoding, with the
 * URL redacted — never the password. A URL without user info passes.
 * An `@` in a path or query also fails (the URL is ambiguous): encode it there as %40.
 * @example checkUrlCredentials(process.env.AMQP_URL ?? '', 'AMQP_URL') // throws for amqp://guest:se/cret@host
 */
export function checkUrlCredentials(url: string, name = 'the URL'): void {
  const bounds = userInfoBounds(url);
  if (bounds === undefined) return;
  const found = new Map<string, 'user name' | 'password'>();
  for (let index = bounds.start; index < bounds.at; index += 1) {
    const char = url.charAt(index);
    const part = bounds.colon !== -1 && index > bounds.colon ? 'password' : 'user name';
    if (isRefused(char, url.slice(index + 1, index + 3)) && !found.has(char)) found.set(char, part);
  }
  if (found.size === 0) return;
  const advice = [...found].map(([char, part]) => `'${describe(char)}' as ${encoding(char)} in the ${part}`).join(', ');
  const atInPath = [...found.keys()].some((char) => '/?#'.includes(char));
  throw new EndpointError(
    `${name} has ${[...found.keys()].map((char) => `'${describe(char)}'`).join(', ')} unencoded in its user info (${redactUrl(url)}): percent-encode ${advice} of ${name}` +
      (atInPath ? " (if an '@' belongs to the path or query instead, encode it there as %40)" : ''),
  );
}

function isRefused(char: string, next: string): boolean {
  if (char === '%') return !/^[0-9a-f]{2}$/i.test(next);
  return char in RESERVED || /[\s\p{Cc}]/u.test(char);
}

/** The character as an error message can show it: control and space-like characters by code point. */
function describe(char: string): string {
  return char === ' ' || !/[\s\p{Cc}]/u.test(char) ? char : `U+${hex(char).padStart(4, '0')}`;
}

function encoding(char: string): string {
  return RESERVED[char] ?? encodeURIComponent(char);
}

function hex(char: string): string {
  return (char.codePointAt(0) ?? 0).toString(16).toUpperCase();
}
