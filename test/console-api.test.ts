// The web console's API rules, without a browser, against a real stack: logins and their cookie,
// throttled failures, CSRF on every change, sessions that end, roles (merchant staff on the merchant
// API as their merchant only; operators on /ops), the audit of every change, the console-user CLI,
// the merchant's reconciliation findings and CSV export, and the pages' static serving.
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseCsv } from 'csv-parse/sync';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsoleUser, generatePassword, hashPassword, verifyPassword } from '../lib/console/users.js';
import { CONSOLE_CSP, consolePages } from '../api/console-pages.js';
import { buildOpenApiDocument } from '../api/openapi.js';
import { EXPORT_COLUMNS } from '../api/console-reports.js';
import { beijingDay } from '../lib/payments/reconciliation.js';
import { documentAjv } from './support/openapi-ajv.js';
import { merchantClient, startStack, type Stack, type TestMerchant } from './support/stack.js';
import { waitFor } from './support/wait.js';

const execFileAsync = promisify(execFile);

let stack: Stack;
let base: string;
let otherMerchant: TestMerchant;
const password = 'a long enough password 1';
const operator = { email: 'ops@example.com', password };
const staff = { email: 'staff@example.com', password };
const otherStaff = { email: 'other-staff@example.com', password };

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

const doc: any = JSON.parse(JSON.stringify(buildOpenApiDocument()));
const ajv = documentAjv(doc);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
const templates = Object.keys(doc.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`),
  params: (template.match(/\{/g) ?? []).length,
}));

/** Every answer under /console/api is one the OpenAPI document describes: its status, and its body's schema. */
function conforms(method: string, path: string, answer: Answer): void {
  const pathname = new URL(path, 'http://x').pathname;
  if (!pathname.startsWith('/console/api/')) return;
  const template = templates
    .filter((t) => t.pattern.test(pathname) && doc.paths[t.template][method.toLowerCase()])
    .sort((a, b) => a.params - b.params)[0]?.template;
  if (!template) return; // an unknown route: the app's 404
  const operation = doc.paths[template][method.toLowerCase()];
  const status = String(answer.status);
  expect(Object.keys(operation.responses), `${method} ${template} answered an undocumented ${status}: ${JSON.stringify(answer.body)}`).toContain(status);
  if (status === '204') return;
  // A CSV answer (the orders export) is text: the document gives its media type, not a JSON schema.
  if (!operation.responses[status].content?.['application/json']) {
    expect(Object.keys(operation.responses[status].content ?? {})).toContain(answer.headers.get('content-type')?.split(';')[0]);
    return;
  }
  const pointer = ['paths', template, method.toLowerCase(), 'responses', status, 'content', 'application/json', 'schema']
    .map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1'))
    .join('/');
  const key = `openapi.json#/${pointer}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile({ $ref: key });
    validators.set(key, validate);
  }
  expect(validate(answer.body), `${method} ${template} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body)}`).toBe(true);
}

/** The client's address as the API sees it: TRUST_PROXY=loopback, so X-Forwarded-For names it. */
let addressSeq = 0;
const newAddress = () => `198.51.100.${++addressSeq}`;
const defaultAddress = '203.0.113.7';

async function request(method: string, path: string, options: { cookie?: string; csrf?: string; body?: unknown; address?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      'x-forwarded-for': options.address ?? defaultAddress,
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.cookie ? { cookie: options.cookie } : {}),
      ...(options.csrf ? { 'x-csrf-token': options.csrf } : {}),
      ...options.headers,
    },
    body: payload,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  const answer = { status: res.status, body, headers: res.headers };
  conforms(method, path, answer);
  return answer;
}

interface Session {
  cookie: string;
  csrf: string;
  body: any;
  call: (method: string, path: string, body?: unknown, options?: { csrf?: string | null }) => Promise<Answer>;
}

async function login(who: { email: string; password: string }, address = defaultAddress): Promise<Session> {
  const answer = await request('POST', '/console/api/session', { body: who, address });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  const cookie = answer.headers.get('set-cookie')!.split(';')[0]!;
  const csrf = answer.body.csrfToken as string;
  return {
    cookie,
    csrf,
    body: answer.body,
    call: (method, path, body, options = {}) =>
      request(method, path, { cookie, body, csrf: options.csrf === null ? undefined : (options.csrf ?? csrf), address }),
  };
}

/** An order of the client's merchant, open (AWAITING_PAYMENT), created by the signed /v1. */
async function openOrder(client: ReturnType<typeof merchantClient>, label: string, amount = '10.00'): Promise<string> {
  const outTradeNo = stack.newOrderNo(label);
  const created = await client.createPayment({ outTradeNo, amount, subject: `console ${label}` });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return outTradeNo;
}

beforeAll(async () => {
  stack = await startStack({ orderTimeout: '60s', env: { TRUST_PROXY: 'loopback' } });
  base = stack.api.url;
  otherMerchant = (await stack.newMerchant('Other Tea House')).merchant;
  await createConsoleUser(stack.pool, { ...operator, role: 'operator' });
  await createConsoleUser(stack.pool, { ...staff, role: `merchant:${stack.merchant.id}` });
  await createConsoleUser(stack.pool, { ...otherStaff, role: `merchant:${otherMerchant.id}` });
});

afterAll(async () => {
  await stack?.stop();
});

