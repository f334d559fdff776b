// Request signing, byte for byte as durapay checks it (see the API's security schemes):
//   S = METHOD + "\n" + PATH_AND_QUERY + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + hex(sha256(body bytes))
//   Durapay-Signature: v1=<lowercase hex HMAC-SHA256(apiSecret, S)>
import { createHash, createHmac, randomBytes } from 'node:crypto';

export const SIGNATURE_HEADERS = {
  merchant: 'Durapay-Merchant',
  timestamp: 'Durapay-Timestamp',
  nonce: 'Durapay-Nonce',
  signature: 'Durapay-Signature',
} as const;

/** What a request's signature covers. */
export interface RequestToSign {
  /** The HTTP method; upper-cased when signing. */
  method: string;
  /** The path with its query string, exactly as sent (not re-encoded, not re-ordered), e.g. /v1/payments?limit=5. */
  pathWithQuery: string;
  /** Unix seconds, as sent in Durapay-Timestamp. */
  timestamp: string;
  /** As sent in Durapay-Nonce: 16-64 characters of A-Z a-z 0-9 _ -. */
  nonce: string;
  /** The raw body bytes (a string is taken as its UTF-8 bytes); none or empty when there is no body. */
  body?: Uint8Array | string;
}

/** Lowercase hex SHA-256 of the body bytes ("" when there is none). */
export function bodySha256(body: Uint8Array | string = ''): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The string to sign, S. */
export function stringToSign(request: RequestToSign): string {
  return [request.method.toUpperCase(), request.pathWithQuery, request.timestamp, request.nonce, bodySha256(request.body)].join('\n');
}

/** The Durapay-Signature value: `v1=` + hex HMAC-SHA256(secret, S). */
export function requestSignature(secret: string, request: RequestToSign): string {
  return `v1=${createHmac('sha256', secret).update(stringToSign(request), 'utf8').digest('hex')}`;
}

/** A fresh nonce: 32 hex characters of randomness. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The four Durapay-* headers of one request, with a fresh nonce and the current time. */
export function signatureHeaders(
  merchantId: string,
  secret: string,
  request: { method: string; pathWithQuery: string; body?: Uint8Array | string },
  now: Date = new Date(),
): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const nonce = newNonce();
  return {
    [SIGNATURE_HEADERS.merchant]: merchantId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: requestSignature(secret, { ...request, timestamp, nonce }),
  };
}
