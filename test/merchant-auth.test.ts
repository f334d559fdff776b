// Signed merchant requests and several merchants on one Alipay app: every /v1 request carries
// Durapay-Merchant, -Timestamp, -Nonce and -Signature; any failure is a 401 that changes nothing.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSignature, SIGNATURE_HEADERS, signRequest } from '../lib/merchants/signing.js';
import { rotateMerchantSecret, setMerchantStatus } from '../lib/merchants/accounts.js';
import { deriveApiKeys, formatApiKeys } from '../lib/platform/master-key.js';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { merchantClient, startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '60s' });
});
afterAll(async () => {
  await stack?.stop();
});

/** A request with headers as given: the test decides what is signed and what is sent. */
async function send(method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(`${stack.api.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body,
  });
  return { status: res.status, body: await res.json() };
}

function signed(method: string, path: string, body?: string, { secret = stack.merchant.secret, now = Date.now() } = {}) {
  return signRequest(stack.merchant.id, secret, { method, pathWithQuery: path, body }, now);
}

const newOrder = (label: string) => ({ outTradeNo: stack.newOrderNo(label), amount: '1.00', subject: `auth ${label}` });

describe('signed requests', () => {
  it('accepts a signed request, with a query string and a body', async () => {
    const order = newOrder('signed');
    const body = JSON.stringify(order);
    const created = await send('POST', '/v1/payments', signed('POST', '/v1/payments', body), body);
    expect(created.status).toBe(201);
    const path = `/v1/payments/${order.outTradeNo}?expand=nothing`;
    expect((await send('GET', path, signed('GET', path))).status).toBe(200);
  });

  it.each(Object.values(SIGNATURE_HEADERS))('answers 401 AUTH_MISSING without %s, and changes nothing', async (name) => {
    const order = newOrder('missing');
    const body = JSON.stringify(order);
    const headers = signed('POST', '/v1/payments', body);
    delete headers[name];
    const answer = await send('POST', '/v1/payments', headers, body);
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('AUTH_MISSING');
    expect(answer.body.error.message).toContain(name);
    expect((await stack.getPayment(order.outTradeNo)).status).toBe(404);
    expect((await stack.ledger(order.outTradeNo))?.error).toBe('TRADE_NOT_FOUND');
  });

  it('answers 401 AUTH_UNKNOWN_MERCHANT for an unknown or a disabled merchant', async () => {
    const unknown = { ...signed('GET', '/v1/payments/x'), [SIGNATURE_HEADERS.merchant]: 'mzzzzzzzzz' };
    expect((await send('GET', '/v1/payments/x', unknown)).body.error.code).toBe('AUTH_UNKNOWN_MERCHANT');
    const other = await stack.newMerchant('Soon Disabled');
    expect((await other.getPayment('x')).status).toBe(404);
    await setMerchantStatus(stack.pool, other.merchant.id, 'disabled');
    const disabled = await other.getPayment('x');
    expect(disabled.status).toBe(401);
    expect(disabled.body.error.code).toBe('AUTH_UNKNOWN_MERCHANT');
  });

  it('answers 401 AUTH_BAD_SIGNATURE for a wrong secret, a changed body, path or query, and creates nothing', async () => {
    const order = newOrder('tampered');
    const body = JSON.stringify(order);
    const cases: [string, Record<string, string>, string][] = [
      ['wrong secret', signed('POST', '/v1/payments', body, { secret: 'sk_not-the-secret' }), body],
      ['changed body', signed('POST', '/v1/payments', body), body.replace('1.00', '9.00')],
      ['changed query', signed('POST', '/v1/payments?a=1', body), body],
      ['garbage', { ...signed('POST', '/v1/payments', body), [SIGNATURE_HEADERS.signature]: 'v1=00' }, body],
    ];
    for (const [what, headers, sent] of cases) {
      const answer = await send('POST', '/v1/payments', headers, sent);
      expect(answer.status, what).toBe(401);
      expect(answer.body.error.code, what).toBe('AUTH_BAD_SIGNATURE');
    }
    expect((await stack.getPayment(order.outTradeNo)).status).toBe(404);
  });

  it('accepts a timestamp 299 s away and refuses one 301 s away (AUTH_STALE_TIMESTAMP), either way', async () => {
    const path = '/v1/payments/nothing-here';
    for (const skew of [-299, 299]) {
      expect((await send('GET', path, signed('GET', path, undefined, { now: Date.now() + skew * 1000 }))).status, `${skew}`).toBe(404);
    }
    for (const skew of [-301, 301]) {
      const answer = await send('GET', path, signed('GET', path, undefined, { now: Date.now() + skew * 1000 }));
      expect(answer.status, `${skew}`).toBe(401);
      expect(answer.body.error.code).toBe('AUTH_STALE_TIMESTAMP');
    }
  });

  it('refuses a replayed nonce (AUTH_REPLAYED_NONCE), also on another API process', async () => {
    const order = newOrder('replay');
    const body = JSON.stringify(order);
    const headers = signed('POST', '/v1/payments', body);
    expect((await send('POST', '/v1/payments', headers, body)).status).toBe(201);
    const again = await send('POST', '/v1/payments', headers, body);
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe('AUTH_REPLAYED_NONCE');

    const other = await stack.startAnotherApi();
    try {
      const path = `/v1/payments/${order.outTradeNo}`;
      const once = signed('GET', path);
      expect((await send('GET', path, once)).status).toBe(200);
      const res = await fetch(`${other.url}${path}`, { headers: once });
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toBe('AUTH_REPLAYED_NONCE');
    } finally {
      await other.stop();
    }
  });

  it('keeps a rotated secret valid for its grace period only', async () => {
    const path = '/v1/payments/nothing-here';
    const old = stack.merchant.secret;
    const rotated = await rotateMerchantSecret(stack.pool, stack.merchantSecrets, stack.merchant.id, 60_000);
    stack.merchant.secret = rotated!.secret;
    expect((await send('GET', path, signed('GET', path))).status).toBe(404);
    expect((await send('GET', path, signed('GET', path, undefined, { secret: old }))).status).toBe(404);
    const newer = await rotateMerchantSecret(stack.pool, stack.merchantSecrets, stack.merchant.id, 0);
    stack.merchant.secret = newer!.secret;
    const stale = await send('GET', path, signed('GET', path, undefined, { secret: rotated!.secret }));
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe('AUTH_BAD_SIGNATURE');
    expect((await send('GET', path, signed('GET', path))).status).toBe(404);
  });

  it('stops taking a rotated secret when its grace ends, not a cache lifetime later', async () => {
    const other = await stack.newMerchant('Short Grace');
    const path = '/v1/payments/nothing-here';
    const old = other.merchant.secret;
    const rotated = await rotateMerchantSecret(stack.pool, stack.merchantSecrets, other.merchant.id, 1_500);
    other.merchant.secret = rotated!.secret;
    const withOld = () => send('GET', path, signRequest(other.merchant.id, old, { method: 'GET', pathWithQuery: path }));
    // Accepted (and so known to the API) while the grace lasts.
    expect((await withOld()).status).toBe(404);
    const refusedAt = await waitFor('the old secret to be refused', async () => ((await withOld()).status === 401 ? Date.now() : undefined));
    const validUntil = Date.parse(rotated!.previousValidUntil);
    expect(refusedAt).toBeGreaterThanOrEqual(validUntil);
    expect(refusedAt - validUntil).toBeLessThan(1_000);
    expect((await other.getPayment('nothing-here')).status).toBe(404);
  });

  it('a disable, an enable and a rotation reach every API process at once', async () => {
    const other = await stack.newMerchant('Two Processes');
    const second = await stack.startAnotherApi();
    try {
      const onSecond = merchantClient(second.url, other.merchant);
      // Both processes have seen the merchant (and may hold its credentials).
      expect((await other.getPayment('x')).status).toBe(404);
      expect((await onSecond.getPayment('x')).status).toBe(404);

      await setMerchantStatus(stack.pool, other.merchant.id, 'disabled');
      for (const answer of [await other.getPayment('x'), await onSecond.getPayment('x')]) {
        expect(answer.status).toBe(401);
        expect(answer.body.error.code).toBe('AUTH_UNKNOWN_MERCHANT');
      }
      // An enable is announced to every process (NOTIFY): each takes the merchant again within
      // moments, far sooner than the few seconds its credentials may be cached.
      await setMerchantStatus(stack.pool, other.merchant.id, 'active');
      for (const client of [other, onSecond]) {
        await waitFor('the enabled merchant to be taken', async () => ((await client.getPayment('x')).status === 404 ? true : undefined), { timeoutMs: 1_000 });
      }

      const old = other.merchant.secret;
      const rotated = await rotateMerchantSecret(stack.pool, stack.merchantSecrets, other.merchant.id, 0);
      const path = '/v1/payments/x';
      for (const url of [stack.api.url, second.url]) {
        const res = await fetch(`${url}${path}`, { headers: signRequest(other.merchant.id, old, { method: 'GET', pathWithQuery: path }) });
        expect(res.status).toBe(401);
        expect((await res.json()).error.code).toBe('AUTH_BAD_SIGNATURE');
      }
      other.merchant.secret = rotated!.secret;
      expect((await other.getPayment('x')).status).toBe(404);
      expect((await onSecond.getPayment('x')).status).toBe(404);
    } finally {
      await second.stop();
    }
  });

  it('computes the signature over exactly the documented five lines', () => {
    const parts = { method: 'post', pathWithQuery: '/v1/payments?x=1', timestamp: '1700000000', nonce: 'abcdefghijklmnop', body: '{"a":1}' };
    // Computed independently (Python hmac): HMAC-SHA256("secret", "POST\n/v1/payments?x=1\n1700000000\nabcdefghijklmnop\n" + sha256hex('{"a":1}'))
    expect(requestSignature('secret', parts)).toBe('v1=3d9402af1f9a2d4e2c62be1727efef912ecc65ca63913b42a8c26eb13bb90c68');
  });
});

describe('several merchants on one Alipay app', () => {
  it('keeps each merchant to its own orders', async () => {
    const other = await stack.newMerchant('Another Tea House');
    const order = newOrder('private');
    expect((await stack.createPayment(order)).status).toBe(201);
    const peek = await other.getPayment(order.outTradeNo);
    expect(peek.status).toBe(404);
    expect((await other.cancelPayment(order.outTradeNo)).status).toBe(404);
    expect((await other.call('POST', `/v1/payments/${order.outTradeNo}/refunds`, { outRequestNo: 'r', amount: '1.00' })).status).toBe(404);
    expect((await stack.getPayment(order.outTradeNo)).body.status).toBe('AWAITING_PAYMENT');
  });

  it('gives the same order number from two merchants two orders and two Alipay trades', async () => {
    const other = await stack.newMerchant('Twin Tea House');
    const outTradeNo = stack.newOrderNo('shared');
    const mine = await stack.createPayment({ outTradeNo, amount: '1.00', subject: 'mine' });
    const theirs = await other.createPayment({ outTradeNo, amount: '2.00', subject: 'theirs' });
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(mine.body.qrCode).not.toBe(theirs.body.qrCode);
    const trades = (await stack.simCall('GET', '/sim/trades')).body as { outTradeNo: string; totalAmount: string }[];
    const ours = [toAlipayOutTradeNo(stack.merchant.id, outTradeNo), toAlipayOutTradeNo(other.merchant.id, outTradeNo)];
    expect(trades.filter((t) => ours.includes(t.outTradeNo)).map((t) => t.totalAmount).sort()).toEqual(['1.00', '2.00']);
    for (const t of ours) expect(t).toMatch(/^[A-Za-z0-9_]{1,64}$/);

    // Each pays and settles on its own.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    expect((await other.getPayment(outTradeNo)).body).toMatchObject({ status: 'AWAITING_PAYMENT', amount: '2.00' });
  });

  it('refuses an order number that cannot fit Alipay once prefixed', async () => {
    const tooLong = { outTradeNo: `${'a'.repeat(40)}-${'b'.repeat(12)}`, amount: '1.00', subject: 'long' };
    const answer = await stack.createPayment(tooLong);
    expect(answer.status).toBe(400);
    expect(answer.body.error.details[0]).toMatchObject({ field: 'outTradeNo' });
    expect(answer.body.error.details[0].rule).toMatch(/at most 53 characters/);
  });
});

const execFileAsync = promisify(execFile);

describe('merchant secrets at rest', () => {
  /** What of a secret must never show: its random part (the prefix sk_ / whsec_ is the same for all). */
  const secretParts = (merchant: { secret: string; webhookSecret: string }) => [merchant.secret, merchant.webhookSecret].map((s) => s.replace(/^[a-z]+_/, ''));

  it('are in the merchants table neither as given nor in any form the table alone opens', async () => {
    const other = await stack.newMerchant('Sealed Tea House');
    const rotated = await rotateMerchantSecret(stack.pool, stack.merchantSecrets, other.merchant.id, 60_000);
    const table = JSON.stringify((await stack.pool.query('SELECT * FROM merchants')).rows);
    for (const part of [...secretParts(stack.merchant), ...secretParts(other.merchant), rotated!.secret.replace(/^sk_/, '')]) {
      expect(part.length).toBeGreaterThan(40);
      expect(table).not.toContain(part);
    }
    // Both the rotated secret and the previous one still sign.
    expect((await other.getPayment('none')).status).toBe(404);
    other.merchant.secret = rotated!.secret;
    expect((await other.getPayment('none')).status).toBe(404);
  });

  it('a merchant stored in clear before the upgrade is sealed by npm run migrate, and still signs', async () => {
    const old = { id: 'moldclear1', secret: `sk_${'a'.repeat(20)}${Date.now()}b`, webhookSecret: `whsec_${'c'.repeat(20)}${Date.now()}d` };
    await stack.pool.query('INSERT INTO merchants (id, name, api_secret, webhook_secret) VALUES ($1, $2, $3, $4)', [old.id, 'Old Tea House', old.secret, old.webhookSecret]);
    // The migrate step with the worker's environment (the master key), as the deploy runs it.
    await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...stack.engineEnv() },
    });
    const api = await stack.spawnApiProcess();
    try {
      const table = JSON.stringify((await stack.pool.query('SELECT * FROM merchants WHERE id = $1', [old.id])).rows);
      for (const part of secretParts(old)) expect(table).not.toContain(part);
      expect((await merchantClient(api.url, old).getPayment('none')).status).toBe(404);
      expect((await merchantClient(api.url, { ...old, secret: 'sk_wrong' }).getPayment('none')).status).toBe(401);
    } finally {
      await api.stop();
    }
  }, 60_000);
});

describe('npm run merchant', () => {
  // Asynchronous on purpose: this process also serves the API the CLI's merchant then calls.
  const run = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/merchant.ts', ...args], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        // As in the API's container: DURAPAY_API_KEYS, no master key.
        env: { ...process.env, DATABASE_URL: stack.config.databaseUrl, DURAPAY_MASTER_KEY: '', DURAPAY_API_KEYS: formatApiKeys(deriveApiKeys(stack.config.masterKey)) },
      });
      return { code: 0, out: stdout, err: stderr };
    } catch (err) {
      const failed = err as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, out: failed.stdout ?? '', err: failed.stderr ?? '' };
    }
  };

  it('creates a merchant whose printed secret signs requests, lists without secrets, rotates and disables', async () => {
    const created = await run('create', '--name', 'CLI Tea House');
    expect(created.code, created.err).toBe(0);
    const merchant = JSON.parse(created.out);
    expect(merchant).toMatchObject({ merchantId: expect.stringMatching(/^m[a-z0-9]{9}$/), name: 'CLI Tea House' });
    const client = merchantClient(stack.api.url, { id: merchant.merchantId, secret: merchant.secret, webhookSecret: merchant.webhookSecret });
    expect((await client.getPayment('none')).status).toBe(404);

    const listed = await run('list');
    expect(listed.out).toContain(merchant.merchantId);
    expect(listed.out).not.toContain(merchant.secret);
    expect(listed.out).not.toContain(merchant.webhookSecret);

    const rotated = JSON.parse((await run('rotate-secret', merchant.merchantId, '--grace', '0s')).out);
    expect((await client.getPayment('none')).status).toBe(401);
    client.merchant.secret = rotated.secret;
    expect((await client.getPayment('none')).status).toBe(404);

    expect((await run('disable', merchant.merchantId)).code).toBe(0);
    expect((await client.getPayment('none')).body.error.code).toBe('AUTH_UNKNOWN_MERCHANT');
    expect((await run('disable', 'mnotthere0')).code).toBe(1);
  });
});
