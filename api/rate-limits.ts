// Rate limits: per merchant on the merchant API, per client address everywhere else (Alipay's
// notify, health, unknown paths), and per client address for failed authentications on /v1. Counts
// are shared by every API process through PostgreSQL (api/rate-limit-store.ts), in fixed one-minute
// windows per key; a process counts on its own only while PostgreSQL does not answer.
import type { Request, Response } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import { ipKeyGenerator, rateLimit, type Options, type RateLimitRequestHandler, type Store } from 'express-rate-limit';
import { HttpError } from './errors.js';
import { CHANNELS, type PgNotifications } from './pg-notifications.js';
import type { PostgresRateLimitStore } from './rate-limit-store.js';

const WINDOW_MS = 60_000;

/** Paths Express routes to the /v1 mount (case-insensitive, like Express's own matching). */
const MERCHANT_API_PATH = /^\/v1(?:\/|$)/i;

/** IPv6 clients by /56, as the per-address limit counts them. */
export const clientAddressKey = (req: Request): string => ipKeyGenerator(req.ip ?? '', 56);

function common(name: string, perMinute: number, logger: Logger, store: Store | undefined): Partial<Options> {
  return {
    windowMs: WINDOW_MS,
    limit: perMinute,
    ...(store ? { store } : {}),
    // RateLimit and RateLimit-Policy (IETF draft 8), and Retry-After once over the limit.
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: name,
    handler: (_req, res, next) => {
      const retryAfterSeconds = Number(res.getHeader('Retry-After'));
      next(
        new HttpError('RATE_LIMITED', `too many requests: at most ${perMinute} a minute ${name === 'merchant' ? 'per merchant' : 'per client address'}; retry after ${retryAfterSeconds} s`, {
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

/** Per merchant: runs after the middleware that sets res.locals.merchant, whichever it is. Without
 *  a store, each process counts on its own (MemoryStore). */
export function merchantRateLimit(perMinute: number, logger: Logger, store?: Store): RateLimitRequestHandler {
  return rateLimit({
    ...common('merchant', perMinute, logger, store),
    keyGenerator: (_req, res) => {
      // The Merchant of api/merchant.ts, which imports this file for the limit on failed authentications.
      const merchant = res.locals.merchant as { id: string } | undefined;
      // Without a merchant every caller would share one key: a wiring mistake, not a client's.
      if (!merchant) throw new Error('merchantRateLimit must run after the merchant is identified');
      return `merchant:${merchant.id}`;
    },
  });
}

/**
 * Per client address (req.ip, so TRUST_PROXY decides who the client is; IPv6 by /56) on every
 * path outside /v1. The merchant API is left to the merchant limit and to the limit on failed
 * authentications: several merchants may share one address (a platform, a NAT), and one merchant
 * may call from many.
 */
export function ipRateLimit(perMinute: number, logger: Logger, store?: Store): RateLimitRequestHandler {
  return rateLimit({
    ...common('ip', perMinute, logger, store),
    skip: (req) => MERCHANT_API_PATH.test(req.path),
  });
}

/**
 * Failed authentications on /v1, per client address, counted by every process in one store. Past
 * the limit the address is refused (429) on every process until its minute ends, its correctly
 * signed requests included: the process that saw the limit passed tells the others (NOTIFY), and
 * each then refuses the address without any work, PostgreSQL included.
 */
export class AuthFailureLimit {
  /** Client address key → when its block ends (epoch ms). */
  readonly #blocked = new Map<string, number>();

  constructor(
    readonly perMinute: number,
    private readonly store: PostgresRateLimitStore,
    private readonly pool: pg.Pool,
    notifications: PgNotifications | undefined,
    private readonly logger: Logger,
  ) {
    store.init({ windowMs: WINDOW_MS } as Options);
    notifications?.on(CHANNELS.authBlocked, (payload) => {
      try {
        const { key, until, limit } = JSON.parse(payload) as { key: string; until: number; limit: number };
        // Processes with another limit (a change being rolled out) count apart.
        if (typeof key === 'string' && Number.isFinite(until) && limit === this.perMinute) this.#block(key, until);
      } catch {
        // not ours
      }
    });
  }

  #block(key: string, until: number): void {
    if (until > (this.#blocked.get(key) ?? 0)) this.#blocked.set(key, until);
    // Forget blocks that ended, so the map holds only current ones.
    if (this.#blocked.size > 1_000) {
      const now = Date.now();
      for (const [k, end] of this.#blocked) if (end <= now) this.#blocked.delete(k);
    }
  }

  #refusal(res: Response, until: number): HttpError {
    const retryAfterSeconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    res.set('Retry-After', String(retryAfterSeconds));
    return new HttpError('RATE_LIMITED',
      `too many failed authentications: at most ${this.perMinute} a minute per client address; retry after ${retryAfterSeconds} s`,
      { limit: this.perMinute, windowSeconds: WINDOW_MS / 1000, retryAfterSeconds },
    );
  }

  /** The refusal for an address already past the limit, known without asking anyone. */
  refusalBeforeWork(req: Request, res: Response): HttpError | undefined {
    const key = clientAddressKey(req);
    const until = this.#blocked.get(key);
    if (until === undefined) return undefined;
    if (until > Date.now()) return this.#refusal(res, until);
    this.#blocked.delete(key);
    return undefined;
  }

  /** Counts a failure; past the limit, the 429 to answer instead of the 401. */
  async failed(req: Request, res: Response): Promise<HttpError | undefined> {
    const key = clientAddressKey(req);
    const { totalHits, resetTime } = await this.store.increment(key);
    if (totalHits <= this.perMinute) return undefined;
    const until = resetTime?.getTime() ?? Date.now() + WINDOW_MS;
    this.#block(key, until);
    if (totalHits === this.perMinute + 1) {
      this.logger.warn({ clientAddress: key, limit: this.perMinute }, 'too many failed authentications: client address refused until its minute ends');
      this.pool
        .query('SELECT pg_notify($1, $2)', [CHANNELS.authBlocked, JSON.stringify({ key, until, limit: this.perMinute })])
        .catch((err) => this.logger.warn({ err }, 'could not tell the other API processes of a blocked client address'));
    }
    return this.#refusal(res, until);
  }
}
