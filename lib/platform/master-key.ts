// DURAPAY_MASTER_KEY: the one secret from which durapay derives the keys it encrypts or
// fingerprints with. Each use gets its own key by HKDF, so no two uses ever share key material.
//
// The master key is the root and stays with the worker and the operator's tooling. The API, which
// faces the internet, holds only DURAPAY_API_KEYS, derived from it (deriveApiKeys): the key that
// opens merchant secrets, the payment-code fingerprint key and the PUBLIC half of the payment-code
// sealing pair. None of them opens an Alipay private key or a payment code the API sealed earlier.
import { createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

export const MASTER_KEY_RULE = 'must be 32 random bytes, as 64 hex characters or base64 (e.g. openssl rand -hex 32)';

/** The 32 key bytes from hex or base64 text; undefined when the text is neither. */
export function parseMasterKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)
      ? Buffer.from(trimmed, 'base64')
      : undefined;
  return bytes?.length === 32 ? bytes : undefined;
}

/** A 32-byte key for one purpose, e.g. "payment-code seal v1". */
export function deriveKey(masterKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `durapay ${purpose}`, 32));
}

/** What the API holds instead of the master key (DURAPAY_API_KEYS). */
export interface ApiKeys {
  /** Opens (and seals) the merchants' API and webhook secrets; the worker derives the same. */
  merchantSecrets: Buffer;
  /** HMAC key of payment-code fingerprints (a repeat of a code is told from another code). */
  paymentCodeFingerprint: Buffer;
  /** X25519 public key (32 raw bytes) payment codes are sealed to; the private half only derives from the master key. */
  paymentCodePublicKey: Buffer;
}

const API_KEYS_VERSION = 'durapay-api-keys-v1';
export const API_KEYS_RULE = `must be the line \`npm run merchant -- master-key derive-api\` prints (${API_KEYS_VERSION}.…)`;

// The fixed DER header of a PKCS#8 X25519 private key (RFC 8410), followed by the 32 key bytes.
const X25519_PKCS8_HEADER = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The payment-code opening key: an X25519 private key, derived from the master key (worker only). */
export function paymentCodePrivateKey(masterKey: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_HEADER, deriveKey(masterKey, 'payment-code x25519 v2')]), format: 'der', type: 'pkcs8' });
}

/** The 32 raw bytes of an X25519 public key (of a private or a public KeyObject). */
export function rawX25519PublicKey(key: KeyObject): Buffer {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

export function x25519PublicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function deriveApiKeys(masterKey: Buffer): ApiKeys {
  return {
    merchantSecrets: deriveKey(masterKey, 'merchant secrets v1'),
    // The label of the key the API and the worker shared before: fingerprints stay comparable across the upgrade.
    paymentCodeFingerprint: deriveKey(masterKey, 'payment-code fingerprint v1'),
    paymentCodePublicKey: rawX25519PublicKey(paymentCodePrivateKey(masterKey)),
  };
}

/** One line of text: the version, then the three keys in base64url, joined by dots. */
export function formatApiKeys(keys: ApiKeys): string {
  return [API_KEYS_VERSION, keys.merchantSecrets, keys.paymentCodeFingerprint, keys.paymentCodePublicKey]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/** The keys from formatApiKeys' text; undefined when the text is not that. */
export function parseApiKeys(text: string): ApiKeys | undefined {
  const [version, ...parts] = text.trim().split('.');
  if (version !== API_KEYS_VERSION || parts.length !== 3 || !parts.every((part) => /^[A-Za-z0-9_-]{43}$/.test(part))) return undefined;
  const [merchantSecrets, paymentCodeFingerprint, paymentCodePublicKey] = parts.map((part) => Buffer.from(part, 'base64url')) as [Buffer, Buffer, Buffer];
  if (![merchantSecrets, paymentCodeFingerprint, paymentCodePublicKey].every((key) => key.length === 32)) return undefined;
  try {
    x25519PublicKeyFromRaw(paymentCodePublicKey);
  } catch {
    return undefined;
  }
  return { merchantSecrets, paymentCodeFingerprint, paymentCodePublicKey };
}
