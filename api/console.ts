// The web console's API, under /console/api: logins and their sessions (a secure, HttpOnly,
// SameSite=Strict cookie), a CSRF token on every change, failed logins throttled in PostgreSQL,
// and an audit row for every change. Behind a session it serves the same routers the signed /v1
// serves (merchant staff, for their own merchant) and the same router /ops serves (operators), so
// the console has no rules of its own to drift from the API's; only what the API had no endpoint
// for is here (the audit, the merchants, a merchant's own API secret rotation, and its
// reconciliation findings and CSV export in api/console-reports.ts).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createMerchant, listMerchants, rotateMerchantSecret, setMerchantStatus } from '../lib/merchants/accounts.js';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import type { ConsoleSettings } from '../lib/platform/config.js';
import { findConsoleUserByEmail, MAX_PASSWORD_LENGTH, unknownUserHash, verifyPassword, type ConsoleRole } from '../lib/console/users.js';
import { HttpError, invalidRequest } from './errors.js';
import type { Merchant } from './merchant.js';
import { unknownFields } from './payments.js';
import { consoleReportsRouter } from './console-reports.js';
import { clientAddressKey } from './rate-limits.js';
import { wholeNumberParam } from './schemas.js';

export const CONSOLE_COOKIE = 'durapay_console';
export const CSRF_HEADER = 'X-CSRF-Token';
/** More than this many failed logins for one e-mail address, or from one client address, within
 *  the window, and the next login is refused. */
export const MAX_FAILED_LOGINS = 5;
export const FAILED_LOGIN_WINDOW_MINUTES = 15;
const COOKIE_ATTRIBUTES = 'Path=/console; HttpOnly; Secure; SameSite=Strict';
const CLEANUP_EVERY_MS = 60_000;
export const MAX_AUDIT_PAGE = 200;

// ---- Request bodies and queries (the OpenAPI document is generated from these).

const LOGIN_EMAIL_RULE = 'must be an e-mail address (at most 254 characters)';
export const loginBody = z
  .strictObject(
    {
      email: z.string({ error: LOGIN_EMAIL_RULE }).max(254, LOGIN_EMAIL_RULE).regex(/^\s*[^@\s]+@[^@\s]+\s*$/, LOGIN_EMAIL_RULE),
      password: z
        .string({ error: `must be a string of 1 to ${MAX_PASSWORD_LENGTH} characters` })
        .min(1, `must be a string of 1 to ${MAX_PASSWORD_LENGTH} characters`)
        .max(MAX_PASSWORD_LENGTH, `must be a string of 1 to ${MAX_PASSWORD_LENGTH} characters`),
    },
    unknownFields,
  )
  .meta({ id: 'ConsoleLoginRequest', examples: [{ email: 'operator@durapay.local', password: 'correct horse battery staple' }] });

const GRACE_RULE = 'must be a whole number of seconds from 0 to 604800 (7 days)';
export const rotateOwnSecretBody = z
  .strictObject(
    {
      graceSeconds: z
        .int({ error: GRACE_RULE })
        .min(0, GRACE_RULE)
        .max(604_800, GRACE_RULE)
        .meta({ description: 'How long the previous API secret stays valid (default 86400, a day; 0 ends it at once).' })
        .optional(),
    },
    unknownFields,
  )
  .meta({ id: 'ConsoleRotateSecretRequest', examples: [{ graceSeconds: 86_400 }, {}] });

const NAME_RULE = 'must be 1-128 characters';
export const createMerchantBody = z
  .strictObject({ name: z.string({ error: NAME_RULE }).trim().min(1, NAME_RULE).max(128, NAME_RULE) }, unknownFields)
  .meta({ id: 'ConsoleCreateMerchantRequest', examples: [{ name: 'Tea House' }] });

const AUDIT_LIMIT_RULE = `must be a whole number from 1 to ${MAX_AUDIT_PAGE}`;
export const auditQuery = z.strictObject(
  {
    limit: wholeNumberParam(1, MAX_AUDIT_PAGE, AUDIT_LIMIT_RULE, `Rows in this answer (default 50, at most ${MAX_AUDIT_PAGE}).`).optional(),
    before: wholeNumberParam(1, Number.MAX_SAFE_INTEGER, 'must be a whole number from 1', 'Only rows older than this id: the nextBefore of the previous page.').optional(),
  },
  unknownFields,
);

