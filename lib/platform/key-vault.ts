// Secrets at rest (the Alipay apps' private keys, the merchants' API and webhook secrets) by
// envelope encryption: each secret is encrypted with a data key of its own (AES-256-GCM), and only
// that data key is wrapped by a key provider: one derived from DURAPAY_MASTER_KEY for the Alipay
// keys, one from the merchant-secrets key for the merchants' secrets, or a KMS behind the same
// interface. Rotating the master key re-wraps the data keys; the ciphertexts themselves never change.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { deriveKey } from './master-key.js';

/** A data key as a provider wrapped it. */
export interface WrappedKey {
  /** Which provider and which of its keys: "local:<fingerprint>", a KMS key's ARN, … */
  keyId: string;
  wrapped: string;
}

/** What a KMS offers: wrap and unwrap data keys, never handing out its own key. */
export interface KeyProvider {
  readonly keyId: string;
  wrapKey(dataKey: Buffer): Promise<WrappedKey>;
  unwrapKey(key: WrappedKey): Promise<Buffer>;
}

/** A secret at rest: its ciphertext and its wrapped data key. JSON-safe, for a jsonb column. */
export interface SealedSecret {
  v: 1;
  key: WrappedKey;
  iv: string;
  ciphertext: string;
  tag: string;
}

export class KeyVaultError extends Error {
  override name = 'KeyVaultError';
}

const b64 = (bytes: Buffer) => bytes.toString('base64url');
const bytes = (text: string) => Buffer.from(text, 'base64url');

function gcmSeal(key: Buffer, plaintext: Buffer, aad: string) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: b64(iv), ciphertext: b64(ciphertext), tag: b64(cipher.getAuthTag()) };
}

/** GCM's full tag: without it, Node takes a tag of 4 bytes and checks only those. */
const GCM_TAG_BYTES = 16;

function gcmOpen(key: Buffer, sealed: { iv: string; ciphertext: string; tag: string }, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, bytes(sealed.iv), { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(bytes(sealed.tag));
  return Buffer.concat([decipher.update(bytes(sealed.ciphertext)), decipher.final()]);
}

/** A provider whose wrapping key is derived from a local key: DURAPAY_MASTER_KEY, or a key derived from it. */
class LocalKeyProvider implements KeyProvider {
  readonly keyId: string;
  private readonly wrappingKey: Buffer;

  constructor(
    rootKey: Buffer,
    prefix: string,
    /** What an operator calls the key, in messages. */
    private readonly keyName: string,
  ) {
    this.wrappingKey = deriveKey(rootKey, 'data-key wrapping v1');
    // Names the key without revealing anything about it.
    this.keyId = `${prefix}:${createHmac('sha256', deriveKey(rootKey, 'key id v1')).update('durapay').digest('hex').slice(0, 16)}`;
  }

  async wrapKey(dataKey: Buffer): Promise<WrappedKey> {
    const sealed = gcmSeal(this.wrappingKey, dataKey, this.keyId);
    return { keyId: this.keyId, wrapped: `${sealed.iv}.${sealed.ciphertext}.${sealed.tag}` };
  }

  async unwrapKey(key: WrappedKey): Promise<Buffer> {
    if (key.keyId !== this.keyId) {
      throw new KeyVaultError(`the data key is wrapped by ${key.keyId}; this ${this.keyName} is ${this.keyId} (rotated without updating it?)`);
    }
    const [iv = '', ciphertext = '', tag = ''] = key.wrapped.split('.');
    try {
      return gcmOpen(this.wrappingKey, { iv, ciphertext, tag }, this.keyId);
    } catch {
      throw new KeyVaultError(`the data key wrapped by ${key.keyId} does not open: it was altered`);
    }
  }
}

/** The provider behind DURAPAY_MASTER_KEY, for the Alipay apps' private keys: the worker and the
 *  operator's tooling hold it, the API never does. */
export class MasterKeyProvider extends LocalKeyProvider {
  constructor(masterKey: Buffer) {
    super(masterKey, 'local', 'DURAPAY_MASTER_KEY');
  }
}

/** The provider of the merchants' API and webhook secrets, from the merchant-secrets key
 *  (ApiKeys.merchantSecrets: derived from DURAPAY_MASTER_KEY, or given to the API in DURAPAY_API_KEYS). */
export function merchantSecretsVault(merchantSecretsKey: Buffer): KeyProvider {
  return new LocalKeyProvider(merchantSecretsKey, 'merchant-secrets', 'merchant-secrets key (DURAPAY_MASTER_KEY or DURAPAY_API_KEYS)');
}

/** `context` names what the secret is and whose (e.g. "alipay_apps:2021…:private_key"): a
 *  ciphertext moved to another row does not open there. */
export async function sealSecret(provider: KeyProvider, plaintext: string, context: string): Promise<SealedSecret> {
  const dataKey = randomBytes(32);
  try {
    return { v: 1, key: await provider.wrapKey(dataKey), ...gcmSeal(dataKey, Buffer.from(plaintext, 'utf8'), context) };
  } finally {
    dataKey.fill(0);
  }
}

export async function openSecret(provider: KeyProvider, sealed: SealedSecret, context: string): Promise<string> {
  const dataKey = await provider.unwrapKey(sealed.key);
  try {
    return gcmOpen(dataKey, sealed, context).toString('utf8');
  } catch {
    throw new KeyVaultError(`a secret for ${context} does not open: it was altered, or belongs elsewhere`);
  } finally {
    dataKey.fill(0);
  }
}

/** The same secret under another provider's key (master key rotation): only the data key changes. */
export async function rewrapSecret(from: KeyProvider, to: KeyProvider, sealed: SealedSecret): Promise<SealedSecret> {
  const dataKey = await from.unwrapKey(sealed.key);
  try {
    return { ...sealed, key: await to.wrapKey(dataKey) };
  } finally {
    dataKey.fill(0);
  }
}
