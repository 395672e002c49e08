import { InterchangeError } from '../core/errors.ts';

/** One key of a keyring: its id (carried in a signature or an envelope) and the key material. */
export interface KeyringKey<K> {
  readonly id: string;
  readonly key: K;
  /**
   * A retiring key still verifies or decrypts what was made with it, but never signs or encrypts:
   * rotation without downtime adds the new key as active and keeps the old one, retiring, until
   * nothing made with it is still in flight.
   */
  readonly retiring?: boolean;
}

/** A keyring is wrong: no active key, two active keys, a duplicate or empty id. Raised at construction. */
export class KeyringError extends InterchangeError {
  override readonly name = 'KeyringError';
  constructor(message: string) {
    super('KEYRING', message);
  }
}

/**
 * Keys by id with exactly one active key (used to sign or encrypt) and any number of retiring ones
 * (accepted to verify or decrypt), as JWKS key sets and KMS key versions are used: the id travels
 * with the message, so a receiver picks the key the sender used, and rotation is adding a key.
 * Key material never appears in `toString`, `toJSON` or errors.
 */
export class Keyring<K> {
  readonly #keys: ReadonlyMap<string, KeyringKey<K>>;
  readonly #active: KeyringKey<K>;

  constructor(keys: readonly KeyringKey<K>[]) {
    const byId = new Map<string, KeyringKey<K>>();
    for (const entry of keys) {
      if (entry.id === '' || entry.id.length > 128 || !/^[\w.:@/+-]+$/.test(entry.id)) {
        throw new KeyringError(`key id '${entry.id.slice(0, 40)}' is invalid: 1–128 characters of letters, digits and . : @ / + - _`);
      }
      if (byId.has(entry.id)) throw new KeyringError(`key id '${entry.id}' appears twice`);
      byId.set(entry.id, entry);
    }
    const active = keys.filter((entry) => entry.retiring !== true);
    if (active.length !== 1) {
      throw new KeyringError(`a keyring has exactly one active key (the others retiring); this one has ${active.length}: ${active.map((entry) => entry.id).join(', ') || 'none'}`);
    }
    this.#keys = byId;
    this.#active = active[0] as KeyringKey<K>;
  }

  /** The key that signs or encrypts now. */
  get active(): { readonly id: string; readonly key: K } {
    return { id: this.#active.id, key: this.#active.key };
  }

  /** The key with this id, active or retiring; `undefined` for an unknown id. */
  get(id: string): K | undefined {
    return this.#keys.get(id)?.key;
  }

  /** Every key id, active first. */
  get ids(): readonly string[] {
    return [this.#active.id, ...[...this.#keys.keys()].filter((id) => id !== this.#active.id)];
  }

  /** A new keyring with `next` active and every current key retiring (the rotation step). */
  rotate(next: { readonly id: string; readonly key: K }): Keyring<K> {
    return new Keyring([{ id: next.id, key: next.key }, ...[...this.#keys.values()].map((entry) => ({ id: entry.id, key: entry.key, retiring: true }))]);
  }

  toString(): string {
    return `Keyring(active ${this.#active.id}; ${this.#keys.size} keys)`;
  }

  toJSON(): { readonly active: string; readonly ids: readonly string[] } {
    return { active: this.#active.id, ids: this.ids };
  }
}
