import { client as createClient, xml as createXml } from '@xmpp/client';
import { pbkdf2 } from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

/**
 * SCRAM-SHA-1's `Hi()` in `sasl-scram-sha-1` (the mechanism `@xmpp/client` uses) is 10,000 (the
 * server's iteration count) awaited WebCrypto HMACs: 1.7 s of every login on this machine. `Hi` is
 * PBKDF2-HMAC-SHA-1 with one 20-byte block by definition (RFC 5802 §2.2), so it is replaced, once per
 * process, by node:crypto's `pbkdf2` — the same bytes, in milliseconds. Checked against the library's
 * own `Hi` in test/unit/xmpp-codec.test.ts.
 */
const scramBitops = createRequire(createRequire(import.meta.url).resolve('@xmpp/sasl-scram-sha-1'))('sasl-scram-sha-1/lib/bitops') as {
  Hi: (text: string, salt: Uint8Array, iterations: number) => Promise<Uint8Array>;
  __interchangePbkdf2?: boolean;
};
const pbkdf2Async = promisify(pbkdf2);
if (scramBitops.__interchangePbkdf2 !== true) {
  scramBitops.Hi = async (text, salt, iterations) => new Uint8Array(await pbkdf2Async(text, salt, iterations, 20, 'sha1'));
  scramBitops.__interchangePbkdf2 = true;
}

/**
 * Narrow local types for the parts of `@xmpp/client` 0.14 this adapter uses. `@types/xmpp__client`
 * (0.14.1, written for 0.13) omits what we rely on: the stream-management emitter's `ack`/`fail` events
 * and its `enabled`/`requestAckDebounce` fields, `reconnect.stop()`, the TCP socket; these types say
 * exactly what the library does (read in node_modules/@xmpp/stream-management/index.js, reconnect/index.js).
 */
export interface XmlElement {
  readonly name: string;
  readonly attrs: Record<string, string | undefined>;
  readonly children: readonly (XmlElement | string)[];
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildText(name: string, xmlns?: string): string | null;
  getText(): string;
  toString(): string;
}

/** `xml(name, attrs, ...children)` (ltx): escapes text and attribute values. */
export type XmlFactory = (name: string, attrs?: Record<string, string | undefined> | null, ...children: (XmlElement | string)[]) => XmlElement;

/** XEP-0198 as `@xmpp/stream-management` runs it: `ack` fires with each stanza the server's `<a h=…/>` covers; `fail` with each it will never confirm (resumption failed, client offline). */
export interface StreamManagement {
  enabled: boolean;
  /** The resumption id the server gave (`<enabled id=…/>`); empty or undefined when it is not resumable. */
  readonly id: string | undefined;
  /** ms after the last outgoing stanza before `<r/>` is sent (library default 250). */
  requestAckDebounce: number;
  on(event: 'ack' | 'fail', listener: (stanza: XmlElement) => void): void;
  /** A broken stream's session was resumed: the server kept its state (presence included). */
  on(event: 'resumed', listener: () => void): void;
}

export interface XmppClient {
  status: string;
  readonly jid: { toString(): string; bare(): { toString(): string } } | null;
  readonly options: { readonly service: string; readonly domain: string; readonly lang?: string };
  readonly socket: { setNoDelay?(noDelay: boolean): void } | null;
  readonly streamManagement: StreamManagement;
  readonly reconnect: { stop(): void };
  readonly iqCaller: { request(element: XmlElement, timeoutMs?: number): Promise<XmlElement> };
  on(event: 'stanza', listener: (stanza: XmlElement) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  on(event: 'online', listener: () => void): void;
  on(event: 'status', listener: (status: string) => void): void;
  removeAllListeners(): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  disconnect(): Promise<unknown>;
  connect(service: string): Promise<void>;
  open(options: { domain: string; lang?: string }): Promise<unknown>;
  /** Replaceable per instance: every element the library sends (its own `<enable/>` too) goes through it. */
  send(element: XmlElement): Promise<void>;
  sendMany(elements: readonly XmlElement[]): Promise<void>;
}

export interface XmppClientOptions {
  readonly service: string;
  readonly domain: string;
  readonly username: string;
  readonly password: string;
  readonly resource: string;
}

/** A new, unstarted client (SASL SCRAM-SHA-1 preferred, then PLAIN; stream management on). */
export function xmppClient(options: XmppClientOptions): XmppClient {
  return createClient({ ...options }) as unknown as XmppClient;
}

export const xml: XmlFactory = createXml as unknown as XmlFactory;
