import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { KeyringError } from './keyring.ts';

/**
 * The signature algorithms: `HS256` (HMAC-SHA-256, a shared secret: per device or per sender, for
 * constrained devices), `EdDSA` (Ed25519) and `ES256` (ECDSA P-256 with SHA-256).
 */
export type SignatureAlgorithm = 'HS256' | 'EdDSA' | 'ES256';

/** Key material as accepted by the factories: a Node `KeyObject`, PEM text or a JWK. */
export type KeyMaterial = KeyObject | string | JsonWebKey;

/** Shortest HMAC secret accepted: 256 bits, the hash's output size (RFC 7518 §3.2). */
const MIN_HMAC_BYTES = 32;

/**
 * A signature key bound to ONE algorithm: a signature made with another algorithm than its key's is
 * refused (`AlgorithmNotAllowedError`), so an HMAC secret is never taken for a public key nor the
 * reverse (the algorithm-confusion attack), and `alg: none` matches no key. The material is checked
 * against the algorithm when the key is made (`KeyringError`), and never appears in `toString`,
 * `toJSON`, errors or logs. Made by `hmacKey`, `ed25519Key`, `es256Key`, `generateSignatureKey`.
 */
export class SignatureKey {
  readonly #secret: KeyObject | undefined;
  readonly #privateKey: KeyObject | undefined;
  readonly #publicKey: KeyObject | undefined;

  /** @internal use the factories */
  constructor(
    readonly alg: SignatureAlgorithm,
    material: { readonly secret?: KeyObject; readonly privateKey?: KeyObject; readonly publicKey?: KeyObject },
  ) {
    this.#secret = material.secret;
    this.#privateKey = material.privateKey;
    this.#publicKey = material.publicKey;
  }

  /** Whether this key can sign (an HMAC secret, or a private key). */
  get canSign(): boolean {
    return this.#secret !== undefined || this.#privateKey !== undefined;
  }

  /** The same key without its private half, for verifiers (an HMAC key is its secret: returned as is). */
  publicOnly(): SignatureKey {
    return this.alg === 'HS256' ? this : new SignatureKey(this.alg, { publicKey: this.#publicKey });
  }

  /** @internal the HMAC secret, or the private key */
  get signingMaterial(): KeyObject | undefined {
    return this.#secret ?? this.#privateKey;
  }

  /** @internal the HMAC secret, or the public key */
  get verifyingMaterial(): KeyObject | undefined {
    return this.#secret ?? this.#publicKey;
  }

  toString(): string {
    return `SignatureKey(${this.alg}${this.canSign ? ', can sign' : ''})`;
  }

  toJSON(): { readonly alg: SignatureAlgorithm; readonly canSign: boolean } {
    return { alg: this.alg, canSign: this.canSign };
  }
}

/**
 * An HS256 key from a shared secret of at least 32 bytes (text is taken as UTF-8).
 * @example hmacKey(process.env.DEVICE_SECRET ?? '')
 */
export function hmacKey(secret: Uint8Array | string): SignatureKey {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (bytes.byteLength < MIN_HMAC_BYTES) throw new KeyringError(`an HS256 secret has at least ${MIN_HMAC_BYTES} bytes; this one has ${bytes.byteLength}`);
  return new SignatureKey('HS256', { secret: createSecretKey(bytes) });
}

/**
 * An EdDSA (Ed25519) key: a private key (signs and verifies; its public half is derived) or a public
 * key alone (verifies).
 * @example ed25519Key({ publicKey: devicePublicPem })
 */
export function ed25519Key(material: { readonly privateKey: KeyMaterial } | { readonly publicKey: KeyMaterial }): SignatureKey {
  return asymmetricKey('EdDSA', material, (key) => key.asymmetricKeyType === 'ed25519', 'an Ed25519 key');
}

/**
 * An ES256 (ECDSA on P-256) key: a private key (signs and verifies) or a public key alone (verifies).
 * @example es256Key({ privateKey: process.env.SIGNING_KEY_PEM ?? '' })
 */
export function es256Key(material: { readonly privateKey: KeyMaterial } | { readonly publicKey: KeyMaterial }): SignatureKey {
  return asymmetricKey('ES256', material, (key) => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1', 'a P-256 EC key');
}

/**
 * A fresh key of `alg` (a random 32-byte HMAC secret, or a new key pair): for tests, device
 * simulators and the first key of a keyring.
 * @example new Keyring([{ id: 'k1', key: generateSignatureKey('EdDSA') }])
 */
export function generateSignatureKey(alg: SignatureAlgorithm): SignatureKey {
  switch (alg) {
    case 'HS256':
      return hmacKey(randomBytes(MIN_HMAC_BYTES));
    case 'EdDSA':
      return ed25519Key({ privateKey: generateKeyPairSync('ed25519').privateKey });
    case 'ES256':
      return es256Key({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey });
    default:
      throw new KeyringError(`unknown signature algorithm '${String(alg)}'`);
  }
}

function asymmetricKey(
  alg: 'EdDSA' | 'ES256',
  material: { readonly privateKey: KeyMaterial } | { readonly publicKey: KeyMaterial },
  fits: (key: KeyObject) => boolean,
  expected: string,
): SignatureKey {
  let privateKey: KeyObject | undefined;
  let publicKey: KeyObject;
  try {
    if ('privateKey' in material) {
      privateKey = toKeyObject(material.privateKey, 'private');
      publicKey = createPublicKey(privateKey);
    } else publicKey = toKeyObject(material.publicKey, 'public');
  } catch (cause) {
    throw new KeyringError(`not ${expected}: ${cause instanceof Error ? cause.message.slice(0, 120) : 'unreadable key'}`);
  }
  if (!fits(publicKey)) throw new KeyringError(`an ${alg} key must be ${expected}, got a ${publicKey.asymmetricKeyType ?? publicKey.type} key`);
  return new SignatureKey(alg, { privateKey, publicKey });
}

function toKeyObject(material: KeyMaterial, kind: 'private' | 'public'): KeyObject {
  if (typeof material === 'string') return kind === 'private' ? createPrivateKey(material) : createPublicKey(material);
  if ('type' in material && typeof (material as KeyObject).export === 'function') {
    const key = material as KeyObject;
    if (kind === 'public' && key.type === 'private') return createPublicKey(key);
    if (key.type !== kind) throw new KeyringError(`a ${kind} key is needed, got a ${key.type} key`);
    return key;
  }
  return kind === 'private' ? createPrivateKey({ key: material as JsonWebKey, format: 'jwk' }) : createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
}
