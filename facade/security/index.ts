/**
 * `interchange-eip/security`: message security — keyrings with rotation, signed and verified
 * messages, envelope-encrypted bodies and fields. Every rejection (unsigned, tampered, wrong key,
 * expired, replayed, undecryptable) is a permanent, typed error: the message is dead-lettered with
 * the reason, never processed and never retried.
 */
export { Keyring, KeyringError, type KeyringKey } from '../../src/security/keyring.ts';
