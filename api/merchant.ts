// Who is calling the merchant API: every /v1 request is signed with the merchant's API secret
// (HMAC-SHA256 over method, path and query, timestamp, nonce and the body's hash), within 300 s
// of our clock, with a nonce never seen before. Any failure is a 401 with a machine-readable code,
// decided before the request can change anything.
import type { RequestHandler, RequestParamHandler, Response } from 'express';
import type pg from 'pg';
import type { KeyProvider } from '../lib/key-vault.js';
import { claimNonce, findMerchantCredentials, forgetOldNonces } from '../lib/merchants.js';
import { orderLogFields } from '../lib/order-log.js';
import { toAlipayOutTradeNo } from '../lib/order-numbers.js';
import {
  NONCE_PATTERN,
  requestSignatureMatches,
  SIGNATURE_HEADERS,
  TIMESTAMP_TOLERANCE_SECONDS,
} from '../lib/merchant-signing.js';
import { HttpError } from './errors.js';

export interface Merchant {
  id: string;
  /** The Alipay app the merchant's orders go to. */
  appId: string;
}

/** The order a request is about, for the error handler's log lines (lib/order-log.ts). */
export function noteOrder(res: Response, orderNo: string): void {
  const merchant = res.locals.merchant as Merchant;
  res.locals.orderLog = orderLogFields(merchant.appId, toAlipayOutTradeNo(merchant.id, orderNo));
}

/** For router.param('outTradeNo', …) on the routers under /v1. */
export const noteOrderParam: RequestParamHandler = (_req, res, next, orderNo: string) => {
  noteOrder(res, orderNo);
  next();
};

type AuthCode = 'AUTH_MISSING' | 'AUTH_UNKNOWN_MERCHANT' | 'AUTH_BAD_SIGNATURE' | 'AUTH_STALE_TIMESTAMP' | 'AUTH_REPLAYED_NONCE';
const unauthorized = (code: AuthCode, message: string) => new HttpError(401, code, message);

/** Nonces are kept for both halves of the timestamp window, and a little more. */
const NONCE_MEMORY_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS + 60;
const NONCE_CLEANUP_EVERY_MS = 60_000;

/** Needs the raw body as a Buffer in req.body (express.raw), and parses nothing itself. */
/** `merchantSecrets` opens the merchants' sealed API secrets (lib/merchants.ts). */
export function signedMerchant(pool: pg.Pool, appId: string, merchantSecrets: KeyProvider, now = () => Date.now()): RequestHandler {
  let lastCleanup = 0;
  return async (req, res, next) => {
    const header = (name: string) => req.get(name);
    for (const name of Object.values(SIGNATURE_HEADERS)) {
      if (!header(name)) throw unauthorized('AUTH_MISSING', `the ${name} header is required`);
    }
    const merchantId = header(SIGNATURE_HEADERS.merchant)!;
    const timestamp = header(SIGNATURE_HEADERS.timestamp)!;
    const nonce = header(SIGNATURE_HEADERS.nonce)!;
    const signature = header(SIGNATURE_HEADERS.signature)!;
    if (!NONCE_PATTERN.test(nonce)) throw unauthorized('AUTH_MISSING', `${SIGNATURE_HEADERS.nonce} must be 16-64 characters of A-Z a-z 0-9 _ -`);

    const merchant = await findMerchantCredentials(pool, merchantSecrets, merchantId);
    if (!merchant || merchant.status !== 'active') {
      throw unauthorized('AUTH_UNKNOWN_MERCHANT', `no active merchant ${merchantId}`);
    }
    const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
    if (!(Math.abs(now() / 1000 - seconds) <= TIMESTAMP_TOLERANCE_SECONDS)) {
      throw unauthorized('AUTH_STALE_TIMESTAMP', `${SIGNATURE_HEADERS.timestamp} must be unix seconds within ${TIMESTAMP_TOLERANCE_SECONDS} s of the server's clock`);
    }
    const parts = {
      method: req.method,
      pathWithQuery: req.originalUrl,
      timestamp,
      nonce,
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    };
    if (!merchant.secrets.some((secret) => requestSignatureMatches(secret, parts, signature))) {
      throw unauthorized('AUTH_BAD_SIGNATURE', `${SIGNATURE_HEADERS.signature} does not match the request`);
    }
    // Only a correctly signed request spends its nonce, so nobody can burn another's nonces.
    if (!(await claimNonce(pool, merchantId, nonce))) {
      throw unauthorized('AUTH_REPLAYED_NONCE', `nonce ${nonce} was already used`);
    }
    if (now() - lastCleanup > NONCE_CLEANUP_EVERY_MS) {
      lastCleanup = now();
      forgetOldNonces(pool, NONCE_MEMORY_SECONDS).catch(() => {}); // best effort; the next one retries
    }
    // Its orders belong to its own Alipay app, or to the configured one.
    res.locals.merchant = { id: merchantId, appId: merchant.alipayAppId ?? appId } satisfies Merchant;
    next();
  };
}

/** The JSON body, parsed only after the signature over its raw bytes was checked. */
export const jsonBody: RequestHandler = (req, _res, next) => {
  const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (raw.length === 0) {
    req.body = undefined;
    return next();
  }
  if (!req.is('application/json')) {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (content-type: application/json)');
  }
  try {
    req.body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'INVALID_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  next();
};
