// One Alipay app per merchant: two merchants on two apps, each app with its own keys (and its own
// Alipay key at the simulator), registered as an operator does, with `npm run merchant -- app set`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { assignAlipayApp } from '../lib/alipay/apps.js';
import { paymentWorkflowId } from '../lib/payments/payment.js';
import { beijingDay, beijingDayStart } from '../lib/payments/reconciliation.js';
import { verifyWebhookSignature } from '../lib/merchants/signing.js';
import { loadPrivateKey, rsa2Sign, signContent } from '../simulator/signing.js';
import { merchantClient, startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const execFileAsync = promisify(execFile);

let stack: Stack;
let files: string;
let merchantB: Awaited<ReturnType<Stack['newMerchant']>>;
const masterKey = () => stack.config.masterKey!.toString('hex');

/** `npm run merchant -- …` as an operator runs it, against this stack's database and master key. */
async function merchantCli(args: string[], env: Record<string, string> = {}) {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/merchant.ts', ...args], {
    env: { ...process.env, DATABASE_URL: stack.config.databaseUrl, DURAPAY_MASTER_KEY: masterKey(), ...env },
  });
  return JSON.parse(stdout);
}

beforeAll(async () => {
  stack = await startStack({ secondApp: true, orderTimeout: '30s', pollLadder: '10s' });
  files = mkdtempSync(join(tmpdir(), 'durapay-app-files-'));
  const second = stack.secondApp!;
  writeFileSync(join(files, 'app_private_key.pem'), second.appKeys.privateKey);
  writeFileSync(join(files, 'alipay_public_key.pem'), second.alipayKeys.publicKey);
  merchantB = await stack.newMerchant('Second Tea House');
  await merchantCli([
    'app', 'set', merchantB.merchant.id,
    '--app-id', second.appId,
    '--private-key-file', join(files, 'app_private_key.pem'),
    '--alipay-public-key-file', join(files, 'alipay_public_key.pem'),
    '--notify-url', stack.config.alipay.notifyUrl,
    '--gateway-url', stack.sim.gatewayUrl,
  ]);
}, 120_000);
afterAll(async () => {
  rmSync(files, { recursive: true, force: true });
  await stack?.stop();
});

const simTrade = async (alipayNo: string) => (await fetch(`${stack.sim.url}/sim/trades/${alipayNo}`)).json();
const simPay = (alipayNo: string) => fetch(`${stack.sim.url}/sim/trades/${alipayNo}/pay`, { method: 'POST' });

