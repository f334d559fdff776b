// Rate limits: per merchant on /v1, per client address on everything else (Alipay's notify,
// health), a 429 with Retry-After in the API's error shape, and TRUST_PROXY deciding whether
// X-Forwarded-For names the client. Tiny limits through the stack's environment make them reachable.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler } from '../api/errors.js';
import { signedMerchant } from '../api/merchant.js';
import { PostgresRateLimitStore } from '../api/rate-limit-store.js';
import { AuthFailureLimit, merchantRateLimit } from '../api/rate-limits.js';
import { createPool } from '../lib/platform/database.js';
import { findFreePort } from '../lib/platform/free-port.js';
import { merchantSecretsVault } from '../lib/platform/key-vault.js';
import { loadApiConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { createLogger } from '../lib/platform/logger.js';
import { SIGNATURE_HEADERS, signRequest } from '../lib/merchants/signing.js';
import { startStack, type HttpAnswer, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const silent = createLogger('test', 'silent');

function expectRateLimited(answer: { status: number; body: any; headers: Headers }, limit: number) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(429);
  const retryAfter = answer.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  // A one-minute window: the wait is at most its length, and at least a second.
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  expect(answer.body).toEqual({
    error: {
      code: 'RATE_LIMITED',
      message: expect.stringContaining(`at most ${limit} a minute`),
      details: { limit, windowSeconds: 60, retryAfterSeconds: Number(retryAfter) },
      // Refused before any work, yet with its id, as every answer.
      requestId: answer.headers.get('request-id'),
    },
  });
  expect(answer.headers.get('request-id')).toMatch(/^req_[0-9a-f]{24}$/);
}

/** Unauthenticated paths take no signature, and only a raw request can set X-Forwarded-For. */
async function fetchAs(stack: Stack, method: string, path: string, forwardedFor?: string): Promise<HttpAnswer> {
  const res = await fetch(`${stack.api.url}${path}`, {
    method,
    headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Alipay's notify answers in plain text
  }
  return { status: res.status, body, headers: res.headers };
}

describe('with TRUST_PROXY off (the default)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_MERCHANT_PER_MINUTE: '3', RATE_LIMIT_IP_PER_MINUTE: '3' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('limits each merchant on /v1: 429 with Retry-After, before anything is done', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await stack.apiCall('GET', '/v1/payments');
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.headers.get('ratelimit')).toMatch(new RegExp(`^"merchant"; r=${2 - i}; t=\\d+$`));
    }
    expectRateLimited(await stack.apiCall('GET', '/v1/payments'), 3);
    expectRateLimited(await stack.apiCall('GET', '/v1/payments/any-order'), 3);
    const create = await stack.apiCall('POST', '/v1/payments', { outTradeNo: 'limited-1', amount: '1.00', subject: 'too many' });
    expectRateLimited(create, 3);
    // Refused before the handler: no order, no call to Alipay.
    expect(await stack.paymentCount()).toBe(0);
    expect((await stack.simCall('GET', '/sim/trades')).body).toEqual([]);

    // The counts are shared through PostgreSQL: another API process refuses the merchant too.
    const other = await stack.startAnotherApi();
    try {
      expectRateLimited(await other.call('GET', '/v1/payments'), 3);
    } finally {
      await other.stop();
    }
  });

  it('limits each client address outside /v1, notify included, whatever X-Forwarded-For claims', async () => {
    // The merchant's requests above were not counted here: this address has its whole budget.
    // Each request claims another address; with TRUST_PROXY off the claim is ignored.
    expect((await fetchAs(stack, 'GET', '/healthz', '198.51.100.1')).status).toBe(200);
    expect((await fetchAs(stack, 'GET', '/readyz', '198.51.100.2')).status).toBe(200);
    const notify = await stack.apiCall('POST', '/alipay/notify', 'out_trade_no=nope&sign=abc');
    expect(notify).toMatchObject({ status: 200, body: 'failure' });

    expectRateLimited(await stack.apiCall('POST', '/alipay/notify', 'out_trade_no=nope&sign=abc'), 3);
    expectRateLimited(await fetchAs(stack, 'GET', '/healthz', '198.51.100.3'), 3);
    expectRateLimited(await fetchAs(stack, 'GET', '/no-such-path', '198.51.100.4'), 3);

    // Another API process on the same database counts the same minute for this address.
    const other = await stack.startAnotherApi();
    try {
      const res = await fetch(`${other.url}/healthz`);
      expectRateLimited({ status: res.status, body: await res.json(), headers: res.headers }, 3);
    } finally {
      await other.stop();
    }
  });
});

