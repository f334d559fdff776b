// The merchant API's signatures, byte for byte: merchants' code depends on them. One module for
// the API that checks them, the CLI and tests that make them, and the webhooks durapay sends.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADERS = {
  merchant: 'Durapay-Merchant',
  timestamp: 'Durapay-Timestamp',
  nonce: 'Durapay-Nonce',
  signature: 'Durapay-Signature',
} as const;

/** How far a request's timestamp may be from the server's clock, either way. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export interface SignedParts {
  /** Upper case, e.g. POST. */
  method: string;
  /** The path with its query string, exactly as sent, e.g. /v1/payments?limit=5. */
  pathWithQuery: string;
  /** Unix seconds, as sent. */
  timestamp: string;
  nonce: string;
  /** The raw body bytes; empty when there is none. */
  body?: Buffer | string;
}

const hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const hmacHex = (secret: string, data: string) => createHmac('sha256', secret).update(data, 'utf8').digest('hex');

/** S: method, path and query, timestamp, nonce and the body's SHA-256, joined by "\n". */
export function stringToSign(parts: SignedParts): string {
  return [parts.method.toUpperCase(), parts.pathWithQuery, parts.timestamp, parts.nonce, hex(parts.body ?? '')].join('\n');
}

/** The Durapay-Signature header value for S. */
export function requestSignature(secret: string, parts: SignedParts): string {
  return `v1=${hmacHex(secret, stringToSign(parts))}`;
}

/** Constant-time comparison of a received Durapay-Signature with the one the secret gives. */
export function requestSignatureMatches(secret: string, parts: SignedParts, received: string): boolean {
  const expected = Buffer.from(requestSignature(secret, parts));
  const given = Buffer.from(received);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The four headers of a signed request, for clients (the CLI, tests, merchants' reference). */
export function signRequest(
  merchantId: string,
  secret: string,
  request: { method: string; pathWithQuery: string; body?: Buffer | string },
  now = Date.now(),
): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  const nonce = randomBytes(16).toString('hex');
  return {
    [SIGNATURE_HEADERS.merchant]: merchantId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: requestSignature(secret, { ...request, timestamp, nonce }),
  };
}

/** The v1 value of a webhook: hex HMAC-SHA256(secret, t + "." + body). */
function webhookV1(secret: string, rawBody: Buffer | string, unixSeconds: number): string {
  return hmacHex(secret, `${unixSeconds}.${rawBody.toString()}`);
}

/**
 * Durapay-Signature of a webhook: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>,
 * with one v1 per secret given: during a rotation's grace period the new secret's first, then the
 * previous one's, so a receiver holding either verifies.
 */
export function webhookSignature(secrets: string | readonly string[], rawBody: Buffer | string, unixSeconds: number): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  return [`t=${unixSeconds}`, ...list.map((secret) => `v1=${webhookV1(secret, rawBody, unixSeconds)}`)].join(',');
}

/** The header's t and every v1 value, in order; undefined when it has no t or no v1. */
export function parseWebhookSignature(header: string): { t: number; v1: string[] } | undefined {
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value) && t === undefined) t = Number(value);
    else if (key === 'v1' && value) v1.push(value);
  }
  return t === undefined || v1.length === 0 ? undefined : { t, v1 };
}

/** What a merchant's receiver checks: a timestamp within the tolerance, and any one v1 value that
 *  the secret gives for this body (several during a rotation; other schemes' values are ignored). */
export function verifyWebhookSignature(
  secret: string,
  header: string,
  rawBody: Buffer | string,
  { toleranceSeconds = TIMESTAMP_TOLERANCE_SECONDS, now = Date.now() } = {},
): boolean {
  const parsed = parseWebhookSignature(header);
  if (!parsed || Math.abs(now / 1000 - parsed.t) > toleranceSeconds) return false;
  const expected = Buffer.from(webhookV1(secret, rawBody, parsed.t));
  return parsed.v1.some((value) => {
    const given = Buffer.from(value);
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}