describe('two merchants on two Alipay apps', () => {
  it('pays and refunds each order through its own app, each notify verified by its own app', async () => {
    const a = { outTradeNo: stack.newOrderNo('app-a'), alipayNo: '' };
    const b = { outTradeNo: stack.newOrderNo('app-b'), alipayNo: '' };
    a.alipayNo = stack.alipayNo(a.outTradeNo);
    b.alipayNo = toAlipayOutTradeNo(merchantB.merchant.id, b.outTradeNo);
    expect((await stack.createPayment({ outTradeNo: a.outTradeNo, amount: '3.00', subject: 'app A' })).status).toBe(201);
    expect((await merchantB.createPayment({ outTradeNo: b.outTradeNo, amount: '4.00', subject: 'app B' })).status).toBe(201);
    // Each trade was precreated under its merchant's app, and each order's workflow is that app's.
    expect((await simTrade(a.alipayNo)).appId).toBe(stack.appId);
    expect((await simTrade(b.alipayNo)).appId).toBe(stack.secondApp!.appId);

    await simPay(a.alipayNo);
    await simPay(b.alipayNo);
    await stack.waitForStatus(a.outTradeNo, 'PAID');
    await waitFor('B to be PAID', async () => ((await merchantB.getPayment(b.outTradeNo)).body.status === 'PAID' ? true : undefined));
    // Paid by the notify (each signed with its app's own Alipay key), not by a poll.
    const notified = await stack.pool.query(
      `SELECT e.data->>'source' AS source FROM payment_events e WHERE e.payment_id = $1 AND e.type = 'paid'`,
      [paymentWorkflowId(stack.secondApp!.appId, b.alipayNo)],
    );
    expect(notified.rows).toEqual([{ source: 'notify' }]);

    const refundA = await stack.refund(a.outTradeNo, { outRequestNo: 'r1', amount: '3.00' });
    const refundB = await merchantB.call('POST', `/v1/payments/${b.outTradeNo}/refunds`, { outRequestNo: 'r1', amount: '4.00' });
    expect(refundA.status, JSON.stringify(refundA.body)).toBeLessThan(300);
    expect(refundB.status, JSON.stringify(refundB.body)).toBeLessThan(300);
    await stack.waitForRefund(a.outTradeNo, 'r1', 'SUCCEEDED');
    await waitFor('B refund to succeed', async () =>
      (await merchantB.call('GET', `/v1/payments/${b.outTradeNo}/refunds/r1`)).body.status === 'SUCCEEDED' ? true : undefined,
    );
    expect((await simTrade(a.alipayNo)).refundedAmount).toBe('3.00');
    expect((await simTrade(b.alipayNo)).refundedAmount).toBe('4.00');
    expect((await merchantB.getPayment(b.outTradeNo)).body.status).toBe('REFUNDED');
  });

  it('rejects a notify for an order of app A signed with app B\'s Alipay key', async () => {
    const outTradeNo = stack.newOrderNo('cross-app');
    const alipayNo = stack.alipayNo(outTradeNo);
    await stack.createPayment({ outTradeNo, amount: '5.00', subject: 'cross app' });
    const trade = await (await fetch(`${stack.sim.url}/sim/trades/${alipayNo}/scan`, { method: 'POST' })).json();
    const params: Record<string, string> = {
      notify_time: '2026-11-24 09:00:00',
      notify_type: 'trade_status_sync',
      notify_id: randomBytes(16).toString('hex'),
      app_id: stack.appId,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
      trade_no: trade.tradeNo,
      out_trade_no: alipayNo,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '5.00',
      seller_id: stack.sellerId,
    };
    params.sign = rsa2Sign(signContent(params, ['sign', 'sign_type']), loadPrivateKey(stack.secondApp!.alipayKeys.privateKey));
    const answer = await fetch(`${stack.api.url}/alipay/notify`, { method: 'POST', body: new URLSearchParams(params) });
    expect(await answer.text()).toBe('failure');
    // Naming app B instead makes it app B's notify: it reaches no order of app A.
    const asAppB: Record<string, string> = { ...params, app_id: stack.secondApp!.appId };
    asAppB.sign = rsa2Sign(signContent(asAppB, ['sign', 'sign_type']), loadPrivateKey(stack.secondApp!.alipayKeys.privateKey));
    await fetch(`${stack.api.url}/alipay/notify`, { method: 'POST', body: new URLSearchParams(asAppB) });
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'AWAITING_PAYMENT', alipayTradeNo: null });
    // The same notify signed with app A's own Alipay key is taken: the check is the key, not the form.
    const genuine = { ...params, sign: rsa2Sign(signContent(params, ['sign', 'sign_type']), loadPrivateKey(stack.alipayKeys.privateKey)) };
    expect(await (await fetch(`${stack.api.url}/alipay/notify`, { method: 'POST', body: new URLSearchParams(genuine) })).text()).toBe('success');
    await stack.waitForStatus(outTradeNo, 'PAID');
  });
});

describe('a merchant that moves to another app', () => {
  it('keeps its order numbers: a repeated create answers the order made under the old app', async () => {
    const outTradeNo = stack.newOrderNo('moved');
    const first = await merchantB.createPayment({ outTradeNo, amount: '2.00', subject: 'before the move' });
    expect(first.status).toBe(201);
    await assignAlipayApp(stack.pool, merchantB.merchant.id, null);
    try {
      const again = await merchantB.createPayment({ outTradeNo, amount: '2.00', subject: 'before the move' });
      expect(again.status, JSON.stringify(again.body)).toBe(201);
      expect(again.body.qrCode).toBe(first.body.qrCode);
      // No trade was opened for it under the configured app.
      const calls = ((await (await fetch(`${stack.sim.url}/sim/calls`)).json()) as { outTradeNo: string; appId: string; method: string }[]).filter(
        (c) => c.outTradeNo === toAlipayOutTradeNo(merchantB.merchant.id, outTradeNo) && c.method === 'alipay.trade.precreate',
      );
      expect(calls.map((c) => c.appId)).toEqual([stack.secondApp!.appId]);
    } finally {
      await assignAlipayApp(stack.pool, merchantB.merchant.id, stack.secondApp!.appId);
    }
  });
});

