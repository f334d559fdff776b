// Who is calling the merchant API: every /v1 request is signed with the merchant's API secret
// (HMAC-SHA256 over method, path and query, timestamp, nonce and the body's hash), within 300 s
// of our clock, with a nonce never seen before. Any failure is a 401 with a machine-readable code,
// decided before the request can change anything, and counted against the client's address (429
// past AUTH_FAILURES_PER_MINUTE).
import type { RequestHandler, RequestParamHandler, Response } from 'express';
import type pg from 'pg';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import { claimNonce, claimNonceIfUnchanged, findMerchantCredentials, forgetOldNonces, type MerchantCredentials } from '../lib/merchants/accounts.js';
import { orderLogFields } from '../lib/payments/order-log.js';
import { MERCHANT_ID_PATTERN, toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import {
  NONCE_PATTERN,
  requestSignatureMatches,
  SIGNATURE_HEADERS,
  TIMESTAMP_TOLERANCE_SECONDS,
} from '../lib/merchants/signing.js';
import { HttpError } from './errors.js';
import type { MerchantCredentialCache } from './merchant-credentials.js';
import type { AuthFailureLimit } from './rate-limits.js';

export interface Merchant {
  id: string;
  /** The Alipay app the merchant's orders go to. */
  appId: string;
}

/** The order a request is about, for the error handler's log lines (lib/payments/order-log.ts). */
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
const unauthorized = (code: AuthCode, message: string) => new HttpError(code, message);

/** Nonces are kept for both halves of the timestamp window, and a little more. */
const NONCE_MEMORY_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS + 60;
const NONCE_CLEANUP_EVERY_MS = 60_000;

export interface SignedMerchantDeps {
  pool: pg.Pool;
  /** The configured Alipay app: the orders of a merchant without one of its own go there. */
  appId: string;
  /** Opens the merchants' sealed API secrets (lib/merchants/accounts.ts). */
  merchantSecrets: KeyProvider;
  /** Merchants' credentials, cached for a few seconds; default: asked of PostgreSQL every time. */
  credentials?: Pick<MerchantCredentialCache, 'find' | 'refresh'>;
  /** Failed authentications per client address; default: not limited. */
  authFailures?: AuthFailureLimit;
  now?: () => number;
}

const SIGNATURE_PATTERN = /^v1=[0-9a-f]{64}$/;

/**
 * Needs the raw body as a Buffer in req.body (express.raw), and parses nothing itself. The cheap
 * checks come first (an address past the limit on failures, the headers' shapes, the timestamp
 * window), so a request that fails them costs PostgreSQL nothing but the count of the failure.
 */
export function signedMerchant({ pool, appId, merchantSecrets, credentials, authFailures, now = () => Date.now() }: SignedMerchantDeps): RequestHandler {
  let lastCleanup = 0;
  const find = credentials ? (id: string) => credentials.find(id) : (id: string) => findMerchantCredentials(pool, merchantSecrets, id);

  async function authenticate(req: Parameters<RequestHandler>[0]): Promise<Merchant> {
    const header = (name: string) => req.get(name);
    for (const name of Object.values(SIGNATURE_HEADERS)) {
      if (!header(name)) throw unauthorized('AUTH_MISSING', `the ${name} header is required`);
    }
    const merchantId = header(SIGNATURE_HEADERS.merchant)!;
    const timestamp = header(SIGNATURE_HEADERS.timestamp)!;
    const nonce = header(SIGNATURE_HEADERS.nonce)!;
    const signature = header(SIGNATURE_HEADERS.signature)!;
    if (!NONCE_PATTERN.test(nonce)) throw unauthorized('AUTH_MISSING', `${SIGNATURE_HEADERS.nonce} must be 16-64 characters of A-Z a-z 0-9 _ -`);
    if (!MERCHANT_ID_PATTERN.test(merchantId)) {
      throw unauthorized('AUTH_UNKNOWN_MERCHANT', `${SIGNATURE_HEADERS.merchant} must be a merchant id: m followed by 9 lowercase letters or digits`);
    }
    if (!SIGNATURE_PATTERN.test(signature)) {
      throw unauthorized('AUTH_BAD_SIGNATURE', `${SIGNATURE_HEADERS.signature} must be v1= followed by 64 lowercase hex digits`);
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
    /** The merchant as read, if it takes this request; otherwise the 401 it gets. */
    const check = (merchant: MerchantCredentials | undefined): MerchantCredentials => {
      if (!merchant || merchant.status !== 'active') throw unauthorized('AUTH_UNKNOWN_MERCHANT', `no active merchant ${merchantId}`);
      if (!merchant.secrets.some((secret) => requestSignatureMatches(secret, parts, signature))) {
        throw unauthorized('AUTH_BAD_SIGNATURE', `${SIGNATURE_HEADERS.signature} does not match the request`);
      }
      return merchant;
    };

    let merchant: MerchantCredentials;
    const cached = await find(merchantId);
    try {
      merchant = check(cached);
    } catch (err) {
      // A secret just rotated is not in what was cached: a signature the cached secrets refuse is
      // checked against PostgreSQL's before it is refused.
      const signatureRefused = (err as HttpError).code === 'AUTH_BAD_SIGNATURE';
      if (!credentials || !signatureRefused) throw err;
      merchant = check(await credentials.refresh(merchantId));
    }
    // Only a correctly signed request spends its nonce, so nobody can burn another's nonces; and
    // only while the merchant is as it was read, so a disable or a rotation holds at once.
    if (!(await claimNonceIfUnchanged(pool, merchantId, nonce, merchant.version))) {
      const current = credentials ? await credentials.refresh(merchantId) : await findMerchantCredentials(pool, merchantSecrets, merchantId);
      if (current?.version === merchant.version) throw unauthorized('AUTH_REPLAYED_NONCE', `nonce ${nonce} was already used`);
      merchant = check(current);
      if (!(await claimNonce(pool, merchantId, nonce))) throw unauthorized('AUTH_REPLAYED_NONCE', `nonce ${nonce} was already used`);
    }
    if (now() - lastCleanup > NONCE_CLEANUP_EVERY_MS) {
      lastCleanup = now();
      forgetOldNonces(pool, NONCE_MEMORY_SECONDS).catch(() => {}); // best effort; the next one retries
    }
    // Its orders belong to its own Alipay app, or to the configured one.
    return { id: merchantId, appId: merchant.alipayAppId ?? appId };
  }

  return async (req, res, next) => {
    const blocked = authFailures?.refusalBeforeWork(req, res);
    if (blocked) throw blocked;
    try {
      res.locals.merchant = await authenticate(req);
    } catch (err) {
      // A refusal counts against the client's address; past the limit it becomes a 429.
      if (authFailures && err instanceof HttpError && err.status === 401) throw (await authFailures.failed(req, res)) ?? err;
      throw err;
    }
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
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (content-type: application/json)');
  }
  try {
    req.body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError('INVALID_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  next();
};
