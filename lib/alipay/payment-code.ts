// The buyer's payment code (付款码, Alipay's auth_code) is a bearer credential: whoever holds it
// can take the buyer's money for about a minute. The API seals it for the one activity that sends
// it to Alipay; history, PostgreSQL and logs only ever see the sealed or the masked form, and a
// keyed fingerprint that tells a repeat of the same code from another one.
//
// Sealing is asymmetric (v2): the API holds the PUBLIC half of an X25519 pair derived from the
// master key and seals each code to it (an ephemeral X25519 agreement, HKDF-SHA256, AES-256-GCM);
// only the worker, which holds the master key, opens it. An API broken into cannot open the codes
// it sealed earlier. The worker still opens v1 seals (AES-256-GCM under a key the API and the
// worker both derived from the master key), made by an API of the version before, during an upgrade.
import { createCipheriv, createDecipheriv, createHmac, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { deriveKey, paymentCodePrivateKey, rawX25519PublicKey, x25519PublicKeyFromRaw, type ApiKeys } from '../platform/master-key.js';

/** Alipay's rule: 16 to 24 digits, starting with 25 to 30. */
export const AUTH_CODE_PATTERN = /^(2[5-9]|30)\d{14,22}$/;
export const AUTH_CODE_RULE = 'must be the buyer\'s Alipay payment code: 16 to 24 digits starting with 25 to 30';

/** What the workflow carries instead of the code. */
export interface SealedPaymentCode {
  /** Sealed to the worker's key, bound to the order (its workflow id): only the worker opens it. */
  sealed: string;
  /** HMAC-SHA256 of the code: the same code gives the same fingerprint, and it reveals nothing. */
  fingerprint: string;
  /** The first 2 and last 4 digits, for people: "28************1234". */
  masked: string;
}

export function maskAuthCode(code: string): string {
  return `${code.slice(0, 2)}${'*'.repeat(Math.max(code.length - 6, 0))}${code.slice(-4)}`;
}

const b64 = (bytes: Buffer) => bytes.toString('base64url');

/** The AES key of one v2 seal: HKDF over the X25519 agreement, salted with both public keys. */
function v2Key(shared: Buffer, ephemeralPublic: Buffer, recipientPublic: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralPublic, recipientPublic]), 'durapay payment-code seal v2', 32));
}

function gcmOpen(key: Buffer, iv: string, body: string, tag: string, orderId: string): string {
  // The full 16-byte tag: without authTagLength, Node takes a 4-byte tag and checks only those.
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
  decipher.setAAD(Buffer.from(orderId));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** The API's half: seals and fingerprints, and cannot open. */
export class PaymentCodeSealer {
  private readonly fingerprintKey: Buffer;
  private readonly recipient: KeyObject;
  private readonly recipientRaw: Buffer;

  constructor(keys: Pick<ApiKeys, 'paymentCodeFingerprint' | 'paymentCodePublicKey'>) {
    this.fingerprintKey = keys.paymentCodeFingerprint;
    this.recipientRaw = keys.paymentCodePublicKey;
    this.recipient = x25519PublicKeyFromRaw(keys.paymentCodePublicKey);
  }

  fingerprint(code: string): string {
    return createHmac('sha256', this.fingerprintKey).update(code).digest('base64url');
  }

  /** `orderId` is authenticated with the code: a sealed code opens only for its own order. */
  seal(code: string, orderId: string): SealedPaymentCode {
    const ephemeral = generateKeyPairSync('x25519');
    const ephemeralRaw = rawX25519PublicKey(ephemeral.publicKey);
    const key = v2Key(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: this.recipient }), ephemeralRaw, this.recipientRaw);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(orderId));
    const body = Buffer.concat([cipher.update(code, 'utf8'), cipher.final()]);
    key.fill(0);
    const sealed = ['v2', b64(ephemeralRaw), b64(iv), b64(body), b64(cipher.getAuthTag())].join('.');
    return { sealed, fingerprint: this.fingerprint(code), masked: maskAuthCode(code) };
  }
}

/** The worker's half: opens what any API sealed, v2 and (during an upgrade) v1. */
export class PaymentCodeOpener {
  private readonly privateKey: KeyObject;
  private readonly publicRaw: Buffer;
  private readonly legacyKey: Buffer;

  constructor(masterKey: Buffer) {
    this.privateKey = paymentCodePrivateKey(masterKey);
    this.publicRaw = rawX25519PublicKey(this.privateKey);
    this.legacyKey = deriveKey(masterKey, 'payment-code seal v1');
  }

  /** The code, or undefined when the seal is not this key's for this order. */
  open(sealed: string, orderId: string): string | undefined {
    const parts = sealed.split('.');
    try {
      if (parts[0] === 'v2' && parts.length === 5 && parts.every(Boolean)) {
        const [, ephemeral, iv, body, tag] = parts as [string, string, string, string, string];
        const ephemeralRaw = Buffer.from(ephemeral, 'base64url');
        const shared = diffieHellman({ privateKey: this.privateKey, publicKey: x25519PublicKeyFromRaw(ephemeralRaw) });
        return gcmOpen(v2Key(shared, ephemeralRaw, this.publicRaw), iv, body, tag, orderId);
      }
      if (parts[0] === 'v1' && parts.length === 4 && parts.every(Boolean)) {
        const [, iv, body, tag] = parts as [string, string, string, string];
        return gcmOpen(this.legacyKey, iv, body, tag, orderId);
      }
    } catch {
      // altered, another order's, or another key's
    }
    return undefined;
  }
}
