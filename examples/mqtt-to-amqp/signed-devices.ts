/**
 * Device keys of the signed flagship (`signed-route.ts`, `npm run simulate -- --sign`): one HS256 key
 * per device, key id `device-<deviceId>`.
 *
 * For the demo every device's key is derived from one master secret with HKDF-SHA-256 (RFC 5869), so
 * the bridge and the simulator need to share that secret alone. In production each device is
 * provisioned with a key of its own (random, in its secure element) and the bridge looks it up in a
 * device registry; any `(keyId) => SignatureKey | undefined` plugs in where `derivedDeviceKeys` does
 * (`signedFlowRoutes({ deviceKeys })`) — an Ed25519 public key per device (`ed25519Key({ publicKey })`)
 * keeps the bridge unable to sign as a device.
 */
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hmacKey, Keyring, type SignatureKey } from 'interchange-eip/security';

/** A device's key id: `device-<deviceId>`. `bindTo` in the bridge ties it to the topic's device id. */
export function deviceKeyId(deviceId: string): string {
  return `device-${deviceId}`;
}

/** What `device.telemetry@1` allows as a device id (letters, digits, `_`, `-`; up to 64). */
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** HKDF salt: names the purpose, so the same master secret derives other keys elsewhere without collision. */
const SALT = 'interchange-eip flagship device signing keys v1';
/** A master secret shorter than this is refused (HKDF adds no entropy). */
const MIN_MASTER_SECRET_BYTES = 32;

/** Refuses a master secret shorter than 32 bytes; never shows it. */
function checkMasterSecret(masterSecret: Uint8Array): void {
  if (masterSecret.byteLength < MIN_MASTER_SECRET_BYTES) throw new RangeError(`the device master secret has at least ${MIN_MASTER_SECRET_BYTES} bytes; this one has ${masterSecret.byteLength} (e.g. openssl rand -base64 32)`);
}

/**
 * Device `deviceId`'s HS256 key: HKDF-SHA-256(master secret, salt, info `device-<deviceId>`), 32 bytes.
 * Throws `RangeError` for a master secret under 32 bytes or a device id the contract does not allow.
 */
export function deriveDeviceKey(masterSecret: Uint8Array, deviceId: string): SignatureKey {
  checkMasterSecret(masterSecret);
  if (!DEVICE_ID.test(deviceId)) throw new RangeError(`not a device id: '${deviceId.slice(0, 80)}'`);
  return hmacKey(new Uint8Array(hkdfSync('sha256', masterSecret, SALT, deviceKeyId(deviceId), 32)));
}

/** What a device signs with: a keyring of its one key, `device-<deviceId>`. */
export function deviceKeyring(masterSecret: Uint8Array, deviceId: string): Keyring<SignatureKey> {
  return new Keyring([{ id: deviceKeyId(deviceId), key: deriveDeviceKey(masterSecret, deviceId) }]);
}

/**
 * The bridge's key lookup for `verify({ keys })`: `device-<deviceId>` → that device's derived key;
 * any other key id → `undefined` (the message is refused as `unknown-key`). Keys are derived once and
 * kept (at most `cacheSize`, then the cache starts over).
 * @example from(source).verify({ keys: derivedDeviceKeys(masterSecret), headers: ['deviceId'], bindTo })
 */
export function derivedDeviceKeys(masterSecret: Uint8Array, { cacheSize = 10_000 }: { readonly cacheSize?: number } = {}): (keyId: string) => SignatureKey | undefined {
  checkMasterSecret(masterSecret);
  const secret = Uint8Array.from(masterSecret);
  const cache = new Map<string, SignatureKey>();
  return (keyId) => {
    if (!keyId.startsWith('device-')) return undefined;
    const deviceId = keyId.slice('device-'.length);
    if (!DEVICE_ID.test(deviceId)) return undefined;
    let key = cache.get(deviceId);
    if (key === undefined) {
      if (cache.size >= cacheSize) cache.clear();
      key = deriveDeviceKey(secret, deviceId);
      cache.set(deviceId, key);
    }
    return key;
  };
}

/**
 * The master secret from the environment: `DEVICE_MASTER_SECRET` (its UTF-8 bytes), else the contents
 * of the file `DEVICE_MASTER_SECRET_FILE` (trailing newline dropped); `undefined` when neither is set.
 * Throws `RangeError` for a secret under 32 bytes (the message never shows it).
 */
export function masterSecretFromEnvironment(env: NodeJS.ProcessEnv = process.env): Uint8Array | undefined {
  const text = env.DEVICE_MASTER_SECRET || (env.DEVICE_MASTER_SECRET_FILE ? readFileSync(env.DEVICE_MASTER_SECRET_FILE, 'utf8').replace(/\r?\n$/, '') : undefined);
  if (text === undefined) return undefined;
  const secret = Buffer.from(text, 'utf8');
  checkMasterSecret(secret);
  return secret;
}