export const merchantIdParam = z.string().regex(/^m[a-z0-9]{9}$/, 'must be a merchant id: m followed by 9 lowercase letters or digits');

// ---- Sessions.

export interface ConsoleSession {
  tokenHash: Buffer;
  csrfToken: string;
  expiresAt: Date;
  user: { id: string; email: string; role: ConsoleRole; merchantId: string | null };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** The value of the console cookie in the Cookie header, if any. */
function sessionCookie(req: Request): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === CONSOLE_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const clearCookie = (res: Response) => res.append('Set-Cookie', `${CONSOLE_COOKIE}=; ${COOKIE_ATTRIBUTES}; Max-Age=0`);

function sessionAnswer(session: ConsoleSession) {
  return { user: session.user, csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString() };
}

/** Constant time, as SHA-256 digests so lengths never leak. */
const sameSecret = (given: string, expected: string) => timingSafeEqual(sha256(given), sha256(expected));

function isChange(req: Request): boolean {
  return req.method !== 'GET' && req.method !== 'HEAD';
}

/** The role's answer: an operator for /ops, merchant staff for /v1. */
export function requireRole(kind: 'operator' | 'merchant'): RequestHandler {
  return (_req, res, next) => {
    const session = res.locals.consoleSession as ConsoleSession;
    const ok = kind === 'operator' ? session.user.role === 'operator' : session.user.merchantId !== null;
    if (!ok) {
      return next(
        new HttpError(
          'FORBIDDEN_ROLE',
          kind === 'operator' ? 'only an operator may use /console/api/ops' : "only a merchant's staff may use /console/api/v1; operators use /console/api/ops",
        ),
      );
    }
    next();
  };
}

// ---- The audit.

/** Fields whose name says they hold a credential: never written to the audit. */
const SECRET_FIELD = /password|secret|key|token|authcode/i;

export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).filter(([name]) => !SECRET_FIELD.test(name)).map(([name, inner]) => [name, redact(inner)]));
  }
  return Buffer.isBuffer(value) ? null : value;
}

interface AuditActor {
  id: string | null;
  email: string | null;
  role: string | null;
}

/** The route each request ends at, as its pattern and parameters: Express sets req.route (with
 *  req.baseUrl and req.params as that route sees them) when it dispatches to a route. */
function noteRoute(req: Request, res: Response): void {
  let route: unknown;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set: (value: { path?: unknown } | undefined) => {
      route = value;
      if (value && typeof value.path === 'string') {
        res.locals.consoleRoute = { pattern: `${req.baseUrl}${value.path}`, params: { ...(req.params ?? {}) } };
      }
    },
  });
}