describe('with TRUST_PROXY=1 (one proxy in front)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { RATE_LIMIT_IP_PER_MINUTE: '2', TRUST_PROXY: '1' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('counts each client by the address the proxy appended, and a client cannot add its own', async () => {
    const client = '203.0.113.7';
    expect((await fetchAs(stack, 'POST', '/alipay/notify', client)).status).toBe(200);
    expect((await fetchAs(stack, 'GET', '/healthz', client)).status).toBe(200);
    expectRateLimited(await fetchAs(stack, 'GET', '/healthz', client), 2);
    // The client's own entry comes first; the proxy appends the address it saw.
    expectRateLimited(await fetchAs(stack, 'GET', '/healthz', `192.0.2.99, ${client}`), 2);

    expect((await fetchAs(stack, 'GET', '/healthz', '203.0.113.8')).status).toBe(200);
  });

  it('leaves /v1 to the merchant limit', async () => {
    for (let i = 0; i < 4; i++) expect((await stack.apiCall('GET', '/v1/payments')).status).toBe(200);
    // apiCall sends no X-Forwarded-For: its address is the TCP peer's, which /v1 did not spend.
    expect((await stack.apiCall('GET', '/healthz')).status).toBe(200);
    expect((await stack.apiCall('GET', '/healthz')).status).toBe(200);
    expectRateLimited(await stack.apiCall('GET', '/healthz'), 2);
  });
});

describe('failed authentications on /v1', () => {
  // Two API processes on one database; TRUST_PROXY=1 lets each test be its own client address.
  let stack: Stack;
  let other: Awaited<ReturnType<Stack['startAnotherApi']>>;
  beforeAll(async () => {
    // Counts shared across processes are the point here: a loaded machine must not make a count
    // fall back to the process's own (which it does past RATE_LIMIT_DB_WAIT, 500 ms by default).
    stack = await startStack({ env: { AUTH_FAILURES_PER_MINUTE: '3', TRUST_PROXY: '1', RATE_LIMIT_DB_WAIT: '10s' } });
    other = await stack.startAnotherApi();
  });
  afterAll(async () => {
    await other?.stop();
    await stack?.stop();
  });

  /** A GET to /v1 on `baseUrl` from `address`, with the headers given (signed as the stack's merchant by default). */
  async function v1As(baseUrl: string, address: string, headers?: Record<string, string>, path = '/v1/payments'): Promise<HttpAnswer> {
    const signed = headers ?? signRequest(stack.merchant.id, stack.merchant.secret, { method: 'GET', pathWithQuery: path });
    const res = await fetch(`${baseUrl}${path}`, { headers: { ...signed, 'x-forwarded-for': address } });
    return { status: res.status, body: await res.json(), headers: res.headers };
  }
  const sign = (overrides: Record<string, string> = {}, { secret = stack.merchant.secret, now = Date.now() } = {}) => ({
    ...signRequest(stack.merchant.id, secret, { method: 'GET', pathWithQuery: '/v1/payments' }, now),
    ...overrides,
  });

  it('counts them per client address across API processes, answers 429 past the limit, and then refuses the address', async () => {
    const address = '203.0.113.20';
    const failures = [
      await v1As(stack.api.url, address, sign({}, { secret: 'sk_wrong' })),
      await v1As(other.url, address, sign({ [SIGNATURE_HEADERS.merchant]: 'mzzzzzzzzz' })),
      await v1As(stack.api.url, address, sign({}, { now: Date.now() - 3_600_000 })),
    ];
    expect(failures.map((answer) => [answer.status, answer.body.error.code])).toEqual([
      [401, 'AUTH_BAD_SIGNATURE'],
      [401, 'AUTH_UNKNOWN_MERCHANT'],
      [401, 'AUTH_STALE_TIMESTAMP'],
    ]);
    const past = await v1As(other.url, address, sign({}, { secret: 'sk_wrong' }));
    expectRateLimited(past, 3);
    expect(past.body.error.message).toContain('failed authentications');
    // Past the limit, the address is refused on every process, a correctly signed request included:
    // at once on the process that counted the last failure, and on the others as soon as
    // PostgreSQL's NOTIFY of the block reaches them (moments; a loaded machine is slower).
    expectRateLimited(await v1As(other.url, address), 3);
    expectRateLimited(
      await waitFor('the block to reach the other API process', async () => {
        const answer = await v1As(stack.api.url, address);
        return answer.status === 429 ? answer : undefined;
      }),
      3,
    );
    // Another address, and the merchant itself from there, are not held back.
    expect((await v1As(stack.api.url, '203.0.113.21')).status).toBe(200);
    expect((await v1As(other.url, '203.0.113.21')).status).toBe(200);
  });

  it('checks the header shapes and the timestamp before looking the merchant up', async () => {
    const address = '203.0.113.30';
    const unknown = { [SIGNATURE_HEADERS.merchant]: 'mzzzzzzzzz' };
    const stale = await v1As(stack.api.url, address, sign(unknown, { now: Date.now() - 301_000 }));
    expect([stale.status, stale.body.error.code]).toEqual([401, 'AUTH_STALE_TIMESTAMP']);
    const badSignature = await v1As(stack.api.url, address, sign({ ...unknown, [SIGNATURE_HEADERS.signature]: 'v1=00' }));
    expect([badSignature.status, badSignature.body.error.code]).toEqual([401, 'AUTH_BAD_SIGNATURE']);
    expect(badSignature.body.error.message).toMatch(/v1= followed by 64/);
    const badMerchant = await v1As(stack.api.url, '203.0.113.31', sign({ [SIGNATURE_HEADERS.merchant]: "m' OR 1=1" }));
    expect([badMerchant.status, badMerchant.body.error.code]).toEqual([401, 'AUTH_UNKNOWN_MERCHANT']);
    expect(badMerchant.body.error.message).toContain(SIGNATURE_HEADERS.merchant);
  });
});

