/**
 * Where a URL's user info is, found by structure rather than by the URL grammar — a password with an
 * unencoded `/`, `?`, `#` or `@` makes the grammar ambiguous, and guessing short would show the
 * rest of the password. The user info is everything between `scheme://` (or the start, without a
 * scheme) and the LAST `@` of the whole text; its first `:` separates the user from the password.
 * When an `@` sits in a path or query this takes too much, never too little.
 * Indices are into the URL: the user info is `url.slice(start, at)`, `url[at] === '@'`; `colon` is
 * the index of its first `:`, or -1 when there is no password.
 */
export interface UserInfoBounds {
  readonly start: number;
  readonly at: number;
  readonly colon: number;
}

const SCHEME = /^\s*[a-z][a-z0-9+.-]*:\/\//i;

/** The bounds of `url`'s user info (see `UserInfoBounds`), or undefined when it has no `@`. */
export function userInfoBounds(url: string): UserInfoBounds | undefined {
  const start = SCHEME.exec(url)?.[0].length ?? url.length - url.trimStart().length;
  const at = url.lastIndexOf('@');
  if (at < start) return undefined;
  const colon = url.indexOf(':', start);
  return { start, at, colon: colon !== -1 && colon < at ? colon : -1 };
}

/**
 * Query (or `key=value` connection-string) parameters whose value is a secret: any name containing
 * pass, pwd, secret, token, auth or credential (`password`, `sslpassword`, `access_token`…), or a
 * key that is one (`key`, `api_key`, `apikey`, `sslkey`, `private-key` — not `routingKey` or
 * `partitionKey`, which say where a message went). A value runs to the next `&name=`, so an
 * unencoded `&` in it hides too much, never too little.
 */
const SECRET_PARAMETER = /((?:^|[?&;\s])[^=&?#;\s]*(?:pass|pwd|secret|token|auth|credential|(?<![a-z](?<!api|ssl|private|access|secret|client))key)[^=&?#;\s]*=)(?:[^&]|&(?![^&=]*=))*/gi;

/**
 * The one redaction policy for what Interchange logs and puts in error messages: a URL's password
 * and secret-like parameters become `***`; the user name stays (it says which account failed, and
 * is not a secret). By structure, not by URL grammar: the password is everything from the first
 * `:` after `scheme://` to the LAST `@` of the text, so a password with unencoded `/ ? # @ :` or
 * spaces is hidden whole (an `@` in a path or query makes it hide more than the password).
 * @example redactUrl('amqp://app:s3cret@rabbit:5672/prod') // 'amqp://app:***@rabbit:5672/prod'
 */
export function redactUrl(url: string): string {
  const bounds = userInfoBounds(url);
  const withoutPassword = bounds === undefined || bounds.colon === -1 ? url : `${url.slice(0, bounds.colon + 1)}***${url.slice(bounds.at)}`;
  return withoutPassword.replace(SECRET_PARAMETER, '$1***');
}

/** Removes every occurrence of `secrets` from a text (client libraries' error messages can echo a URL or a password). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join('***');
  return out;
}