describe('passwords', () => {
  it('are scrypt hashes that name their parameters, checked against the password only', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{86}==$/);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false);
    expect(await hashPassword('correct horse battery')).not.toBe(hash);
    await expect(createConsoleUser(stack.pool, { email: 'short@example.com', role: 'operator', password: 'short' })).rejects.toThrow(/password/);
    await expect(createConsoleUser(stack.pool, { email: 'nobody@example.com', role: 'merchant:mzzzzzzzzz', password })).rejects.toThrow(/no merchant/);
    await expect(createConsoleUser(stack.pool, { email: 'OPS@example.com', role: 'operator', password })).rejects.toThrow(/exists/);
  });
});

describe('logins', () => {
  it('answers the user, a CSRF token and the end of the session, and sets a secure HttpOnly SameSite=Strict cookie', async () => {
    const answer = await request('POST', '/console/api/session', { body: { email: 'STAFF@example.com', password } });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      user: { id: expect.stringMatching(/^cu_/), email: staff.email, role: `merchant:${stack.merchant.id}`, merchantId: stack.merchant.id },
      csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      expiresAt: expect.any(String),
    });
    const expiresIn = Date.parse(answer.body.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(29 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(30 * 60_000);
    const cookie = answer.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^durapay_console=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; Secure; SameSite=Strict$/);
    // Only the token's hash is kept.
    const token = cookie.split(';')[0]!.split('=')[1]!;
    const { rows } = await stack.pool.query("SELECT encode(token_hash, 'hex') AS hash FROM console_sessions");
    expect(rows.map((r) => r.hash)).toContain((await import('node:crypto')).createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(token);

    const again = await request('GET', '/console/api/session', { cookie: cookie.split(';')[0] });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ user: answer.body.user, csrfToken: answer.body.csrfToken });
    const op = await login(operator);
    expect(op.body.user).toMatchObject({ email: operator.email, role: 'operator', merchantId: null });
  });

  it('answers LOGIN_FAILED alike for a wrong password and an unknown e-mail address, 400 for a bad body, 401 without a session', async () => {
    const address = newAddress();
    const wrong = await request('POST', '/console/api/session', { body: { email: staff.email, password: 'not the password at all' }, address });
    const unknown = await request('POST', '/console/api/session', { body: { email: 'nobody@example.com', password: 'not the password at all' }, address });
    for (const answer of [wrong, unknown]) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('set-cookie')).toBeNull();
    }
    const { requestId: _a, ...wrongError } = wrong.body.error;
    const { requestId: _b, ...unknownError } = unknown.body.error;
    expect(wrongError).toEqual(unknownError);
    expect(wrongError.code).toBe('LOGIN_FAILED');

    const bad = await request('POST', '/console/api/session', { body: { email: 'not-an-address', password: '' }, address: newAddress() });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: any) => d.field).sort()).toEqual(['email', 'password']);

    expect((await request('GET', '/console/api/session')).body.error.code).toBe('SESSION_REQUIRED');
    expect((await request('GET', '/console/api/session', { cookie: 'durapay_console=nothing' })).body.error.code).toBe('SESSION_REQUIRED');
    expect((await request('GET', '/console/api/v1/payments')).status).toBe(401);
    expect((await request('GET', '/console/api/ops/merchants')).status).toBe(401);
  });

  it('refuses a login from another Origin', async () => {
    const answer = await request('POST', '/console/api/session', { body: staff, headers: { origin: 'https://evil.example' } });
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('CSRF_TOKEN_INVALID');
    expect(answer.headers.get('set-cookie')).toBeNull();
    const same = await request('POST', '/console/api/session', { body: staff, headers: { origin: base } });
    expect(same.status).toBe(200);
  });

  it('refuses the 6th login for an e-mail address after 5 failures, even with the right password, with Retry-After', async () => {
    const who = { email: 'throttled@example.com', password };
    await createConsoleUser(stack.pool, { ...who, role: 'operator' });
    // Each from another address: the count is the e-mail address's.
    for (let i = 0; i < 5; i += 1) {
      const failed = await request('POST', '/console/api/session', { body: { ...who, password: `wrong password ${i}` }, address: newAddress() });
      expect(failed.status).toBe(401);
    }
    const sixth = await request('POST', '/console/api/session', { body: { ...who, password: 'wrong password 6' }, address: newAddress() });
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.code).toBe('TOO_MANY_LOGIN_ATTEMPTS');
    const retryAfter = Number(sixth.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(sixth.body.error.details).toEqual({ retryAfterSeconds: retryAfter });
    const right = await request('POST', '/console/api/session', { body: who, address: newAddress() });
    expect(right.status).toBe(429);
    expect(right.headers.get('set-cookie')).toBeNull();
    // Once the window has passed (moved back in the database), the right password logs in.
    await stack.pool.query("UPDATE console_login_failures SET at = at - interval '16 minutes' WHERE email = $1", [who.email]);
    expect((await request('POST', '/console/api/session', { body: who, address: newAddress() })).status).toBe(200);
  });

  it('refuses every login from an address after 5 failures there, whatever the e-mail address', async () => {
    const address = newAddress();
    for (let i = 0; i < 5; i += 1) {
      const failed = await request('POST', '/console/api/session', { body: { email: `guess${i}@example.com`, password: 'guessing a password' }, address });
      expect(failed.status).toBe(401);
    }
    const right = await request('POST', '/console/api/session', { body: operator, address });
    expect(right.status).toBe(429);
    expect(right.body.error.code).toBe('TOO_MANY_LOGIN_ATTEMPTS');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not held back.
    expect((await request('POST', '/console/api/session', { body: operator, address: newAddress() })).status).toBe(200);
  });
});

