/**
 * Signing as a device does it (`npm run simulate -- --sign`), and forging as an attacker would
 * (`--forge`): a detached JWS over the payload bytes and the device id, sent as the MQTT 5 user
 * property `signature`. A constrained device needs nothing but HMAC-SHA-256 for this (docs/security.md);
 * the simulator uses `createSigner` from `interchange-eip/security`, which writes the same JWS.
 */
import { randomBytes } from 'node:crypto';
import { createMessage, type Message } from 'interchange-eip';
import { createSigner, hmacKey, Keyring, type SignatureKey, type SignatureRejection } from 'interchange-eip/security';
import { deriveDeviceKey, deviceKeyId } from '../mqtt-to-amqp/signed-devices.ts';

/**
 * The forgeries `--forge` sends, each a reading of device A on A's topic:
 * - `unsigned` — no signature at all;
 * - `wrong-key` — claims A's key id, signed with device B's key (B's key is not A's);
 * - `impersonation` — device B signs A's reading with its own, valid key (the signer is not A);
 * - `tampered` — A's genuine signature, the temperature changed after signing;
 * - `replayed` — an exact copy of a genuine reading sent earlier (topic, bytes, signature);
 * - `expired` — A's key, signed 10 minutes ago (past the bridge's 5 minutes);
 * - `unknown-key` — a key id the bridge never provisioned, with a random key.
 */
export type ForgeryKind = 'unsigned' | 'wrong-key' | 'impersonation' | 'tampered' | 'replayed' | 'expired' | 'unknown-key';

export const FORGERY_KINDS: readonly ForgeryKind[] = ['unsigned', 'wrong-key', 'impersonation', 'tampered', 'replayed', 'expired', 'unknown-key'];

/** The verdict the signed bridge gives each forgery (`x-interchange-signature-rejected`). */
export const FORGERY_VERDICTS: Readonly<Record<ForgeryKind, SignatureRejection>> = {
  unsigned: 'missing',
  'wrong-key': 'mismatch',
  impersonation: 'signer-mismatch',
  tampered: 'mismatch',
  replayed: 'replayed',
  expired: 'expired',
  'unknown-key': 'unknown-key',
};

/** What a device publishes besides topic and payload: the signature user property (absent: unsigned). */
export interface SignedPayload {
  readonly payload: Buffer;
  readonly signature?: string;
}

type Signer = (message: Message<Buffer>) => Message<Buffer> | Promise<Message<Buffer>>;

/** The signature a signer wrote (HS256 signs synchronously). */
function signatureOf(signer: Signer, deviceId: string, payload: Buffer): string {
  const signed = signer(createMessage(payload, { headers: { deviceId } }));
  if (signed instanceof Promise) throw new Error('device keys are HS256: signing is synchronous');
  return String(signed.headers.signature);
}

const signerOf = (keyId: string, key: SignatureKey, now: () => number = Date.now): Signer => createSigner<Buffer>({ keys: new Keyring([{ id: keyId, key }]), headers: ['deviceId'], now });

/**
 * A fleet's signing: `sign(deviceId, payload)` is the genuine signature of device `deviceId` (its key
 * derived from the master secret, `signed-devices.ts`); `forge(kind, …)` makes a forgery of that kind.
 */
export class FleetSigner {
  readonly #masterSecret: Uint8Array;
  readonly #signers = new Map<string, Signer>();
  readonly #now: () => number;

  constructor(masterSecret: Uint8Array, { now = Date.now }: { readonly now?: () => number } = {}) {
    this.#masterSecret = masterSecret;
    this.#now = now;
  }

  /** Device `deviceId`'s genuine signature of `payload` (over the bytes and the device id). */
  sign(deviceId: string, payload: Buffer): string {
    let signer = this.#signers.get(deviceId);
    if (signer === undefined) {
      signer = signerOf(deviceKeyId(deviceId), deriveDeviceKey(this.#masterSecret, deviceId), this.#now);
      this.#signers.set(deviceId, signer);
    }
    return signatureOf(signer, deviceId, payload);
  }

  /**
   * A forgery of device `deviceId`'s reading `payload` (never sent genuinely), with `otherDeviceId` as
   * the attacker's device. `replayed` returns `previous` — a genuine reading already sent — unchanged.
   */
  forge(kind: ForgeryKind, deviceId: string, payload: Buffer, otherDeviceId: string, previous: SignedPayload): SignedPayload {
    switch (kind) {
      case 'unsigned':
        return { payload };
      case 'wrong-key':
        return { payload, signature: signatureOf(signerOf(deviceKeyId(deviceId), deriveDeviceKey(this.#masterSecret, otherDeviceId), this.#now), deviceId, payload) };
      case 'impersonation':
        return { payload, signature: signatureOf(signerOf(deviceKeyId(otherDeviceId), deriveDeviceKey(this.#masterSecret, otherDeviceId), this.#now), deviceId, payload) };
      case 'tampered': {
        const reading = JSON.parse(payload.toString('utf8')) as { temperature: number };
        return { payload: Buffer.from(JSON.stringify({ ...reading, temperature: reading.temperature + 1.5 })), signature: this.sign(deviceId, payload) };
      }
      case 'replayed':
        return previous;
      case 'expired':
        return { payload, signature: signatureOf(signerOf(deviceKeyId(deviceId), deriveDeviceKey(this.#masterSecret, deviceId), () => this.#now() - 600_000), deviceId, payload) };
      case 'unknown-key':
        return { payload, signature: signatureOf(signerOf(`rogue-${deviceId}`, hmacKey(randomBytes(32)), this.#now), deviceId, payload) };
    }
  }
}