describe('failed authentications with PostgreSQL unreachable', () => {
  it('are refused on the headers and the timestamp alone, and counted in the process until PostgreSQL answers', async () => {
    // Nothing listens on this port: every query fails at once.
    const pool = createPool(`postgres://durapay:x@127.0.0.1:${await findFreePort()}/durapay`, { connectTimeoutMs: 1_000, statementTimeoutMs: 1_000 }, 2);
    try {
      const app = express();
      app.use(
        '/v1',
        express.raw({ type: () => true }),
        signedMerchant({ pool, appId: 'app', merchantSecrets: merchantSecretsVault(randomBytes(32)), authFailures: new AuthFailureLimit(2, new PostgresRateLimitStore(pool, 'auth-failure/2/', silent), pool, undefined, silent) }),
        (_req, res) => {
          res.json({ ok: true });
        },
      );
      app.use(errorHandler(silent));
      const headers = (overrides: Record<string, string>) => ({
        ...signRequest('mzzzzzzzzz', 'sk_any', { method: 'GET', pathWithQuery: '/v1/x' }),
        ...overrides,
      });
      const stale = await request(app).get('/v1/x').set(headers({ [SIGNATURE_HEADERS.timestamp]: '1700000000' }));
      expect([stale.status, stale.body.error.code]).toEqual([401, 'AUTH_STALE_TIMESTAMP']);
      const malformed = await request(app).get('/v1/x').set(headers({ [SIGNATURE_HEADERS.signature]: 'v1=zz' }));
      expect([malformed.status, malformed.body.error.code]).toEqual([401, 'AUTH_BAD_SIGNATURE']);
      const past = await request(app).get('/v1/x').set(headers({ [SIGNATURE_HEADERS.merchant]: 'not a merchant' }));
      expect(past.status).toBe(429);
      expect(past.body.error.message).toContain('failed authentications');
      expect(past.headers['retry-after']).toMatch(/^\d+$/);
    } finally {
      await pool.end();
    }
  });
});