describe('sessions', () => {
  it('end when their end is past, or after CONSOLE_SESSION_IDLE without a request: 401 SESSION_EXPIRED', async () => {
    const session = await login(staff);
    expect((await session.call('GET', '/console/api/v1/payments')).status).toBe(200);
    await stack.pool.query("UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE csrf_token = $1", [session.csrf]);
    const expired = await session.call('GET', '/console/api/v1/payments');
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('SESSION_EXPIRED');

    const idle = await login(staff);
    await stack.pool.query("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' WHERE csrf_token = $1", [idle.csrf]);
    expect((await idle.call('GET', '/console/api/session')).body.error.code).toBe('SESSION_EXPIRED');
  });

  it('logout needs the CSRF token, ends the session and clears the cookie', async () => {
    const session = await login(staff);
    const without = await session.call('DELETE', '/console/api/session', undefined, { csrf: null });
    expect(without.status).toBe(403);
    expect(without.body.error.code).toBe('CSRF_TOKEN_INVALID');
    expect((await session.call('GET', '/console/api/session')).status).toBe(200);
    const out = await session.call('DELETE', '/console/api/session');
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe('durapay_console=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0');
    expect((await session.call('GET', '/console/api/session')).body.error.code).toBe('SESSION_REQUIRED');
  });
});

