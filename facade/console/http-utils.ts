import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error the console answers with its status and a JSON `{ error }` (4xx): the request's fault. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** Headers on every console response. */
const COMMON_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' } as const;

/** A JSON answer, `Cache-Control: no-store`. */
export function sendJson(response: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(value);
  response.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** A text or file answer. */
export function sendBody(response: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Readonly<Record<string, string>> = {}): void {
  response.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

export function sendError(response: ServerResponse, error: HttpError): void {
  sendJson(response, error.status, { error: error.message }, error.headers);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Throws `HttpError` 415 for a content type other
 * than `application/json`, 413 past the limit (the rest is not read), 400 for bad JSON.
 */
export async function readJson(request: IncomingMessage, limit: number): Promise<unknown> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'send the request body as JSON (Content-Type: application/json)');
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `request body over ${limit} bytes`, { Connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`, { Connection: 'close' });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, `request body is not JSON: ${(error as Error).message}`);
  }
}

/** A query parameter as a positive integer, or the fallback; 400 for anything else. */
export function integerParameter(url: URL, name: string, fallback: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new HttpError(400, `'${name}' must be a positive integer, got '${raw}'`);
  return value;
}