describe('the merchant limit', () => {
  it('keys on res.locals.merchant, so merchants behind one address do not share a budget', async () => {
    const app = express();
    app.use((req, res, next) => {
      res.locals.merchant = { id: req.get('x-merchant'), appId: 'app' };
      next();
    });
    app.use(merchantRateLimit(2, silent));
    app.get('/v1/x', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler(silent));

    const as = (merchant: string) => request(app).get('/v1/x').set('x-merchant', merchant);
    expect((await as('m-one')).status).toBe(200);
    expect((await as('m-one')).status).toBe(200);
    const limited = await as('m-one');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect((await as('m-two')).status).toBe(200);
  });

  it('refuses to run before the merchant is known, rather than put every caller under one key', async () => {
    const app = express();
    app.use(merchantRateLimit(2, silent));
    app.get('/v1/x', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(errorHandler(silent));
    expect((await request(app).get('/v1/x')).status).toBe(500);
  });
});

describe('rate-limit configuration', () => {
  const env = {
    ALIPAY_APP_ID: '2021000000000001',
    ALIPAY_PUBLIC_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ALIPAY_NOTIFY_URL: 'https://pay.example.com/alipay/notify',
    ALIPAY_SELLER_ID: '2088102177846880',
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/durapay',
    DURAPAY_MASTER_KEY: randomBytes(32).toString('hex'),
  };

  it('defaults to limits no integration meets, and TRUST_PROXY off', () => {
    const config = loadApiConfig(env);
    expect(config.rateLimits).toEqual({ merchantPerMinute: 6000, ipPerMinute: 1200, authFailuresPerMinute: 60, databaseWaitMs: 500 });
    expect(config.cashierStreams).toEqual({ perToken: 5, perAddress: 20 });
    expect(config.trustProxy).toBe(false);
  });

  it('takes whole numbers from 1 to 1000000 and names the variable otherwise', () => {
    expect(
      loadApiConfig({ ...env, RATE_LIMIT_MERCHANT_PER_MINUTE: '50', RATE_LIMIT_IP_PER_MINUTE: '7', AUTH_FAILURES_PER_MINUTE: '9', RATE_LIMIT_DB_WAIT: '2s' }).rateLimits,
    ).toEqual({
      merchantPerMinute: 50,
      ipPerMinute: 7,
      authFailuresPerMinute: 9,
      databaseWaitMs: 2_000,
    });
    expect(() => loadApiConfig({ ...env, RATE_LIMIT_DB_WAIT: '20s' })).toThrow(/RATE_LIMIT_DB_WAIT.*from 50ms to 10s/);
    for (const [name, value] of [
      ['RATE_LIMIT_MERCHANT_PER_MINUTE', '0'],
      ['RATE_LIMIT_MERCHANT_PER_MINUTE', 'lots'],
      ['RATE_LIMIT_IP_PER_MINUTE', '1.5'],
      ['RATE_LIMIT_IP_PER_MINUTE', '1000001'],
      ['AUTH_FAILURES_PER_MINUTE', '0'],
    ] as const) {
      expect(() => loadApiConfig({ ...env, [name]: value }), `${name}=${value}`).toThrow(
        new RegExp(`${name}: must be a whole number of requests from 1 to 1000000`),
      );
    }
  });

  it('takes CASHIER_STREAMS_PER_TOKEN and CASHIER_STREAMS_PER_ADDRESS as whole numbers from 1 to 10000', () => {
    expect(loadApiConfig({ ...env, CASHIER_STREAMS_PER_TOKEN: '2', CASHIER_STREAMS_PER_ADDRESS: '300' }).cashierStreams).toEqual({ perToken: 2, perAddress: 300 });
    for (const [name, value] of [
      ['CASHIER_STREAMS_PER_TOKEN', '0'],
      ['CASHIER_STREAMS_PER_TOKEN', 'many'],
      ['CASHIER_STREAMS_PER_ADDRESS', '10001'],
    ] as const) {
      expect(() => loadApiConfig({ ...env, [name]: value }), `${name}=${value}`).toThrow(new RegExp(`${name}: must be a whole number of streams from 1 to 10000`));
    }
  });

  it('takes TRUST_PROXY as off, a number of proxies, or their addresses, and never "trust everyone"', () => {
    expect(loadApiConfig({ ...env, TRUST_PROXY: 'off' }).trustProxy).toBe(false);
    expect(loadApiConfig({ ...env, TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadApiConfig({ ...env, TRUST_PROXY: '10.0.0.0/8, loopback,fd00::1' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback', 'fd00::1']);
    expect(() => loadApiConfig({ ...env, TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: .*X-Forwarded-For/);
    expect(() => loadApiConfig({ ...env, TRUST_PROXY: 'on' })).toThrow(ConfigError);
    expect(() => loadApiConfig({ ...env, TRUST_PROXY: '0' })).toThrow(/TRUST_PROXY: .*from 1 to 100/);
    expect(() => loadApiConfig({ ...env, TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY: "10\.0\.0\.0\/33" is not/);
    expect(() => loadApiConfig({ ...env, TRUST_PROXY: 'proxy.internal' })).toThrow(/TRUST_PROXY: "proxy\.internal" is not/);
  });
});
