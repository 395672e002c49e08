/** The levels a log can be set to, from the most verbose; `silent` writes nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

/** Whether `text` names a level exactly (lower case). */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/**
 * The level `text` names, case and surrounding blanks ignored; `fallback` when it is unset or blank.
 * Throws `RangeError` naming `source` and the valid levels for anything else — a typo in
 * `LOG_LEVEL` must not silently log at another level.
 * @example parseLogLevel(process.env.LOG_LEVEL) // 'info' when unset, 'debug' for LOG_LEVEL=DEBUG
 */
export function parseLogLevel(text: string | undefined, { fallback = 'info', source = 'LOG_LEVEL' }: { readonly fallback?: LogLevel; readonly source?: string } = {}): LogLevel {
  const level = text?.trim().toLowerCase() ?? '';
  if (level === '') return fallback;
  if (isLogLevel(level)) return level;
  throw new RangeError(`${source} '${text}' is not a log level: use one of ${LOG_LEVELS.join(', ')}`);
}
