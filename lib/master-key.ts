// DURAPAY_MASTER_KEY: the one secret from which durapay derives the keys it encrypts or
// fingerprints with. Each use gets its own key by HKDF, so no two uses ever share key material.
import { hkdfSync } from 'node:crypto';

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
