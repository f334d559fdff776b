// The buyer's payment code (付款码, Alipay's auth_code) is a bearer credential: whoever holds it
// can take the buyer's money for about a minute. The API seals it for the one activity that sends
// it to Alipay; history, PostgreSQL and logs only ever see the sealed or the masked form, and a
// keyed fingerprint that tells a repeat of the same code from another one.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { deriveKey } from './master-key.js';

/** Alipay's rule: 16 to 24 digits, starting with 25 to 30. */
export const AUTH_CODE_PATTERN = /^(2[5-9]|30)\d{14,22}$/;
export const AUTH_CODE_RULE = 'must be the buyer\'s Alipay payment code: 16 to 24 digits starting with 25 to 30';

/** What the workflow carries instead of the code. */
export interface SealedPaymentCode {
  /** AES-256-GCM, bound to the order (its workflow id): only the worker opens it. */
  sealed: string;
  /** HMAC-SHA256 of the code: the same code gives the same fingerprint, and it reveals nothing. */
  fingerprint: string;
  /** The first 2 and last 4 digits, for people: "28************1234". */
  masked: string;
}

export function maskAuthCode(code: string): string {
  return `${code.slice(0, 2)}${'*'.repeat(Math.max(code.length - 6, 0))}${code.slice(-4)}`;
}

export class PaymentCodeKeys {
  private readonly sealKey: Buffer;
  private readonly fingerprintKey: Buffer;

  constructor(masterKey: Buffer) {
    this.sealKey = deriveKey(masterKey, 'payment-code seal v1');
    this.fingerprintKey = deriveKey(masterKey, 'payment-code fingerprint v1');
  }

  fingerprint(code: string): string {
    return createHmac('sha256', this.fingerprintKey).update(code).digest('base64url');
  }

  /** `orderId` is authenticated with the code: a sealed code opens only for its own order. */
  seal(code: string, orderId: string): SealedPaymentCode {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    cipher.setAAD(Buffer.from(orderId));
    const body = Buffer.concat([cipher.update(code, 'utf8'), cipher.final()]);
    const sealed = ['v1', iv, body, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
    return { sealed, fingerprint: this.fingerprint(code), masked: maskAuthCode(code) };
  }

  /** The code, or undefined when the seal is not this key's for this order. */
  open(sealed: string, orderId: string): string | undefined {
    const [version, iv, body, tag] = sealed.split('.');
    if (version !== 'v1' || !iv || !body || !tag) return undefined;
    try {
      // The full 16-byte tag: without authTagLength, Node takes a 4-byte tag and checks only those.
      const decipher = createDecipheriv('aes-256-gcm', this.sealKey, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
      decipher.setAAD(Buffer.from(orderId));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
