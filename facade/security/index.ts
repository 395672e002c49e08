/**
 * `interchange-eip/security`: message security — keyrings with rotation, signed and verified
 * messages, envelope-encrypted bodies and fields. Every rejection (unsigned, tampered, wrong key,
 * expired, replayed, undecryptable) is a permanent, typed error: the message is dead-lettered with
 * the reason, never processed and never retried.
 */
export { Keyring, KeyringError, type KeyringKey } from '../../src/security/keyring.ts';
export { encrypt, encryptStep, type EncryptOptions } from '../../patterns/encrypt.ts';
export { decrypt, decryptStep, type DecryptOptions } from '../../patterns/decrypt.ts';
export { encryptBody, decryptBody, type EnvelopeOptions, type KeySource } from '../../src/security/encrypt-message.ts';
export { isEnvelope, envelopeContext, ENVELOPE_CONTENT_TYPE, type Envelope, type EncryptionKey } from '../../src/security/envelope.ts';
export { DecryptionFailedError, EncryptionKeyInvalidError, MalformedEnvelopeError, UnknownEncryptionKeyError, UnsupportedEnvelopeError } from '../../src/security/envelope-errors.ts';
export { sign, signStep, type SignStepOptions } from '../../patterns/sign.ts';
export { verify, verifyStep, ReplayMemory, type VerifyStepOptions, type ReplayOptions } from '../../patterns/verify.ts';
export {
  signMessage,
  verifyMessage,
  checkReplay,
  createSigner,
  createVerifier,
  replayKey,
  replayWindowMs,
  DEFAULT_SIGNATURE_HEADER,
  SIGNER_HEADER,
  SIGNATURE_REJECTED_HEADER,
  type SignOptions,
  type VerifyOptions,
  type SignatureInfo,
  type VerifiedMessage,
  type SigningKeys,
  type VerifyingKeys,
} from '../../src/security/signing.ts';
export { SignatureKey, hmacKey, ed25519Key, es256Key, generateSignatureKey, type SignatureAlgorithm, type KeyMaterial } from '../../src/security/signing-keys.ts';
export {
  SignatureError,
  SignatureMissingError,
  SignatureInvalidError,
  UnknownKeyError,
  AlgorithmNotAllowedError,
  SignatureExpiredError,
  SignatureFutureDatedError,
  ReplayedMessageError,
  ReplayInProgressError,
  ReplayMemoryFullError,
  SignerMismatchError,
  SigningError,
  type SignatureRejection,
} from '../../src/security/signing-errors.ts';
export { canonicalJson, CanonicalJsonError, isWellFormedText } from '../../src/security/canonical-json.ts';
export { protect, protectStep, type ProtectOptions } from '../../patterns/protect.ts';
export { classifiedFields, deriveClassifiedFields, fieldsOfClass, CLASSIFICATIONS, CLASSIFICATION_KEYWORD, REDACTED_CLASSES, PROTECTED_CLASSES, type Classification, type ClassifiedField } from '../../src/security/classification.ts';
export { redactClassified, redactText as redactClassifiedText, redactFailure, classifiedValues, classifiedValuesOf, redactionMarker, concretePointers } from '../../src/security/redact-classified.ts';
export { trustZone, trustZoneFlows, type TrustZone, type ClassifiedFlow } from '../../src/security/trust-zone.ts';
