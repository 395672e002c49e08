import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-utils.ts';

/** Shortest write token the console takes: a guessable one would open writes to anyone who can reach it. */
export const MIN_TOKEN_LENGTH = 16;

const TOKEN_HINT = 'start the console with a token (INTERCHANGE_CONSOLE_TOKEN for interchange run, the token option for startConsole)';

/** `127.0.0.1` (and all of 127/8), `::1`, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  if (bare.startsWith('::ffff:')) return isLoopbackHost(bare.slice('::ffff:'.length));
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/**
 * Throws unless the console may listen there: any address but loopback needs a token, and a token
 * must be at least `MIN_TOKEN_LENGTH` characters.
 */
export function checkBinding(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new RangeError(`the console token must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24)`);
  }
  if (token === undefined && !isLoopbackHost(host)) {
    throw new RangeError(`the console listens on ${host}, which is not loopback: anyone who can reach it could read dead letters; ${TOKEN_HINT}, or listen on 127.0.0.1`);
  }
}

/** Whether the request's `Authorization: Bearer <token>` is the token (compared in constant time). */
export function hasToken(request: IncomingMessage, token: string): boolean {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) return false;
  // hashed first, so the comparison takes the same time whatever the lengths
  const given = createHash('sha256').update(match[1] ?? '').digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, expected);
}

/**
 * The console's access rules, per request:
 * - with a token: every request needs `Authorization: Bearer <token>`, except the probes and the
 *   scrape (`/health/*`, `/metrics`: states and counters, no message data) and the page's own static
 *   files (the page asks for the token and sends it with each API call);
 * - without a token (loopback only): reads are open to local clients, whose `Host` header must name a
 *   loopback host (a web page cannot reach the console through DNS rebinding); writes are refused (403).
 */
export function authorize(request: IncomingMessage, { token, write, open }: { readonly token: string | undefined; readonly write: boolean; readonly open: boolean }): void {
  if (token !== undefined) {
    if (open || hasToken(request, token)) return;
    throw new HttpError(401, 'this console needs Authorization: Bearer <token> (the token it was started with)', { 'WWW-Authenticate': 'Bearer realm="interchange console"' });
  }
  if (!open && !isLoopbackHost(hostnameOf(request.headers.host ?? ''))) {
    throw new HttpError(403, `Host '${request.headers.host ?? ''}' is not loopback: without a token the console answers local clients only`);
  }
  if (write) throw new HttpError(403, `writes (replay, stop, start) are refused: ${TOKEN_HINT}`);
}

/** `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `[::1]`. */
function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.split(':')[0] ?? '';
}