describe('refunds after a merchant moves to another app', () => {
  it("refunds, reads and cancels an earlier order under the app it was paid under", async () => {
    const merchant = await stack.newMerchant('Moving Tea House');
    const outTradeNo = stack.newOrderNo('paid-before-move');
    const alipayNo = toAlipayOutTradeNo(merchant.merchant.id, outTradeNo);
    expect((await merchant.createPayment({ outTradeNo, amount: '5.00', subject: 'before the move' })).status).toBe(201);
    const waiting = stack.newOrderNo('waiting-over-move');
    expect((await merchant.createPayment({ outTradeNo: waiting, amount: '1.00', subject: 'waits over the move' })).status).toBe(201);
    await simPay(alipayNo);
    await waitFor('the order to be paid', async () => ((await merchant.getPayment(outTradeNo)).body.status === 'PAID' ? true : undefined));
    // The merchant moves to its own app; its earlier orders stay on the configured one.
    await assignAlipayApp(stack.pool, merchant.merchant.id, stack.secondApp!.appId);
    const refund = await merchant.call('POST', `/v1/payments/${outTradeNo}/refunds`, { outRequestNo: 'after-move', amount: '2.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    expect(refund.body).toMatchObject({ status: 'SUCCEEDED', amount: '2.00' });
    const trade = await simTrade(alipayNo);
    expect(trade).toMatchObject({ appId: stack.appId, refundedAmount: '2.00' });
    expect((await merchant.call('GET', `/v1/payments/${outTradeNo}/refunds/after-move`)).body.status).toBe('SUCCEEDED');
    expect((await merchant.cancelPayment(waiting)).body.status).toBe('CLOSED');
  });
});

describe('reconciliation per app', () => {
  it("reconciles each app's own bill of a day, and names the app's orders only", async () => {
    // Alipay's clock put 3 days behind for these trades: their bill is that day's.
    const date = beijingDay(Date.now() - 3 * 86_400_000);
    const clockSkewMs = Date.now() - (beijingDayStart(date)! + 12 * 3_600_000);
    const orders = [
      { client: stack, no: stack.newOrderNo('bill-a'), alipayNo: '', amount: '7.00' },
      { client: merchantB, no: stack.newOrderNo('bill-b'), alipayNo: '', amount: '8.00' },
    ];
    for (const order of orders) {
      order.alipayNo = order.client === stack ? stack.alipayNo(order.no) : toAlipayOutTradeNo(merchantB.merchant.id, order.no);
      await fetch(`${stack.sim.url}/sim/trades/${order.alipayNo}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ clockSkewMs }),
      });
      expect((await order.client.createPayment({ outTradeNo: order.no, amount: order.amount, subject: 'bill' })).status).toBe(201);
      await simPay(order.alipayNo);
      await waitFor(`${order.no} to be PAID`, async () => ((await order.client.getPayment(order.no)).body.status === 'PAID' ? true : undefined));
    }
    const reconcile = async (appId: string) => {
      expect((await stack.ops('POST', '/ops/reconciliations', { date, appId })).status).toBe(202);
      return waitFor(`app ${appId}'s reconciliation`, async () => {
        const answer = await stack.ops('GET', `/ops/reconciliations/${date}?appId=${appId}`);
        return answer.body.status === 'DONE' ? answer.body : undefined;
      }, { timeoutMs: 30_000 });
    };
    for (const [appId, amount] of [[stack.appId, '7.00'], [stack.secondApp!.appId, '8.00']] as const) {
      const day = await reconcile(appId);
      expect(day).toMatchObject({ mismatchCount: 0, totals: { payments: { gateway: { count: 1, amount }, local: { count: 1, amount } } } });
    }
    expect((await stack.ops('GET', `/ops/reconciliations/${date}?appId=2021999999999999`)).status).toBe(404);
  }, 90_000);
});

describe('app set', () => {
  it('refuses a gateway or notify URL the configuration would refuse, and stores nothing', async () => {
    const merchantC = await stack.newMerchant('Third Tea House');
    const appId = `2021${Date.now() % 10 ** 12}`;
    const set = (urls: string[]) =>
      merchantCli([
        'app', 'set', merchantC.merchant.id,
        '--app-id', appId,
        '--private-key-file', join(files, 'app_private_key.pem'),
        '--alipay-public-key-file', join(files, 'alipay_public_key.pem'),
        ...urls,
      ]);
    const notifyUrl = stack.config.alipay.notifyUrl;
    for (const [urls, message] of [
      // Plain http beyond loopback: a host that only starts like loopback is not loopback.
      [['--notify-url', notifyUrl, '--gateway-url', 'http://localhost.evil.com/gateway.do'], /--gateway-url: must be an https:\/\/ URL \(plain http only on loopback/],
      [['--notify-url', notifyUrl, '--gateway-url', 'http://127.0.0.1.evil.com/gateway.do'], /--gateway-url: must be an https:\/\/ URL/],
      [['--notify-url', notifyUrl, '--gateway-url', 'http://[::1].evil.com/gateway.do'], /--gateway-url: /],
      // /alipay/notify in the query is not the path Alipay posts to.
      [['--notify-url', 'https://pay.example.com/shop?next=/alipay/notify', '--gateway-url', stack.sim.gatewayUrl], /--notify-url: must end with \/alipay\/notify/],
    ] as const) {
      await expect(set([...urls]), urls.join(' ')).rejects.toThrow(message);
    }
    expect((await stack.pool.query('SELECT app_id FROM alipay_apps WHERE app_id = $1', [appId])).rows).toEqual([]);
    expect((await stack.pool.query('SELECT alipay_app_id FROM merchants WHERE id = $1', [merchantC.merchant.id])).rows[0].alipay_app_id).toBeNull();
  });
});

describe('private keys at rest', () => {
  it('are not readable in clear in PostgreSQL', async () => {
    const { rows } = await stack.pool.query('SELECT * FROM alipay_apps');
    expect(rows).toHaveLength(1);
    const table = JSON.stringify(rows);
    const keyBody = stack.secondApp!.appKeys.privateKey.split('\n').filter((line) => line && !line.startsWith('-----'));
    expect(keyBody.length).toBeGreaterThan(10);
    for (const line of keyBody) expect(table).not.toContain(line);
    expect(table).not.toContain('PRIVATE KEY');
    expect(rows[0].private_key.key.keyId).toMatch(/^local:[0-9a-f]{16}$/);
  });

  it('follow a master key rotation with the merchant secrets: the worker and the API on the new key pay app B\'s orders', async () => {
    const newKey = randomBytes(32).toString('hex');
    writeFileSync(join(files, 'new_master_key'), newKey);
    const before = (await stack.pool.query('SELECT private_key FROM alipay_apps')).rows[0].private_key;
    const merchantsBefore = (await stack.pool.query('SELECT id, api_secret_sealed, webhook_secret_sealed FROM merchants ORDER BY id')).rows;
    // A webhook endpoint of merchant B's, its secret sealed under the old key: it must sign under the new one.
    const hooks: { signature: string; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        hooks.push({ signature: String(req.headers['durapay-signature']), body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const endpoint = await merchantB.call('POST', '/v1/webhook-endpoints', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
      events: ['payment.paid'],
    });
    expect(endpoint.status).toBe(201);
    const endpointBefore = (await stack.pool.query('SELECT secret_sealed FROM webhook_endpoints WHERE id = $1', [endpoint.body.id])).rows[0].secret_sealed;
    const rotated = await merchantCli(['master-key', 'rotate', '--new-key-file', join(files, 'new_master_key')]);
    expect(rotated).toMatchObject({ rewrapped: 1, merchantSecretsRewrapped: merchantsBefore.length, webhookEndpointSecretsRewrapped: 1 });
    const endpointAfter = (await stack.pool.query('SELECT secret_sealed FROM webhook_endpoints WHERE id = $1', [endpoint.body.id])).rows[0].secret_sealed;
    expect(endpointAfter.ciphertext).toBe(endpointBefore.ciphertext);
    expect(endpointAfter.key.keyId).not.toBe(endpointBefore.key.keyId);
    const after = (await stack.pool.query('SELECT private_key FROM alipay_apps')).rows[0].private_key;
    expect(after.ciphertext).toBe(before.ciphertext);
    expect(after.key.keyId).not.toBe(before.key.keyId);
    const merchantsAfter = (await stack.pool.query('SELECT id, api_secret_sealed, webhook_secret_sealed FROM merchants ORDER BY id')).rows;
    for (const [i, row] of merchantsAfter.entries()) {
      for (const column of ['api_secret_sealed', 'webhook_secret_sealed']) {
        expect(row[column].ciphertext).toBe(merchantsBefore[i][column].ciphertext);
        expect(row[column].key.keyId).not.toBe(merchantsBefore[i][column].key.keyId);
      }
    }
    // Rotating again from the old key fails: it no longer opens the data keys.
    await expect(merchantCli(['master-key', 'rotate', '--new-key-file', join(files, 'new_master_key')])).rejects.toThrow(/wrapped by local:/);

    await stack.stopWorker();
    try {
      const worker = await stack.spawnWorkerProcess({ DURAPAY_MASTER_KEY: newKey });
      const api = await stack.spawnApiProcess({ DURAPAY_MASTER_KEY: newKey });
      const b = merchantClient(api.url, merchantB.merchant);
      const outTradeNo = stack.newOrderNo('after-rotation');
      expect((await b.createPayment({ outTradeNo, amount: '6.00', subject: 'after rotation' })).body.status).toBe('AWAITING_PAYMENT');
      await simPay(toAlipayOutTradeNo(merchantB.merchant.id, outTradeNo));
      await waitFor('the order to be PAID', async () => ((await b.getPayment(outTradeNo)).body.status === 'PAID' ? true : undefined));
      // The worker on the new key opened the endpoint's re-wrapped secret to sign the event.
      const hook = await waitFor('the endpoint to hear of it', async () => hooks.find((h) => h.body.includes(outTradeNo)));
      expect(verifyWebhookSignature(endpoint.body.secret, hook.signature, hook.body)).toBe(true);
      receiver.close();
      await api.stop();
      await worker.stop();
    } finally {
      await stack.startWorker();
    }
  }, 90_000);
});
