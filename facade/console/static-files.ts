import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import type { ServerResponse } from 'node:http';
import { HttpError, sendBody } from './http-utils.ts';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** The page's scripts and styles come from the console itself: no inline script, nothing from elsewhere. */
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-cache',
} as const;

/** Where the dagre layout bundle is (the page draws the graph with it). */
export function dagreBundlePath(): string {
  // the package exports no subpath for its browser bundle: found beside its package.json
  const manifest = createRequire(import.meta.url).resolve('@dagrejs/dagre/package.json');
  return join(dirname(manifest), 'dist', 'dagre.min.js');
}

/**
 * Serves `relative` (already URL-decoded, no leading slash) from `root`. 404 for anything that is not
 * a file inside `root`: `..` segments, absolute paths, NUL bytes, directories, missing files.
 */
export async function serveStatic(response: ServerResponse, root: string, relative: string): Promise<void> {
  const base = resolve(root);
  const segments = relative.split(/[\\/]/);
  if (relative.includes('\0') || segments.some((segment) => segment === '..' || segment === '.') || relative.startsWith('/')) {
    throw new HttpError(404, 'not found');
  }
  const path = resolve(base, ...segments);
  if (!path.startsWith(base + sep)) throw new HttpError(404, 'not found');
  await serveFile(response, path, `the console's page is missing: no '${relative}' in ${base} (the package ships it in facade/console/static/)`);
}

/** Sends one file, with its content type and the page's security headers; 404 saying `missing` when it is not there. */
export async function serveFile(response: ServerResponse, path: string, missing: string): Promise<void> {
  let body: Buffer;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new HttpError(404, missing);
    body = await readFile(path);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw new HttpError(404, missing);
    throw error;
  }
  sendBody(response, 200, body, CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream', PAGE_HEADERS);
}
