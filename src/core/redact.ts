/**
 * The one redaction policy for what Interchange logs and puts in error messages: a URL's password
 * and password-like query parameters (`password`, `pass`, `secret`) become `***`; the user name
 * stays (it says which account failed, and is not a secret).
 * @example redactUrl('amqp://app:s3cret@rabbit:5672/prod') // 'amqp://app:***@rabbit:5672/prod'
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:)[^@/?#]*@/i, '$1***@').replace(/((?:password|pass|secret)=)[^&]*/gi, '$1***');
}

/** Removes every occurrence of `secrets` from a text (client libraries' error messages can echo a URL or a password). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join('***');
  return out;
}
