import type { HeaderValue } from '../../src/core/index.ts';
import type { DeadLetterEntry, ReplayRecord } from './dead-letter-store.ts';
import { classifiedValues, redactClassified, redactText } from '../../src/security/redact-classified.ts';

/** How a body is given to the console: UTF-8 text, JSON text (pretty-printed), or base64 of bytes that are not UTF-8. */
export type BodyEncoding = 'utf8' | 'base64' | 'json';

/** A dead letter in the console's list (`GET /api/dead-letters`). */
export interface DeadLetterSummary {
  readonly id: string;
  readonly route: string;
  readonly outcome: DeadLetterEntry['outcome'];
  readonly at: number;
  readonly step: string;
  readonly code: string;
  readonly error: string;
  readonly reason?: string;
  readonly declaredAt: string;
  readonly uri?: string;
  readonly messageId: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly validationErrors?: unknown;
  /** The body's first 200 characters, as `body` would give it. */
  readonly bodyPreview: string;
  readonly replays: readonly ReplayRecord[];
}

/** One dead letter with its body (`GET /api/dead-letters/:id`). */
export interface DeadLetterDetail extends DeadLetterSummary {
  readonly body: string;
  readonly bodyEncoding: BodyEncoding;
}

const PREVIEW_CHARS = 200;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The views never show a classified value in clear (`x-classification` `personal` or `secret`): the
 * body's classified fields become their marker (`"[personal]"`), and the error, reason and header
 * texts are scrubbed of their values. There is no switch to show them: an operator who needs them
 * reads the dead-letter destination itself; a replay sends the original, unredacted message.
 */
export function summaryOf(entry: DeadLetterEntry): DeadLetterSummary {
  const classified = entry.classified ?? [];
  if (classified.length > 0) return redactedSummary(entry, classified);
  const { body, bodyEncoding } = encodeBody(entry.body, { pretty: false });
  return {
    id: entry.id,
    route: entry.route,
    outcome: entry.outcome,
    at: entry.at,
    step: entry.step,
    code: entry.code,
    error: entry.error,
    ...(entry.reason === undefined ? {} : { reason: entry.reason }),
    declaredAt: entry.declaredAt,
    ...(entry.uri === undefined ? {} : { uri: entry.uri }),
    messageId: entry.messageId,
    headers: definedHeaders(entry.headers),
    ...(entry.validationErrors === undefined ? {} : { validationErrors: entry.validationErrors }),
    bodyPreview: bodyEncoding === 'base64' || body.length <= PREVIEW_CHARS ? body.slice(0, PREVIEW_CHARS) : `${body.slice(0, PREVIEW_CHARS - 1)}…`,
    replays: entry.replays.map((replay) => ({ ...replay })),
  };
}

export function detailOf(entry: DeadLetterEntry): DeadLetterDetail {
  return { ...summaryOf(entry), ...encodeBody(redactClassified(entry.body, entry.classified ?? []), { pretty: true }) };
}

function redactedSummary(entry: DeadLetterEntry, classified: NonNullable<DeadLetterEntry['classified']>): DeadLetterSummary {
  const values = classifiedValues(entry.body, classified);
  const scrub = (text: string): string => redactText(text, values);
  const headers: Record<string, HeaderValue> = {};
  for (const [name, value] of Object.entries(definedHeaders(entry.headers))) headers[name] = typeof value === 'string' ? scrub(value) : value;
  const summary = summaryOf({ ...entry, body: redactClassified(entry.body, classified), classified: [] });
  return {
    ...summary,
    error: scrub(summary.error),
    ...(summary.reason === undefined ? {} : { reason: scrub(summary.reason) }),
    headers,
    ...(summary.validationErrors === undefined ? {} : { validationErrors: tryParse(scrub(JSON.stringify(summary.validationErrors))) ?? '[redacted]' }),
  };
}

/**
 * A body as text for the console: bytes that are UTF-8 as text (as JSON, pretty-printed, when they
 * parse as a JSON object or array), other bytes as base64, a string as is, anything else as JSON.
 */
export function encodeBody(body: unknown, { pretty }: { readonly pretty: boolean }): { body: string; bodyEncoding: BodyEncoding } {
  if (body instanceof Uint8Array) {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'), bodyEncoding: 'base64' };
    }
    const json = /^\s*[[{]/.test(text) ? tryParse(text) : undefined;
    return json === undefined ? { body: text, bodyEncoding: 'utf8' } : { body: pretty ? JSON.stringify(json, null, 2) : JSON.stringify(json), bodyEncoding: 'json' };
  }
  if (typeof body === 'string') return { body, bodyEncoding: 'utf8' };
  try {
    const text = JSON.stringify(body, null, pretty ? 2 : undefined) as string | undefined;
    if (text !== undefined) return { body: text, bodyEncoding: 'json' };
  } catch {
    // a BigInt or a cycle: shown as text below
  }
  return { body: String(body), bodyEncoding: 'utf8' };
}

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function definedHeaders(headers: DeadLetterEntry['headers']): Record<string, HeaderValue> {
  const defined: Record<string, HeaderValue> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) defined[name] = value;
  }
  return defined;
}
