import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { XmppConfigurationError } from './xmpp-errors.ts';

/** Prosody's default c2s stanza size limit (256 KiB), less room for what the server adds (`from`, `<delay/>`). */
export const DEFAULT_MAX_STANZA_BYTES = 256 * 1024 - 1024;

export interface XmppTransportOptions {
  /** `xmpp://host[:port]` (TCP, STARTTLS when the server offers it). Default: `XMPP_URL` (module), else `xmpp://127.0.0.1:5222`. */
  readonly service?: string;
  /** The account that publishes: a bare JID `name@domain`. Its domain is the XMPP domain (default `XMPP_JID` (module)). */
  readonly jid: string;
  /** Its password. Never logged. */
  readonly password: string;
  /** Passwords of the other accounts consumed (`xmpp:<jid>` endpoints), by bare JID. Never logged. */
  readonly accounts?: Readonly<Record<string, string>>;
  /** Resource names are `<resource>-<random>` (default `interchange`). */
  readonly resource?: string;
  /** How long `connect` (and a consumer's start) keeps trying an unreachable server before `NotConnectedError` (default 10,000 ms). Wrong credentials fail at once. */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff after a broken stream: first delay, ceiling (ms), ±50 % jitter (defaults 250, 30,000). Never gives up. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** How long `publish` waits for the server's stream-management ack of every message (default 30,000 ms). */
  readonly publishTimeoutMs?: number;
  /** The largest stanza `publish` sends (default 255 KiB: Prosody's 256 KiB c2s limit less headroom). */
  readonly maxStanzaBytes?: number;
  /** An inbound stanza over this many bytes is refused at intake (default 256 KiB; endpoint `maxMessageBytes`). */
  readonly maxMessageBytes?: number;
  /** A consumer's local queue (messages waiting beyond its prefetch) holds at most this many bytes of stanzas; beyond, messages are dropped, counted and logged (default 64 MiB). */
  readonly maxWaitingBytes?: number;
  /** Deliveries of a nacked message before it goes to the endpoint's `deadLetter` JID (or is dropped, logged) (default 5; endpoint `maxDeliveries`). */
  readonly maxDeliveries?: number;
}

const delays = { type: 'object', additionalProperties: false, properties: { initialDelayMs: { type: 'integer', minimum: 0 }, maxDelayMs: { type: 'integer', minimum: 1 } } } as const;
const bareJid = '^[^\\s"&\'/:<>@]{1,1023}@[A-Za-z0-9.-]{1,1023}$';

export const xmppOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'XMPP transport options',
  type: 'object',
  additionalProperties: false,
  required: ['jid', 'password'],
  properties: {
    service: { type: 'string', pattern: '^xmpps?://[^\\s/]+$', description: 'xmpp://host[:port]; default XMPP_URL, else xmpp://127.0.0.1:5222' },
    jid: { type: 'string', pattern: bareJid, description: 'the publishing account, a bare JID' },
    password: { type: 'string', minLength: 1 },
    accounts: { type: 'object', propertyNames: { pattern: bareJid }, additionalProperties: { type: 'string', minLength: 1 }, description: 'passwords of consumed accounts, by bare JID' },
    resource: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'interchange' },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 10000 },
    reconnect: delays,
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxStanzaBytes: { type: 'integer', minimum: 1024, maximum: 16777216, default: DEFAULT_MAX_STANZA_BYTES },
    maxMessageBytes: { type: 'integer', minimum: 1, default: 262144 },
    maxDeliveries: { type: 'integer', minimum: 1, maximum: 10000, default: 5 },
    maxWaitingBytes: { type: 'integer', minimum: 1, default: 67108864 },
  },
} as const;

const jidList = { type: 'string', pattern: '^[^,\\s/]+@[^,\\s/]+(,[^,\\s/]+@[^,\\s/]+)*$' } as const;

/** The query options of an `xmpp:<jid>` endpoint (strings in the URI), as JSON Schema. */
export const xmppEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'XMPP endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    trust: { ...jidList, description: 'consuming: comma-separated bare JIDs of Interchange peers whose <interchange/> envelope (id, headers) is taken; the account itself always is. Other senders: body only, a fresh id' },
    from: { ...jidList, description: 'consuming: only these senders (bare JIDs; the trusted ones and the account itself always) are taken; others are dropped and counted. Default: any sender (untrusted)' },
    envelope: { enum: ['interchange', 'none'], description: 'publishing: interchange (default: id and headers in <interchange xmlns="urn:interchange:0"/>) or none (a plain chat message: the body alone)' },
    maxDeliveries: positiveIntegerOption('consuming: deliveries of a nacked message before it goes to deadLetter (default: the transport\'s, 5)', 6),
    maxMessageBytes: positiveIntegerOption('consuming: a larger stanza is refused at intake (default: the transport\'s, 262144)', 10),
    deadLetter: { type: 'string', pattern: bareJid, description: 'consuming: the bare JID a message nacked maxDeliveries times is sent to (default: none — dropped and logged)' },
  },
} as const;

const configurationError = (message: string): Error => new XmppConfigurationError(message);
const transportOptions = defineOptions<XmppTransportOptions>(xmppOptionsSchema, { secrets: ['password', 'accounts'], error: configurationError });
const endpointOptions = defineOptions(xmppEndpointOptionsSchema, { error: configurationError });

/**
 * Checks transport options; throws `XmppConfigurationError` naming every problem (passwords masked).
 * @example validateXmppOptions({ jid: 'interchange@localhost', password: 's3cret' })
 */
export function validateXmppOptions(options: unknown): XmppTransportOptions {
  return transportOptions.validate(options, 'XMPP transport options');
}

/** Checks an endpoint's query options; throws `XmppConfigurationError` naming the URI and every problem. */
export function validateXmppEndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}
