import { InterchangeError } from './errors.ts';
import { redactText } from './redact.ts';


/**
 * Why the broker's certificate was not accepted, or why the broker refused ours:
 * - `untrusted-ca`: not signed by a CA in `tls.ca` (or the system store when none is given), or self-signed;
 * - `hostname-mismatch`: valid, but for another name than the URL's host (or `tls.servername`);
 * - `expired`, `not-yet-valid`, `revoked`: outside its validity period, or revoked;
 * - `client-certificate-refused`: the broker refused (or missed) our client certificate (TLS alert);
 * - `invalid`: any other verification failure (bad purpose, bad signature, chain too long…).
 */
export type TlsCertificateReason = 'untrusted-ca' | 'hostname-mismatch' | 'expired' | 'not-yet-valid' | 'revoked' | 'client-certificate-refused' | 'invalid';

/**
 * The TLS handshake failed for a reason other than a certificate:
 * - `not-tls`: the server answered in plaintext (a TLS URL — `amqps:`, `mqtts:` — to a plaintext port);
 * - `interrupted`: the server closed the connection before the handshake completed (most often a
 *   plaintext port that drops what it cannot parse, as Mosquitto does);
 * - `protocol`: no common TLS version or cipher, or another TLS alert.
 */
export type TlsHandshakeReason = 'not-tls' | 'interrupted' | 'protocol';

/**
 * TLS verification failed on connect. Permanent: the same configuration fails the same way, so
 * `connect()` rejects with it at once instead of retrying. Names the broker (URL redacted) and
 * Node's TLS error code; never key material or a password.
 */
export class TlsCertificateError extends InterchangeError {
  override readonly name = 'TlsCertificateError';
  constructor(
    readonly reason: TlsCertificateReason,
    /** The broker, as a redacted URL. */
    readonly broker: string,
    /** Node's / OpenSSL's error code (`CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`…). */
    readonly tlsCode: string,
    detail: string,
  ) {
    super('TLS_CERTIFICATE', `TLS certificate check failed for ${broker} (${reason}, ${tlsCode}): ${detail}${HINTS[reason]}`, { permanent: true });
  }
}

/** The TLS handshake with the broker failed (see `TlsHandshakeReason`). Permanent, like `TlsCertificateError`. */
export class TlsHandshakeError extends InterchangeError {
  override readonly name = 'TlsHandshakeError';
  constructor(
    readonly reason: TlsHandshakeReason,
    /** The broker, as a redacted URL. */
    readonly broker: string,
    /** Node's / OpenSSL's error code (`ERR_SSL_WRONG_VERSION_NUMBER`, `ECONNRESET`…). */
    readonly tlsCode: string,
    detail: string,
  ) {
    super('TLS_HANDSHAKE', `TLS handshake with ${broker} failed (${reason}, ${tlsCode}): ${detail}${HINTS[reason]}`, { permanent: true });
  }
}

const HINTS: Readonly<Record<TlsCertificateReason | TlsHandshakeReason, string>> = {
  'untrusted-ca': ' — give the CA that signed the broker\'s certificate as tls.ca',
  'hostname-mismatch': ' — connect with the name the certificate was issued for (or set tls.servername)',
  expired: ' — the broker\'s certificate must be renewed',
  'not-yet-valid': ' — the broker\'s certificate is not valid yet (check the clocks)',
  revoked: '',
  'client-certificate-refused': ' — the broker requires a client certificate signed by a CA it trusts (tls.cert, tls.key)',
  invalid: '',
  'not-tls': ' — the port speaks plaintext: use the plaintext scheme, or the broker\'s TLS port',
  interrupted: ' — is this a plaintext port? Use the plaintext scheme, or the broker\'s TLS port',
  protocol: '',
};

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** OpenSSL alerts a server sends when it refuses (or misses) the client's certificate. */
const CLIENT_CERTIFICATE_ALERT = /ALERT_(CERTIFICATE_REQUIRED|UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|HANDSHAKE_FAILURE)$/;

export interface TlsFailureContext {
  /** The broker as a redacted URL (goes into the message). */
  readonly broker: string;
  /** Texts to cut out of the client library's message (passwords). */
  readonly secrets: readonly string[];
  /**
   * The connection was a TLS one whose handshake had not completed when `error` came: a reset or
   * close then means the server dropped our handshake (`interrupted`).
   */
  readonly handshakePending?: boolean;
}

/**
 * The typed TLS failure `error` is (Node's TLS and OpenSSL error codes), or undefined when it is not
 * one (a refused TCP connection, a timeout, a broker error: those are retried).
 */
export function tlsFailureOf(error: unknown, context: TlsFailureContext): TlsCertificateError | TlsHandshakeError | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const detail = redactText(firstLine(error.message), context.secrets);
  const certificate = certificateReason(code);
  if (certificate !== undefined) return new TlsCertificateError(certificate, context.broker, code, detail);
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_RECORD_LAYER_FAILURE') return new TlsHandshakeError('not-tls', context.broker, code, detail);
  if (code.startsWith('ERR_SSL_')) return new TlsHandshakeError('protocol', context.broker, code, detail);
  if ((code === 'ECONNRESET' || code === 'EPIPE') && (context.handshakePending === true || /before secure TLS connection was established/.test(error.message))) {
    return new TlsHandshakeError('interrupted', context.broker, code, detail);
  }
  return undefined;
}

function certificateReason(code: string): TlsCertificateReason | undefined {
  if (UNTRUSTED.has(code)) return 'untrusted-ca';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return 'hostname-mismatch';
  if (code === 'CERT_HAS_EXPIRED') return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not-yet-valid';
  if (code === 'CERT_REVOKED') return 'revoked';
  if (code.startsWith('ERR_SSL_') && CLIENT_CERTIFICATE_ALERT.test(code)) return 'client-certificate-refused';
  if (/^(CERT_|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|UNABLE_TO_DECRYPT_CERT|UNABLE_TO_DECODE_ISSUER)/.test(code)) return 'invalid';
  return undefined;
}

/** OpenSSL's messages carry a multi-line dump (library, file, line); the first meaningful line says it. */
function firstLine(message: string): string {
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(message);
  if (ssl?.[1] !== undefined) return ssl[1];
  return message.split('\n')[0]?.slice(0, 300) ?? '';
}