function auditAfterAnswer(pool: pg.Pool, logger: Logger): RequestHandler {
  // One write at a time, in the order the answers went: the rows' ids follow them (in this process).
  let writes: Promise<unknown> = Promise.resolve();
  return (req, res, next) => {
    if (!isChange(req)) return next();
    noteRoute(req, res);
    const address = req.ip ?? null;
    let written = false;
    // After the answer; or, should the client go away first, when the connection closes.
    const write = () => {
      if (written) return;
      written = true;
      const session = res.locals.consoleSession as ConsoleSession | undefined;
      const actor: AuditActor = session
        ? { id: session.user.id, email: session.user.email, role: session.user.role }
        : ((res.locals.consoleActor as AuditActor | undefined) ?? { id: null, email: null, role: null });
      const route = res.locals.consoleRoute as { pattern: string; params: Record<string, string> } | undefined;
      const body = req.body === undefined || Buffer.isBuffer(req.body) ? null : redact(req.body);
      const at = new Date();
      const insert = () =>
        pool
        .query(
          `INSERT INTO console_audit (user_id, user_email, user_role, action, target, status, address, request_id, detail, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
            actor.id,
            actor.email,
            actor.role,
            `${req.method} ${route?.pattern ?? req.originalUrl.split('?')[0]}`,
            JSON.stringify(route?.params ?? {}),
            res.statusCode,
            address,
            res.locals.requestId ?? null,
            body === null ? null : JSON.stringify(body),
            at,
          ],
        )
        .catch((err) => logger.error({ err, method: req.method, status: res.statusCode }, 'could not write the console audit row'));
      writes = writes.then(insert);
    };
    res.once('finish', write);
    res.once('close', write);
    next();
  };
}

// ---- The router.

export interface ConsoleApiDeps {
  pool: pg.Pool;
  logger: Logger;
  settings: ConsoleSettings;
  /** The configured Alipay app: the orders of a merchant without one of its own go there. */
  appId: string;
  /** Seals merchants' API and webhook secrets (the API's merchant-secrets key). */
  merchantSecrets: KeyProvider;
  /** The routers the signed /v1 serves, in its order, and what runs before them there after the
   *  merchant is known (its rate limit). */
  merchantApi: RequestHandler[];
  merchantRateLimit: RequestHandler;
  /** /v1's body reader: raw bytes, then JSON. */
  merchantBody: RequestHandler[];
  /** The router /ops serves, behind operators' sessions instead of OPS_TOKEN. */
  opsApi: (authorize: RequestHandler) => RequestHandler;
  now?: () => number;
}

export function consoleApiRouter(deps: ConsoleApiDeps): Router {
  const { pool, logger, settings } = deps;
  const router = Router();
  const idleSeconds = settings.sessionIdleMs / 1000;
  let lastCleanup = 0;

  function cleanup(): void {
    if (Date.now() - lastCleanup < CLEANUP_EVERY_MS) return;
    lastCleanup = Date.now();
    // Best effort; the next one retries.
    pool
      .query(
        // Sessions a day after they ended (until then, their cookie still gets SESSION_EXPIRED).
        `WITH s AS (DELETE FROM console_sessions
                    WHERE expires_at < now() - interval '1 day' OR last_seen_at < now() - $1 * interval '1 second' - interval '1 day')
         DELETE FROM console_login_failures WHERE at < now() - interval '1 day'`,
        [idleSeconds],
      )
      .catch(() => {});
  }

  router.use(auditAfterAnswer(pool, logger));

  /** The session named by the cookie, touched; SESSION_REQUIRED or SESSION_EXPIRED otherwise. */
  const requireSession: RequestHandler = async (req, res, next) => {
    const token = sessionCookie(req);
    if (!token) throw new HttpError('SESSION_REQUIRED', `log in first: POST /console/api/session (no ${CONSOLE_COOKIE} cookie)`);
    const tokenHash = sha256(token);
    const { rows } = await pool.query(
      `SELECT s.csrf_token, s.expires_at, u.id, u.email, u.role, u.merchant_id, u.disabled,
              (s.expires_at <= now() OR s.last_seen_at + $2 * interval '1 second' <= now()) AS expired
       FROM console_sessions s JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = $1`,
      [tokenHash, idleSeconds],
    );
    const row = rows[0];
    if (!row || row.disabled) {
      clearCookie(res);
      throw new HttpError('SESSION_REQUIRED', 'no such session: log in again');
    }
    if (row.expired) {
      clearCookie(res);
      await pool.query('DELETE FROM console_sessions WHERE token_hash = $1', [tokenHash]);
      throw new HttpError('SESSION_EXPIRED', 'the session has ended: log in again');
    }
    const touched = await pool.query(
      `UPDATE console_sessions SET last_seen_at = now() WHERE token_hash = $1
       RETURNING least(expires_at, now() + $2 * interval '1 second') AS ends`,
      [tokenHash, idleSeconds],
    );
    const session: ConsoleSession = {
      tokenHash,
      csrfToken: row.csrf_token,
      expiresAt: touched.rows[0]?.ends ?? row.expires_at,
      user: { id: row.id, email: row.email, role: row.role, merchantId: row.merchant_id ?? null },
    };
    res.locals.consoleSession = session;
    next();
  };

  /** Every change needs the session's CSRF token in X-CSRF-Token, before anything is read. */
  const requireCsrf: RequestHandler = (req, res, next) => {
    if (!isChange(req)) return next();
    const session = res.locals.consoleSession as ConsoleSession;
    const given = req.get(CSRF_HEADER);
    if (!given || !sameSecret(given, session.csrfToken)) {
      throw new HttpError('CSRF_TOKEN_INVALID', `send the session's csrfToken in the ${CSRF_HEADER} header with every change`);
    }
    next();
  };

  const json = express.json({ limit: '4kb' });

  // ---- Logins.

  async function refusalForFailures(email: string, address: string, res: Response): Promise<HttpError | undefined> {
    const { rows } = await pool.query(
      `SELECT key, count, ceil(extract(epoch FROM release - now()))::int AS retry_after FROM (
         SELECT 'email' AS key, count(*)::int AS count,
                (SELECT at FROM console_login_failures WHERE email = $1 AND at > now() - $3 * interval '1 minute' ORDER BY at DESC OFFSET ($4::int - 1) LIMIT 1)
                  + $3 * interval '1 minute' AS release
         FROM console_login_failures WHERE email = $1 AND at > now() - $3 * interval '1 minute'
         UNION ALL
         SELECT 'address', count(*)::int,
                (SELECT at FROM console_login_failures WHERE address = $2 AND at > now() - $3 * interval '1 minute' ORDER BY at DESC OFFSET ($4::int - 1) LIMIT 1)
                  + $3 * interval '1 minute'
         FROM console_login_failures WHERE address = $2 AND at > now() - $3 * interval '1 minute'
       ) counts WHERE count >= $4::int`,
      [email, address, FAILED_LOGIN_WINDOW_MINUTES, MAX_FAILED_LOGINS],
    );
    if (rows.length === 0) return undefined;
    const retryAfterSeconds = Math.max(1, ...rows.map((row) => Number(row.retry_after) || 1));
    res.set('Retry-After', String(retryAfterSeconds));
    const which = rows.map((row) => (row.key === 'email' ? 'for this e-mail address' : 'from this address')).join(' and ');
    return new HttpError(
      'TOO_MANY_LOGIN_ATTEMPTS',
      `too many failed logins ${which}: more than ${MAX_FAILED_LOGINS} within ${FAILED_LOGIN_WINDOW_MINUTES} minutes; retry after ${retryAfterSeconds} s`,
      { retryAfterSeconds },
    );
  }

  router.post('/session', json, async (req, res) => {
    // A login posted from another site's page is refused: its Origin is not ours.
    const origin = req.get('origin');
    if (origin !== undefined && origin !== `${req.protocol}://${req.get('host')}`) {
      throw new HttpError('CSRF_TOKEN_INVALID', 'a login must come from the console itself (the Origin header names another site)');
    }
    const parsed = loginBody.safeParse(req.body);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const email = parsed.data.email.trim().toLowerCase();
    res.locals.consoleActor = { id: null, email, role: null } satisfies AuditActor;
    cleanup();
    const address = clientAddressKey(req);
    const refusal = await refusalForFailures(email, address, res);
    if (refusal) throw refusal;
    const user = await findConsoleUserByEmail(pool, email);
    // An unknown address costs the same hash as a known one, and gets the same answer.
    const matches = await verifyPassword(parsed.data.password, user?.passwordHash ?? (await unknownUserHash()));
    if (!user || !matches || user.disabled) {
      await pool.query('INSERT INTO console_login_failures (email, address) VALUES ($1, $2)', [email, address]);
      throw new HttpError('LOGIN_FAILED', 'the e-mail address or the password is wrong');
    }
    await pool.query('DELETE FROM console_login_failures WHERE email = $1', [email]);
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const { rows } = await pool.query(
      `INSERT INTO console_sessions (token_hash, user_id, csrf_token, expires_at, address)
       VALUES ($1, $2, $3, now() + $4 * interval '1 second', $5)
       RETURNING least(expires_at, now() + $6 * interval '1 second') AS ends`,
      [sha256(token), user.id, csrfToken, settings.sessionMaxMs / 1000, address, idleSeconds],
    );
    const session: ConsoleSession = {
      tokenHash: sha256(token),
      csrfToken,
      expiresAt: rows[0].ends,
      user: { id: user.id, email: user.email, role: user.role, merchantId: user.merchantId },
    };
    res.locals.consoleSession = session;
    res.append('Set-Cookie', `${CONSOLE_COOKIE}=${token}; ${COOKIE_ATTRIBUTES}`);
    res.set('Cache-Control', 'no-store');
    res.json(sessionAnswer(session));
  });

  router.get('/session', requireSession, (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.json(sessionAnswer(res.locals.consoleSession as ConsoleSession));
  });

  router.delete('/session', requireSession, requireCsrf, async (_req, res) => {
    const session = res.locals.consoleSession as ConsoleSession;
    await pool.query('DELETE FROM console_sessions WHERE token_hash = $1', [session.tokenHash]);
    clearCookie(res);
    res.status(204).end();
  });

  // ---- Merchant staff: the merchant API, as their merchant.

  /** res.locals.merchant from the session, as /v1's signature check sets it; a disabled merchant is refused as /v1 refuses it. */
  const sessionMerchant: RequestHandler = async (_req, res, next) => {
    const session = res.locals.consoleSession as ConsoleSession;
    const id = session.user.merchantId!;
    const { rows } = await pool.query('SELECT status, alipay_app_id FROM merchants WHERE id = $1', [id]);
    if (rows[0]?.status !== 'active') throw new HttpError('AUTH_UNKNOWN_MERCHANT', `no active merchant ${id}`);
    res.locals.merchant = { id, appId: rows[0].alipay_app_id ?? deps.appId } satisfies Merchant;
    next();
  };

  const ownMerchant = Router();
  // Orders are created by the merchant's own systems, signed; the console reads and refunds them.
  ownMerchant.post('/payments', () => {
    throw new HttpError('FORBIDDEN_ROLE', "orders are created by the merchant's systems through the signed /v1 API, not from the console");
  });
  ownMerchant.post('/credentials/rotate-secret', async (req, res) => {
    const parsed = rotateOwnSecretBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const merchant = res.locals.merchant as Merchant;
    const rotated = await rotateMerchantSecret(pool, deps.merchantSecrets, merchant.id, (parsed.data.graceSeconds ?? 86_400) * 1000);
    if (!rotated) throw new HttpError('NOT_FOUND', `no merchant ${merchant.id}`);
    res.set('Cache-Control', 'no-store');
    res.json({ merchantId: merchant.id, secret: rotated.secret, previousSecretValidUntil: rotated.previousValidUntil });
  });

  router.use(
    '/v1',
    requireSession,
    requireCsrf,
    requireRole('merchant'),
    sessionMerchant,
    deps.merchantRateLimit,
    ...deps.merchantBody,
    ownMerchant,
    consoleReportsRouter(pool),
    ...deps.merchantApi,
  );

  // ---- Operators: /ops, and what only the console needs.

  const opsExtras = Router();
  opsExtras.get('/audit', async (req, res) => {
    const parsed = auditQuery.safeParse(req.query);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const limit = parsed.data.limit ?? 50;
    const { rows } = await pool.query(
      `SELECT a.id::text AS id, at, user_id, user_email, user_role, action, target, status, address, request_id, detail
       FROM console_audit a WHERE ($1::bigint IS NULL OR a.id < $1) ORDER BY a.id DESC LIMIT $2`,
      [parsed.data.before ?? null, limit + 1],
    );
    const page = rows.slice(0, limit);
    res.json({
      data: page.map((row) => ({
        id: Number(row.id),
        at: row.at.toISOString(),
        actor: { id: row.user_id, email: row.user_email, role: row.user_role },
        action: row.action,
        target: row.target,
        status: row.status,
        address: row.address,
        requestId: row.request_id,
        detail: row.detail,
      })),
      nextBefore: rows.length > limit ? Number(page[page.length - 1]!.id) : null,
    });
  });

  const merchantSummary = (m: { id: string; name: string; status: string }) => ({ id: m.id, name: m.name, disabled: m.status !== 'active' });

  opsExtras.get('/merchants', async (_req, res) => {
    res.json({ data: (await listMerchants(pool)).map(merchantSummary) });
  });
  opsExtras.post('/merchants', json, async (req, res) => {
    const parsed = createMerchantBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const merchant = await createMerchant(pool, deps.merchantSecrets, parsed.data.name);
    res.set('Cache-Control', 'no-store');
    res.status(201).json({ ...merchantSummary(merchant), merchantId: merchant.id, secret: merchant.secret, webhookSecret: merchant.webhookSecret });
  });
  for (const action of ['disable', 'enable'] as const) {
    opsExtras.post(`/merchants/:merchantId/${action}`, async (req, res) => {
      const id = merchantIdParam.safeParse(req.params.merchantId);
      if (!id.success) throw invalidRequest(new z.ZodError(id.error.issues.map((issue) => ({ ...issue, path: ['merchantId'] }))));
      const merchant = await setMerchantStatus(pool, id.data, action === 'disable' ? 'disabled' : 'active');
      if (!merchant) throw new HttpError('NOT_FOUND', `no merchant ${id.data}`);
      res.json(merchantSummary(merchant));
    });
  }

  router.use('/ops', requireSession, requireCsrf, requireRole('operator'), opsExtras, deps.opsApi((_req, _res, next) => next()));

  return router;
}
