import {
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';

/** What Alipay signs answers and notifies with: its private key and, in certificate mode, the
 *  serial number of the certificate that holds the public key (sent as alipay_cert_sn). */
export interface AlipaySigner {
  key: KeyObject;
  certSn?: string;
}

export function generateRsaKeyPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
}

/** Accepts PEM, or the bare base64 body Alipay's console hands out. */
export function loadPublicKey(key: string): KeyObject {
  return createPublicKey(key.includes('-----BEGIN') ? key : wrapPem(key, 'PUBLIC KEY'));
}

export function loadPrivateKey(key: string): KeyObject {
  return createPrivateKey(key.includes('-----BEGIN') ? key : wrapPem(key, 'PRIVATE KEY'));
}

function wrapPem(base64: string, label: string): string {
  return `-----BEGIN ${label}-----\n${base64.replace(/\s+/g, '')}\n-----END ${label}-----`;
}

/** Java's Character.isWhitespace, which Alipay's StringUtils.isEmpty uses to call a value empty. */
const BLANK = /^[\t\n\v\f\r\x1C-\x1F \u1680\u2000-\u2006\u2008-\u200A\u2028\u2029\u205F\u3000]*$/;

/**
 * Alipay's v2 sign content: keys sorted by code unit, `k=v` joined by `&`, raw
 * (not URL-encoded) values. Requests exclude only `sign`; trade notifies also `sign_type`.
 * `skipEmpty` leaves out empty values, as Alipay does when it signs (its Java SDK's getSignContent).
 */
export function signContent(params: Record<string, string>, exclude: readonly string[], { skipEmpty = false } = {}): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key) && !(skipEmpty && (BLANK.test(key) || BLANK.test(params[key]!))))
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

export function rsa2Sign(content: string, privateKey: KeyObject): string {
  return createSign('RSA-SHA256').update(content, 'utf8').sign(privateKey, 'base64');
}

export function rsa2Verify(content: string, signature: string, publicKey: KeyObject): boolean {
  try {
    return createVerify('RSA-SHA256').update(content, 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}
