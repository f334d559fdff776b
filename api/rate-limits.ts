// Rate limits: per merchant on the merchant API, per client address everywhere else (Alipay's
// notify, health, unknown paths). Counts live in each process's memory (express-rate-limit's
// MemoryStore), in fixed one-minute windows per key; see README for several API processes.
import type { Logger } from 'pino';
import { rateLimit, type Options, type RateLimitRequestHandler } from 'express-rate-limit';
import { HttpError } from './errors.js';
import type { Merchant } from './merchant.js';

const WINDOW_MS = 60_000;

/** Paths Express routes to the /v1 mount (case-insensitive, like Express's own matching). */
const MERCHANT_API_PATH = /^\/v1(?:\/|$)/i;

function common(name: string, perMinute: number, logger: Logger): Partial<Options> {
  return {
    windowMs: WINDOW_MS,
    limit: perMinute,
    // RateLimit and RateLimit-Policy (IETF draft 8), and Retry-After once over the limit.
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: name,
    handler: (_req, res, next) => {
      const retryAfterSeconds = Number(res.getHeader('Retry-After'));
      next(
        new HttpError(429, 'RATE_LIMITED', `too many requests: at most ${perMinute} a minute ${name === 'merchant' ? 'per merchant' : 'per client address'}; retry after ${retryAfterSeconds} s`, {
          limit: perMinute,
          windowSeconds: WINDOW_MS / 1000,
          retryAfterSeconds,
        }),
      );
    },
    // The library's checks (e.g. X-Forwarded-For seen while TRUST_PROXY is off, logged once)
    // go to the service's log, not to stderr.
    logger: {
      warn: (err, msg) => logger.warn({ err }, msg ?? 'rate limiter: possible misconfiguration'),
      error: (err, msg) => logger.error({ err }, msg ?? 'rate limiter: possible misconfiguration'),
    },
  };
}

/** Per merchant: runs after the middleware that sets res.locals.merchant, whichever it is. */
export function merchantRateLimit(perMinute: number, logger: Logger): RateLimitRequestHandler {
  return rateLimit({
    ...common('merchant', perMinute, logger),
    keyGenerator: (_req, res) => {
      const merchant = res.locals.merchant as Merchant | undefined;
      // Without a merchant every caller would share one key: a wiring mistake, not a client's.
      if (!merchant) throw new Error('merchantRateLimit must run after the merchant is identified');
      return `merchant:${merchant.id}`;
    },
  });
}

/**
 * Per client address (req.ip, so TRUST_PROXY decides who the client is; IPv6 by /56) on every
 * path outside /v1. The merchant API is left to the merchant limit: several merchants may share
 * one address (a platform, a NAT), and one merchant may call from many.
 */
export function ipRateLimit(perMinute: number, logger: Logger): RateLimitRequestHandler {
  return rateLimit({
    ...common('ip', perMinute, logger),
    skip: (req) => MERCHANT_API_PATH.test(req.path),
  });
}