describe('merchant staff', () => {
  it('refund through the console as a signed /v1 refund does, only with the CSRF token', async () => {
    const outTradeNo = await openOrder(merchantClient(base, stack.merchant), 'refund');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const session = await login(staff);
    const path = `/console/api/v1/payments/${outTradeNo}/refunds`;
    const refund = { outRequestNo: 'console-r1', amount: '4.00', reason: 'from the console' };

    const noToken = await session.call('POST', path, refund, { csrf: null });
    const wrongToken = await session.call('POST', path, refund, { csrf: `${session.csrf.slice(0, -2)}xx` });
    for (const refused of [noToken, wrongToken]) {
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('CSRF_TOKEN_INVALID');
    }
    expect((await stack.getRefund(outTradeNo, 'console-r1')).status).toBe(404);
    const { rows } = await stack.pool.query('SELECT count(*)::int AS n FROM refunds');
    expect(rows[0].n).toBe(0);

    const made = await session.call('POST', path, refund);
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const settled = await stack.waitForRefund(outTradeNo, 'console-r1', 'SUCCEEDED');
    const viaConsole = await session.call('GET', `${path}/console-r1`);
    expect(viaConsole.status).toBe(200);
    expect(viaConsole.body).toEqual(settled);
    expect(Object.keys(made.body).sort()).toEqual(Object.keys(settled).sort());

    // The same rules: more than is left is refused with the same code, signed or not.
    const over = { outRequestNo: 'console-r2', amount: '6.01' };
    const signedOver = await stack.refund(outTradeNo, { ...over, outRequestNo: 'signed-r2' });
    const consoleOver = await session.call('POST', path, over);
    expect(consoleOver.status).toBe(signedOver.status);
    expect(consoleOver.body.error.code).toBe('REFUND_EXCEEDS_REFUNDABLE');
    expect(consoleOver.body.error.details).toEqual(signedOver.body.error.details);
    // The same validation, the same 400.
    const bad = await session.call('POST', path, { outRequestNo: 'console-r3', amount: '1.5' });
    const signedBad = await stack.refund(outTradeNo, { outRequestNo: 'console-r3', amount: '1.5' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual(signedBad.body.error.details);
    expect((await session.call('POST', path, 'not json')).body.error.code).toBe('INVALID_JSON');
  });

  it("never reach another merchant's order, by any URL; cannot create orders", async () => {
    const other = merchantClient(base, otherMerchant);
    const theirs = await openOrder(other, 'theirs');
    const session = await login(staff);
    const paths = [
      ['GET', `/console/api/v1/payments/${theirs}`],
      ['GET', `/console/api/v1/payments/${theirs}/refunds`],
      ['GET', `/console/api/v1/payments/${theirs}/refunds/any-refund`],
      ['GET', `/console/api/v1/payments/${theirs}/events`],
      ['POST', `/console/api/v1/payments/${theirs}/cancel`],
      ['POST', `/console/api/v1/payments/${theirs}/refunds`, { outRequestNo: 'steal', amount: '1.00' }],
    ] as const;
    for (const [method, path, body] of paths) {
      const answer = await session.call(method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.body.error.code).toBe('NOT_FOUND');
    }
    // Their own staff sees it.
    const theirStaff = await login(otherStaff);
    expect((await theirStaff.call('GET', `/console/api/v1/payments/${theirs}`)).status).toBe(200);

    const listed = await session.call('GET', '/console/api/v1/payments?limit=100');
    expect(listed.status).toBe(200);
    expect(listed.body.payments.map((p: any) => p.outTradeNo)).not.toContain(theirs);
    const events = await session.call('GET', '/console/api/v1/events?limit=100');
    expect(events.status).toBe(200);
    expect(JSON.stringify(events.body)).not.toContain(theirs);
    // Still open: cancelled by nobody.
    expect((await other.getPayment(theirs)).body.status).toBe('AWAITING_PAYMENT');

    const create = await session.call('POST', '/console/api/v1/payments', { outTradeNo: stack.newOrderNo('console'), amount: '1.00', subject: 'tea' });
    expect(create.status).toBe(403);
    expect(create.body.error.code).toBe('FORBIDDEN_ROLE');
  });

  it('are refused the operators\' endpoints; operators are refused the merchant API', async () => {
    const session = await login(staff);
    for (const path of ['/console/api/ops/payments?status=REVIEW', '/console/api/ops/audit', '/console/api/ops/merchants']) {
      const answer = await session.call('GET', path);
      expect(answer.status, path).toBe(403);
      expect(answer.body.error.code).toBe('FORBIDDEN_ROLE');
    }
    expect((await session.call('POST', '/console/api/ops/merchants', { name: 'Sneaky' })).body.error.code).toBe('FORBIDDEN_ROLE');

    const outTradeNo = await openOrder(merchantClient(base, stack.merchant), 'operator-refund');
    const op = await login(operator);
    for (const [method, path, body] of [
      ['GET', '/console/api/v1/payments', undefined],
      ['GET', `/console/api/v1/payments/${outTradeNo}`, undefined],
      ['POST', `/console/api/v1/payments/${outTradeNo}/cancel`, undefined],
      ['POST', `/console/api/v1/payments/${outTradeNo}/refunds`, { outRequestNo: 'op-r1', amount: '1.00' }],
    ] as const) {
      const answer = await op.call(method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(answer.body.error.code).toBe('FORBIDDEN_ROLE');
    }
    expect((await merchantClient(base, stack.merchant).getPayment(outTradeNo)).body.status).toBe('AWAITING_PAYMENT');

    // Operators see every merchant's orders through the /ops router.
    const listed = await op.call('GET', '/console/api/ops/payments?status=AWAITING_PAYMENT&limit=100');
    expect(listed.status).toBe(200);
    const merchants = new Set(listed.body.orders.map((p: any) => p.merchantId));
    expect(merchants).toContain(stack.merchant.id);
    expect(merchants).toContain(otherMerchant.id);
  });

  it("rotate their merchant's API secret, shown once, and the new one signs /v1", async () => {
    const session = await login(staff);
    const rotated = await session.call('POST', '/console/api/v1/credentials/rotate-secret', { graceSeconds: 3600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ merchantId: stack.merchant.id, secret: expect.stringMatching(/^sk_/), previousSecretValidUntil: expect.any(String) });
    const fresh = merchantClient(base, { ...stack.merchant, secret: rotated.body.secret });
    expect((await fresh.call('GET', '/v1/payments?limit=1')).status).toBe(200);
    // The previous one still works within its grace.
    expect((await merchantClient(base, stack.merchant).call('GET', '/v1/payments?limit=1')).status).toBe(200);
    const rows = await waitFor('the rotation in the audit', async () => {
      const found = await stack.pool.query("SELECT * FROM console_audit WHERE action LIKE '%rotate-secret'");
      return found.rows.length > 0 ? found.rows : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0].detail).toEqual({ graceSeconds: 3600 });
    expect(JSON.stringify(rows)).not.toContain(rotated.body.secret);
  });
});

describe("merchant staff: their orders' reconciliation findings and the CSV export", () => {
  let paidNo: string;
  let openNo: string;
  let theirsNo: string;
  const subject = '=西湖龙井, "礼盒"';
  const paymentIdOf = async (merchantId: string, outTradeNo: string) =>
    (await stack.pool.query('SELECT id FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [merchantId, outTradeNo])).rows[0].id as string;
  const beijingIso = (at: Date | null) => (at ? `${new Date(at.getTime() + 8 * 3_600_000).toISOString().slice(0, 19)}+08:00` : '');

  beforeAll(async () => {
    const ours = merchantClient(base, stack.merchant);
    paidNo = stack.newOrderNo('csv-paid');
    expect((await ours.createPayment({ outTradeNo: paidNo, amount: '88.80', subject })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${paidNo}/pay`);
    await stack.waitForStatus(paidNo, 'PAID');
    expect((await stack.refund(paidNo, { outRequestNo: 'csv-r1', amount: '20.00', reason: '少发一盒' })).status).toBe(201);
    await stack.waitForRefund(paidNo, 'csv-r1', 'SUCCEEDED');
    await stack.waitForStatus(paidNo, 'PARTIALLY_REFUNDED');
    openNo = await openOrder(ours, 'csv-open', '1234.50');
    theirsNo = await openOrder(merchantClient(base, otherMerchant), 'csv-theirs', '7.00');

    // Two reconciled days: findings about A's and B's orders, one of an earlier run of the day
    // (replaced by the re-run), and one of no order of durapay's.
    const ourId = await paymentIdOf(stack.merchant.id, paidNo);
    const theirId = await paymentIdOf(otherMerchant.id, theirsNo);
    await stack.pool.query(
      `INSERT INTO reconciliations (app_id, bill_date, status, run_id, mismatch_count, finished_at)
       VALUES ($1, '2025-03-01', 'DONE', 'run-0301-b', 3, now()), ($1, '2025-03-02', 'DONE', 'run-0302', 1, now()), ($1, '2025-06-01', 'DONE', 'run-0601', 1, now())`,
      [stack.appId],
    );
    await stack.pool.query(
      `INSERT INTO reconciliation_mismatches (app_id, bill_date, run_id, type, payment_id, out_trade_no, out_request_no, alipay_trade_no,
                                              local_amount_fen, gateway_amount_fen, detail, dispatched_at)
       VALUES ($1, '2025-03-01', 'run-0301-a', 'amount_mismatch', $2, 'x', NULL, 'T0', 8880, 100, 'an earlier run', now()),
              ($1, '2025-03-01', 'run-0301-b', 'amount_mismatch', $2, 'x', NULL, 'T1', 8880, 8800, 'the bill lists 88.00', now()),
              ($1, '2025-03-01', 'run-0301-b', 'missing_gateway', $3, 'y', NULL, NULL, 700, NULL, 'not yours', now()),
              ($1, '2025-03-01', 'run-0301-b', 'missing_local', NULL, 'z', NULL, 'T9', NULL, 500, 'no such order', now()),
              ($1, '2025-03-02', 'run-0302', 'refund_mismatch', $2, 'x', 'csv-r1', 'T1', 2000, NULL, 'the bill has no such refund', now()),
              ($1, '2025-06-01', 'run-0601', 'missing_gateway', $2, 'x', NULL, NULL, 8880, NULL, 'out of range', now())`,
      [stack.appId, ourId, theirId],
    );
  });

  it("list only their own orders' findings of each day's current run, in the range, amounts in yuan", async () => {
    const session = await login(staff);
    const answer = await session.call('GET', '/console/api/v1/reconciliation-findings?from=2025-03-01&to=2025-03-31');
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toEqual({
      from: '2025-03-01',
      to: '2025-03-31',
      truncated: false,
      findings: [
        { billDate: '2025-03-01', outTradeNo: paidNo, kind: 'amount_mismatch', outRequestNo: null, alipayTradeNo: 'T1', localAmount: '88.80', gatewayAmount: '88.00', detail: 'the bill lists 88.00' },
        { billDate: '2025-03-02', outTradeNo: paidNo, kind: 'refund_mismatch', outRequestNo: 'csv-r1', alipayTradeNo: 'T1', localAmount: '20.00', gatewayAmount: null, detail: 'the bill has no such refund' },
      ],
    });
    const oneDay = await session.call('GET', '/console/api/v1/reconciliation-findings?from=2025-03-02&to=2025-03-02');
    expect(oneDay.body.findings.map((f: any) => f.kind)).toEqual(['refund_mismatch']);

    // The other merchant's staff see theirs, and never A's.
    const theirs = await (await login(otherStaff)).call('GET', '/console/api/v1/reconciliation-findings?from=2025-01-01&to=2025-04-02');
    expect(theirs.status).toBe(200);
    expect(theirs.body.findings).toEqual([
      { billDate: '2025-03-01', outTradeNo: theirsNo, kind: 'missing_gateway', outRequestNo: null, alipayTradeNo: null, localAmount: '7.00', gatewayAmount: null, detail: 'not yours' },
    ]);
    // Not on the signed API, nor for operators.
    expect((await merchantClient(base, stack.merchant).call('GET', '/v1/reconciliation-findings?from=2025-03-01&to=2025-03-01')).status).toBe(404);
    const op = await login(operator);
    expect((await op.call('GET', '/console/api/v1/reconciliation-findings?from=2025-03-01&to=2025-03-01')).body.error.code).toBe('FORBIDDEN_ROLE');
    expect((await request('GET', '/console/api/v1/exports/orders.csv?from=2025-03-01&to=2025-03-01')).status).toBe(401);
  });

  it('export their orders created in the range as CSV: a row per order and per refund, yuan, +08:00 times, a BOM, an attachment', async () => {
    const session = await login(staff);
    const from = beijingDay(Date.now() - 86_400_000);
    const to = beijingDay(Date.now() + 86_400_000);
    const res = await fetch(`${base}/console/api/v1/exports/orders.csv?from=${from}&to=${to}`, {
      headers: { cookie: session.cookie, 'x-forwarded-for': defaultAddress },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="durapay-orders-${from}-${to}.csv"`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = bytes.toString('utf8');
    expect(text.slice(1).split('\r\n')[0]).toBe(EXPORT_COLUMNS.join(','));
    const rows: string[][] = parseCsv(text, { bom: true });
    expect(rows[0]).toEqual([...EXPORT_COLUMNS]);
    const records = rows.slice(1).map((r) => {
      expect(r).toHaveLength(EXPORT_COLUMNS.length);
      return Object.fromEntries(EXPORT_COLUMNS.map((c, i) => [c, r[i]!]));
    });
    // Only this merchant's orders, and every one of them created in the range.
    expect(records.map((r) => r.out_trade_no)).not.toContain(theirsNo);
    const { rows: ours } = await stack.pool.query('SELECT out_trade_no FROM payments WHERE merchant_id = $1 ORDER BY created_at, id', [stack.merchant.id]);
    expect(records.filter((r) => r.record_type === 'payment').map((r) => r.out_trade_no)).toEqual(ours.map((o) => o.out_trade_no));

    const order = (await stack.pool.query('SELECT * FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [stack.merchant.id, paidNo])).rows[0];
    const refund = (await stack.pool.query('SELECT * FROM refunds WHERE payment_id = $1', [order.id])).rows[0];
    expect(order.alipay_trade_no).toBeTruthy();
    const at = records.findIndex((r) => r.out_trade_no === paidNo);
    expect(records.slice(at, at + 2)).toEqual([
      {
        record_type: 'payment',
        out_trade_no: paidNo,
        out_request_no: '',
        method: 'qr',
        status: 'PARTIALLY_REFUNDED',
        amount: '88.80',
        paid_amount: '88.80',
        refunded_amount: '20.00',
        subject: `'${subject}`, // a formula is written as text
        reason: '',
        alipay_trade_no: order.alipay_trade_no,
        created_at: beijingIso(order.created_at),
        completed_at: beijingIso(order.paid_at),
      },
      {
        record_type: 'refund',
        out_trade_no: paidNo,
        out_request_no: 'csv-r1',
        method: 'qr',
        status: 'SUCCEEDED',
        amount: '20.00',
        paid_amount: '',
        refunded_amount: '',
        subject: `'${subject}`,
        reason: '少发一盒',
        alipay_trade_no: order.alipay_trade_no,
        created_at: beijingIso(refund.created_at),
        completed_at: beijingIso(refund.alipay_refunded_at ?? refund.settled_at),
      },
    ]);
    expect(records.find((r) => r.out_trade_no === openNo)).toMatchObject({ record_type: 'payment', status: 'AWAITING_PAYMENT', amount: '1234.50', paid_amount: '', refunded_amount: '0.00', completed_at: '' });
    expect(records.filter((r) => r.out_trade_no === openNo)).toHaveLength(1);
    for (const r of records) expect(r.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);

    // B's staff get B's order only.
    const theirs = await fetch(`${base}/console/api/v1/exports/orders.csv?from=${from}&to=${to}`, {
      headers: { cookie: (await login(otherStaff)).cookie, 'x-forwarded-for': defaultAddress },
    });
    const theirRows: string[][] = parseCsv(await theirs.text(), { bom: true });
    expect(theirRows.slice(1).map((r) => r[1])).toContain(theirsNo);
    expect(theirRows.slice(1).map((r) => r[1])).not.toContain(paidNo);
    // A range with none of the orders: the header only.
    const empty = await session.call('GET', '/console/api/v1/exports/orders.csv?from=2025-03-01&to=2025-03-02');
    expect(empty.status).toBe(200);
    // (fetch's text() drops the byte-order mark, as a UTF-8 decoder does.)
    expect(empty.body).toBe(`${EXPORT_COLUMNS.join(',')}\r\n`);
  });

  it.each([
    ['from missing', 'to=2025-03-01', 'from', /YYYY-MM-DD/],
    ['to missing', 'from=2025-03-01', 'to', /YYYY-MM-DD/],
    ['a day that does not exist', 'from=2025-02-30&to=2025-03-01', 'from', /Beijing calendar day, YYYY-MM-DD/],
    ['a day in another form', 'from=2025-3-1&to=2025-03-01', 'from', /YYYY-MM-DD/],
    ['to before from', 'from=2025-03-02&to=2025-03-01', 'to', /from the same day as from to 91 days after it \(at most 92 days/],
    ['93 days', 'from=2025-01-01&to=2025-04-03', 'to', /at most 92 days/],
    ['a day given twice', 'from=2025-03-01&from=2025-03-02&to=2025-03-03', 'from', /YYYY-MM-DD/],
    ['an unknown parameter', 'from=2025-03-01&to=2025-03-01&limit=5', 'limit', /is not a parameter of this route \(known: from, to\)/],
  ])('refuse %s with a 400 naming the field, in both', async (_name, search, field, rule) => {
    const session = await login(staff);
    for (const path of ['/console/api/v1/reconciliation-findings', '/console/api/v1/exports/orders.csv']) {
      const answer = await session.call('GET', `${path}?${search}`);
      expect(answer.status, `${path}?${search}: ${JSON.stringify(answer.body)}`).toBe(400);
      expect(answer.body.error.code).toBe('INVALID_REQUEST');
      const detail = answer.body.error.details.find((d: { field: string }) => d.field === field);
      expect(detail, JSON.stringify(answer.body)).toBeDefined();
      expect(detail.rule).toMatch(rule);
    }
    // 92 days is the most, and is taken.
    expect((await session.call('GET', '/console/api/v1/reconciliation-findings?from=2025-01-01&to=2025-04-02')).status).toBe(200);
  });
});

describe('operators', () => {
  it('list, create, disable and enable merchants; a disabled merchant is refused on /v1 and on the console alike', async () => {
    const op = await login(operator);
    const created = await op.call('POST', '/console/api/ops/merchants', { name: 'Console Tea House' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^m[a-z0-9]{9}$/),
      merchantId: created.body.id,
      name: 'Console Tea House',
      disabled: false,
      secret: expect.stringMatching(/^sk_/),
      webhookSecret: expect.stringMatching(/^whsec_/),
    });
    const merchant: TestMerchant = { id: created.body.id, secret: created.body.secret, webhookSecret: created.body.webhookSecret };
    const client = merchantClient(base, merchant);
    expect((await client.call('GET', '/v1/payments')).status).toBe(200);
    const listed = await op.call('GET', '/console/api/ops/merchants');
    expect(listed.body.data).toContainEqual({ id: merchant.id, name: 'Console Tea House', disabled: false });
    expect(JSON.stringify(listed.body)).not.toContain('sk_');

    const who = { email: 'new-staff@example.com', password };
    await createConsoleUser(stack.pool, { ...who, role: `merchant:${merchant.id}` });
    const staffSession = await login(who);
    expect((await staffSession.call('GET', '/console/api/v1/payments')).status).toBe(200);

    const disabled = await op.call('POST', `/console/api/ops/merchants/${merchant.id}/disable`);
    expect(disabled.body).toEqual({ id: merchant.id, name: 'Console Tea House', disabled: true });
    // Every API process forgets the merchant once PostgreSQL tells it of the change: moments.
    const signed = await waitFor('the disabled merchant to be refused on /v1', async () => {
      const answer = await client.call('GET', '/v1/payments');
      return answer.status === 401 ? answer : undefined;
    });
    const viaConsole = await staffSession.call('GET', '/console/api/v1/payments');
    expect(signed.status).toBe(401);
    expect(viaConsole.status).toBe(401);
    expect(viaConsole.body.error.code).toBe(signed.body.error.code);
    expect((await op.call('POST', `/console/api/ops/merchants/${merchant.id}/enable`)).body.disabled).toBe(false);
    expect((await staffSession.call('GET', '/console/api/v1/payments')).status).toBe(200);
    expect((await op.call('POST', '/console/api/ops/merchants/mzzzzzzzzz/enable')).status).toBe(404);
    expect((await op.call('POST', '/console/api/ops/merchants', { name: '' })).body.error.details[0].field).toBe('name');
  });

  it('act on orders through the /ops router, with the CSRF token', async () => {
    const op = await login(operator);
    const outTradeNo = await openOrder(merchantClient(base, stack.merchant), 'ops-query');
    const listed = await op.call('GET', '/console/api/ops/payments?status=AWAITING_PAYMENT&limit=100');
    const order = listed.body.orders.find((p: any) => p.outTradeNo === outTradeNo);
    expect(order).toBeDefined();
    const path = `/console/api/ops/payments/${encodeURIComponent(order.paymentId)}/query-now`;
    expect((await op.call('POST', path, { operator: 'ops' }, { csrf: null })).body.error.code).toBe('CSRF_TOKEN_INVALID');
    const queried = await op.call('POST', path, { operator: 'ops' });
    expect(queried.status, JSON.stringify(queried.body)).toBe(200);
    const timeline = await op.call('GET', `/console/api/ops/payments/${encodeURIComponent(order.paymentId)}/timeline`);
    expect(timeline.status).toBe(200);
  });

  it('read an audit row for every change, newest first, in pages, with no password or secret in it', async () => {
    const op = await login(operator);
    const address = newAddress();
    const failed = await request('POST', '/console/api/session', { body: { email: staff.email, password: 'a wrong password here' }, address });
    const session = await login(staff, address);
    const outTradeNo = await openOrder(merchantClient(base, stack.merchant), 'audited');
    const cancelled = await session.call('POST', `/console/api/v1/payments/${outTradeNo}/cancel`);
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const refused = await session.call('POST', `/console/api/v1/payments/${outTradeNo}/refunds`, { outRequestNo: 'a1', amount: '1.00' }, { csrf: null });
    const out = await session.call('DELETE', '/console/api/session');
    expect(out.status).toBe(204);

    // Each row is written after its answer: wait for the last one.
    const page = await waitFor('the logout in the audit', async () => {
      const answer = await op.call('GET', '/console/api/ops/audit?limit=5');
      return answer.body.data?.[0]?.action === 'DELETE /console/api/session' ? answer : undefined;
    });
    expect(page.status).toBe(200);
    const [logout, csrfRefused, cancel, loginOk, loginFailed] = page.body.data;
    const actor = { id: session.body.user.id, email: staff.email, role: `merchant:${stack.merchant.id}` };
    expect(logout).toMatchObject({ actor, action: 'DELETE /console/api/session', target: {}, status: 204, address, detail: null });
    // Refused before it reached its route: the path as sent.
    expect(csrfRefused).toMatchObject({
      actor,
      action: `POST /console/api/v1/payments/${outTradeNo}/refunds`,
      target: {},
      detail: null,
      status: 403,
      address,
      requestId: refused.headers.get('request-id'),
    });
    expect(cancel).toMatchObject({
      actor,
      action: 'POST /console/api/v1/payments/:outTradeNo/cancel',
      target: { outTradeNo },
      status: 200,
      address,
      requestId: cancelled.headers.get('request-id'),
    });
    expect(loginOk).toMatchObject({ actor, action: 'POST /console/api/session', status: 200, address, detail: { email: staff.email } });
    expect(loginFailed).toMatchObject({
      actor: { id: null, email: staff.email, role: null },
      action: 'POST /console/api/session',
      status: 401,
      address,
      requestId: failed.headers.get('request-id'),
      detail: { email: staff.email },
    });
    for (const row of page.body.data) {
      expect(row).toEqual({
        id: expect.any(Number),
        at: expect.any(String),
        actor: expect.any(Object),
        action: expect.any(String),
        target: expect.any(Object),
        status: expect.any(Number),
        address: expect.any(String),
        requestId: expect.any(String),
        detail: row.detail === null ? null : expect.any(Object),
      });
    }
    const ids = page.body.data.map((row: any) => row.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(Date.parse(page.body.data[0].at)).toBeGreaterThan(Date.parse(page.body.data[4].at) - 1);

    // The next page starts where this one ended, and the pages end.
    const next = await op.call('GET', `/console/api/ops/audit?limit=5&before=${page.body.nextBefore}`);
    expect(page.body.nextBefore).toBe(ids[4]);
    expect(next.body.data[0].id).toBeLessThan(ids[4]);
    let before: number | null = page.body.nextBefore;
    let rows = page.body.data.length;
    while (before !== null) {
      const more = await op.call('GET', `/console/api/ops/audit?limit=200&before=${before}`);
      rows += more.body.data.length;
      before = more.body.nextBefore;
    }
    const { rows: all } = await stack.pool.query('SELECT count(*)::int AS n FROM console_audit WHERE id <= $1', [ids[0]]);
    expect(rows).toBe(all[0].n);
    expect((await op.call('GET', '/console/api/ops/audit?limit=0')).status).toBe(400);

    // Reads are not audited; no row of the whole audit holds a password or a secret.
    const { rows: audit } = await stack.pool.query('SELECT * FROM console_audit');
    expect(audit.every((row) => !row.action.startsWith('GET '))).toBe(true);
    const text = JSON.stringify(audit);
    for (const secret of [password, 'a wrong password here', 'not the password at all', stack.merchant.secret, otherMerchant.secret]) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/"(password|secret|webhookSecret|csrfToken)"/);
  });
});

describe('npm run console-user', () => {
  const run = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/console-user.ts', ...args], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, DATABASE_URL: stack.config.databaseUrl },
      });
      return { code: 0, out: stdout, err: stderr };
    } catch (err) {
      const failed = err as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, out: failed.stdout ?? '', err: failed.stderr ?? '' };
    }
  };

  it('creates a login that works, with a generated password printed once; lists, disables, enables and resets', async () => {
    const created = await run('create', '--email', 'cli-ops@example.com', '--role', 'operator');
    expect(created.code, created.err).toBe(0);
    const printed = JSON.parse(created.out);
    expect(printed).toMatchObject({ email: 'cli-ops@example.com', role: 'operator', merchantId: null, disabled: false, password: expect.any(String) });
    expect(printed.password.length).toBeGreaterThanOrEqual(12);
    const session = await login({ email: 'cli-ops@example.com', password: printed.password }, newAddress());
    expect((await session.call('GET', '/console/api/ops/merchants')).status).toBe(200);

    const dir = mkdtempSync(join(tmpdir(), 'durapay-console-user-'));
    try {
      const file = join(dir, 'password');
      writeFileSync(file, 'a password from a file\n');
      const fromFile = await run('create', '--email', 'cli-staff@example.com', '--role', `merchant:${stack.merchant.id}`, '--password-file', file);
      expect(fromFile.code, fromFile.err).toBe(0);
      expect(JSON.parse(fromFile.out).password).toBeUndefined();
      expect((await login({ email: 'cli-staff@example.com', password: 'a password from a file' }, newAddress())).body.user.merchantId).toBe(stack.merchant.id);
      writeFileSync(file, 'short\n');
      expect((await run('create', '--email', 'cli-short@example.com', '--role', 'operator', '--password-file', file)).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await run('create', '--email', 'cli-bad@example.com', '--role', 'admin')).err).toMatch(/role/);

    const listed = await run('list');
    expect(JSON.parse(listed.out).map((u: any) => u.email)).toContain('cli-ops@example.com');
    expect(listed.out).not.toMatch(/password|scrypt/);

    expect((await run('disable', 'CLI-OPS@example.com')).code).toBe(0);
    expect((await session.call('GET', '/console/api/ops/merchants')).body.error.code).toBe('SESSION_REQUIRED');
    const address = newAddress();
    expect((await request('POST', '/console/api/session', { body: { email: 'cli-ops@example.com', password: printed.password }, address })).body.error.code).toBe('LOGIN_FAILED');
    expect((await run('enable', 'cli-ops@example.com')).code).toBe(0);
    const reset = await run('reset-password', 'cli-ops@example.com');
    expect(reset.code, reset.err).toBe(0);
    const newPassword = JSON.parse(reset.out).password;
    expect(newPassword).not.toBe(printed.password);
    expect((await request('POST', '/console/api/session', { body: { email: 'cli-ops@example.com', password: printed.password }, address: newAddress() })).status).toBe(401);
    await login({ email: 'cli-ops@example.com', password: newPassword }, newAddress());
    expect(generatePassword()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });
});

describe('the console pages', () => {
  async function serve(root: string) {
    const app = express();
    app.use('/console', consolePages(root));
    app.use((_req, res) => void res.status(404).json({ error: 'no route' }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(resolve)) };
  }

  it('serves the built files, the index for any page of the app, hashed assets cached long, and says to build when there is nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'durapay-console-dist-'));
    try {
      const missing = await serve(join(root, 'nothing-here'));
      const unbuilt = await fetch(`${missing.url}/console`);
      expect(unbuilt.status).toBe(503);
      expect(await unbuilt.text()).toContain('npm run console:build');
      await missing.close();

      mkdirSync(join(root, 'assets'));
      writeFileSync(join(root, 'index.html'), '<!doctype html><title>console</title>');
      writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
      const built = await serve(root);
      for (const path of ['/console', '/console/', '/console/payments/order-1', '/console/ops/audit']) {
        const page = await fetch(`${built.url}${path}`);
        expect(page.status, path).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
        expect(await page.text()).toContain('<title>console</title>');
      }
      expect(CONSOLE_CSP).toBe("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
      const asset = await fetch(`${built.url}/console/assets/index-abc123.js`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect((await fetch(`${built.url}/console/assets/gone-000.js`)).status).toBe(404);
      expect((await fetch(`${built.url}/console/api/nothing`)).status).toBe(404);
      await built.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('are served by the API under /console, outside the merchant API, and its unknown API paths are JSON 404s', async () => {
    const page = await fetch(`${base}/console`);
    expect([200, 503]).toContain(page.status);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const api = await request('GET', '/console/api/nothing');
    expect(api.status).toBe(404);
    expect(api.body.error.code).toBe('NOT_FOUND');
  });
});

