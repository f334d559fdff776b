// The web console end to end in a real headless Chromium (Debian's, driven by playwright-core)
// against a whole stack: merchant staff log in, find a paid order by its number, refund part of it
// (a repeat of the dialog's request is the same refund), see the refund settle and its webhooks
// delivered, read their webhook endpoints' deliveries and cancel an unpaid order; another
// merchant's staff cannot reach that order by any URL; an operator resolves a REVIEW order and
// finds it in the audit log; an expired session and a change without the CSRF token are refused;
// merchant staff filter orders by amount and method on the server, rotate their API secret (the
// previous one still signs during its grace), read their orders' reconciliation findings and
// download their orders as CSV.
// Every page is shot in zh-CN and in English into test-artifacts/console/.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_COLUMNS } from '../api/console-reports.js';
import { createConsoleUser } from '../lib/console/users.js';
import { merchantClient, startStack, type Stack } from './support/stack.js';
import { CHROMIUM, CONSOLE_INDEX, confirmPopup, launchChromium, logIn, openTab, screenshot, SCREENSHOTS, text, type Tab } from './support/console.js';
import { waitFor } from './support/wait.js';

const TEMPORAL_UI_URL = 'http://127.0.0.1:8233';
const STEP_TIMEOUT = 180_000;
/** How long a condition in the browser may take: a refund settling, a webhook delivered. */

const password = 'console test password 1';
const staffA = { email: 'staff@tea-house.example', password };
const staffB = { email: 'staff@other-tea.example', password };
const operator = { email: 'ops@durapay.example', password };

/** A merchant's webhook receiver: /ok answers 200, /fail 503; every request is kept. */
async function startReceiver() {
  const received: { path: string; type: string; status: number }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let type = '';
      try {
        type = JSON.parse(Buffer.concat(chunks).toString('utf8')).type ?? '';
      } catch {
        // not an event
      }
      const status = req.url?.startsWith('/fail') ? 503 : 200;
      received.push({ path: req.url ?? '', type, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    received,
    url: (path: string) => `${base}${path}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let stack: Stack;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;
let base: string;
let merchantB: Awaited<ReturnType<Stack['newMerchant']>>;
/** Merchant A's paid order of ¥1,234.50, B's own order, an unpaid order of A's, A's REVIEW order. */
const orders = { paid: '', other: '', unpaid: '', review: '' };
const endpoints = { ok: '', fail: '' };

beforeAll(async () => {
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run npm run console:build first`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it with apt-get install chromium`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  receiver = await startReceiver();
  stack = await startStack({ orderTimeout: '600s', pollLadder: '1s', env: { TEMPORAL_UI_URL } });
  base = stack.api.url;
  merchantB = await stack.newMerchant('乙茶馆 Other Tea');
  await createConsoleUser(stack.pool, { ...staffA, role: `merchant:${stack.merchant.id}` });
  await createConsoleUser(stack.pool, { ...staffB, role: `merchant:${merchantB.merchant.id}` });
  await createConsoleUser(stack.pool, { ...operator, role: 'operator' });

  // Merchant A's endpoints: one that takes every event, one that always answers 503.
  for (const [key, path] of [['ok', '/ok'], ['fail', '/fail']] as const) {
    const created = await stack.apiCall('POST', '/v1/webhook-endpoints', { url: receiver.url(path), events: ['*'], description: `console ${key}` });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    endpoints[key] = created.body.id;
  }

  orders.paid = stack.newOrderNo('console-paid');
  const paid = await stack.createPayment({ outTradeNo: orders.paid, amount: '1234.50', subject: '西湖龙井 礼盒', notifyUrl: receiver.url('/notify') });
  expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${orders.paid}/pay`)).status).toBe(200);
  await stack.waitForStatus(orders.paid, 'PAID');

  orders.unpaid = stack.newOrderNo('console-unpaid');
  expect((await stack.createPayment({ outTradeNo: orders.unpaid, amount: '8.80', subject: '碧螺春' })).status).toBe(201);

  orders.other = stack.newOrderNo('console-other');
  expect((await merchantB.createPayment({ outTradeNo: orders.other, amount: '19.90', subject: '乙的订单' })).status).toBe(201);

  // A REVIEW order: Alipay's notify says the buyer paid another amount.
  orders.review = stack.newOrderNo('console-review');
  expect((await stack.createPayment({ outTradeNo: orders.review, amount: '66.00', subject: '大红袍' })).status).toBe(201);
  await stack.simCall('POST', `/sim/trades/${orders.review}/scan`);
  await stack.simCall('POST', `/sim/trades/${orders.review}/notify`, { variant: 'valid', overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' } });
  await stack.waitForStatus(orders.review, 'REVIEW');

  browser = await launchChromium();
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await receiver?.close();
});

/** The page in zh-CN, then switched to English in the header, then back: a screenshot of each.
 *  `words` is text the page shows in each language (a heading, a label), waited for. */
async function shoot(page: Page, name: string, words: { zh: string; en: string }) {
  await text(page, words.zh).waitFor();
  expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
  await screenshot(page, `${name}.zh-CN.png`);
  await text(page, 'English').click();
  await text(page, words.en).waitFor();
  expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
  await screenshot(page, `${name}.en.png`);
  await text(page, '中文').click();
  await text(page, words.zh).waitFor();
}

/** A table's row that names `key`. */
const row = (page: Page, table: string, key: string) => page.getByTestId(table).locator('tr', { hasText: key });

describe('the console in Chromium', () => {
  let a: Tab;

  it('serves the app under /console, every route of it on a reload, and a login page in zh-CN first', async () => {
    const index = await fetch(`${base}/console/orders/anything`);
    expect(index.status).toBe(200);
    const html = await index.text();
    expect(html).toContain('<html lang="zh-CN">');
    // Built assets only, from this server: no CDN, no web fonts.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) expect(asset).toMatch(/^\/console\/assets\/[\w.-]+-[\w-]{8}\.(js|css)$/);

    a = await openTab(browser);
    await a.page.goto(`${base}/console/`);
    await a.page.waitForURL('**/console/login');
    await shoot(a.page, 'login', { zh: '登录 durapay 控制台', en: 'Log in to the durapay console' });
  }, STEP_TIMEOUT);

  it("a merchant's staff log in, find the paid order by its number and read its amounts, status and Alipay trade number", async () => {
    const { page } = a;
    await logIn(page, base, staffA);
    await page.waitForURL('**/console/orders');
    await row(page, 'orders-table', orders.paid).waitFor();
    await shoot(page, 'orders', { zh: '商户订单号', en: 'Order number' });

    await page.getByTestId('search-no').fill(orders.paid);
    await page.getByRole('button', { name: '查询' }).click();
    await page.waitForURL((url) => url.searchParams.get('no') === orders.paid);
    const found = row(page, 'orders-table', orders.paid);
    await found.filter({ hasText: '¥1,234.50' }).filter({ hasText: '已支付' }).waitFor();
    // Only that order: the unpaid one is gone from the table.
    await row(page, 'orders-table', orders.unpaid).waitFor({ state: 'detached' });
    expect(await page.getByTestId('orders-table').locator('tbody tr').count()).toBe(1);

    await found.getByRole('link', { name: orders.paid }).click();
    await page.waitForURL(`**/console/orders/${orders.paid}`);
    const tradeNo = (await stack.getPayment(orders.paid)).body.alipayTradeNo as string;
    expect(tradeNo).toBeTruthy();
    await page.getByTestId('order-trade-no').filter({ hasText: tradeNo }).waitFor();
    expect(await page.getByTestId('order-amount').textContent()).toBe('¥1,234.50');
    expect(await page.getByTestId('order-refundable').textContent()).toBe('¥1,234.50');
    // The paid event reached the order's notifyUrl: delivered, on the page without a reload.
    await row(page, 'deliveries-table', 'payment.paid').filter({ hasText: '已送达' }).waitFor();
  }, STEP_TIMEOUT);

  it('refunds part of the order; a repeat of the same dialog is the same refund; it settles and its webhook is delivered', async () => {
    const { page } = a;
    await page.getByRole('button', { name: '退款', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('可退款金额：¥1,234.50').waitFor();
    const refundNo = (await dialog.getByTestId('refund-no').textContent())!;
    expect(refundNo).toMatch(/^rf-\d{14}-[0-9a-f]{8}$/);
    await dialog.getByTestId('refund-amount').fill('234.50');
    await dialog.locator('textarea').fill('少发一盒');
    await screenshot(page, `refund-dialog.zh-CN.png`);

    // The first request reaches the API, but its answer is lost on the way back.
    let sent = 0;
    const bodies: unknown[] = [];
    await page.route('**/console/api/v1/payments/*/refunds', async (route) => {
      // The page's own reads of the refunds go through.
      if (route.request().method() !== 'POST') return route.continue();
      sent += 1;
      bodies.push(route.request().postDataJSON());
      if (sent === 1) {
        await route.fetch();
        await route.abort('connectionreset');
      } else {
        await route.continue();
      }
    });
    await dialog.getByRole('button', { name: '提交退款' }).click();
    await page.getByText(/^请求失败：/).first().waitFor();
    // The dialog is still open with the same number: submitted again, the API answers from its record.
    expect(await dialog.getByTestId('refund-no').textContent()).toBe(refundNo);
    await dialog.getByRole('button', { name: '提交退款' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.unroute('**/console/api/v1/payments/*/refunds');
    expect(sent).toBe(2);
    expect(bodies).toEqual(Array(2).fill({ outRequestNo: refundNo, amount: '234.50', reason: '少发一盒' }));

    const refund = row(page, 'refunds-table', refundNo);
    await refund.filter({ hasText: '¥234.50' }).filter({ hasText: '退款成功' }).waitFor();
    const refunds = (await stack.apiCall('GET', `/v1/payments/${orders.paid}/refunds`)).body.refunds;
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ outRequestNo: refundNo, amount: '234.50', status: 'SUCCEEDED', reason: '少发一盒' });

    await page.getByTestId('order-details').getByText('部分退款').waitFor();
    await page.getByTestId('order-refunded').filter({ hasText: '¥234.50' }).waitFor();
    await page.getByTestId('order-refundable').filter({ hasText: '¥1,000.00' }).waitFor();
    await row(page, 'deliveries-table', 'refund.succeeded').filter({ hasText: '已送达' }).waitFor();
    expect(receiver.received.some((r) => r.path === '/notify' && r.type === 'refund.succeeded' && r.status === 200)).toBe(true);
    await shoot(page, 'order', { zh: '事件时间线', en: 'Timeline' });

    // In English the words change and the money reads the same; the choice outlives a reload.
    await text(page, 'English').click();
    await page.getByTestId('order-details').getByText('Partially refunded').waitFor();
    expect(await page.getByTestId('order-amount').textContent()).toBe('¥1,234.50');
    await page.reload();
    await page.getByTestId('order-details').getByText('Partially refunded').waitFor();
    expect(await page.evaluate(() => localStorage.getItem('durapay.console.lang'))).toBe('en');
    await page.getByRole('button', { name: 'Refund', exact: true }).click();
    await page.getByRole('dialog').getByText('Refundable: ¥1,000.00').waitFor();
    await screenshot(page, `refund-dialog.en.png`);
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await text(page, '中文').click();
    await page.getByTestId('order-details').getByText('部分退款').waitFor();
  }, STEP_TIMEOUT);

  it("shows each webhook endpoint's deliveries, a failing one with its coarse reason, and resends", async () => {
    const { page } = a;
    await page.getByRole('menuitem', { name: 'Webhook' }).click();
    await page.waitForURL('**/console/webhooks');
    await page.getByRole('link', { name: endpoints.fail }).click();
    await page.waitForURL(`**/console/webhooks/${endpoints.fail}`);
    // Its first delivery failed, and says how: the later events wait behind it, in order.
    const failing = row(page, 'endpoint-deliveries', 'payment.paid').filter({ hasText: orders.paid });
    await failing.filter({ hasText: 'HTTP 503' }).waitFor();
    await shoot(page, 'webhook-failures', { zh: 'Webhook 端点', en: 'Webhook endpoints' });
    await failing.getByRole('button', { name: '重新发送' }).click();
    await page.getByText('已安排重新发送').waitFor();

    await page.getByRole('link', { name: endpoints.ok }).click();
    await page.waitForURL(`**/console/webhooks/${endpoints.ok}`);
    await row(page, 'endpoint-deliveries', 'refund.succeeded').filter({ hasText: '已送达' }).filter({ hasText: orders.paid }).waitFor();
    await shoot(page, 'webhooks', { zh: 'Webhook 端点', en: 'Webhook endpoints' });
  }, STEP_TIMEOUT);

  it('refuses a change without the CSRF token, in the page and from a script with the cookie, and changes nothing; then cancels the unpaid order', async () => {
    const { page } = a;
    await page.goto(`${base}/console/orders/${orders.unpaid}`);
    await page.getByTestId('order-details').getByText('待支付').waitFor();

    // A script of the page's origin, with the session's cookie but without the header.
    const answer = await page.evaluate(async (no) => {
      const res = await fetch(`/console/api/v1/payments/${no}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: await res.json() };
    }, orders.unpaid);
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('CSRF_TOKEN_INVALID');
    expect((await stack.getPayment(orders.unpaid)).body.status).toBe('AWAITING_PAYMENT');

    // The console's own request with a token the session no longer has (the server's copy
    // changed under it): refused, and the page says why.
    const sessionOf = `user_id = (SELECT id FROM console_users WHERE email = $1)`;
    const { rows } = await stack.pool.query(`SELECT csrf_token FROM console_sessions WHERE ${sessionOf}`, [staffA.email]);
    expect(rows).toHaveLength(1);
    await stack.pool.query(`UPDATE console_sessions SET csrf_token = 'not-the-page-token' WHERE ${sessionOf}`, [staffA.email]);
    const refused = page.waitForResponse((res) => res.url().endsWith('/cancel') && res.request().method() === 'POST');
    await page.getByRole('button', { name: '取消订单' }).click();
    await confirmPopup(page, '确定');
    expect((await refused).status()).toBe(403);
    await page.getByText(/^请求被拒绝：缺少或无效的 CSRF 令牌/).waitFor();
    expect((await stack.getPayment(orders.unpaid)).body.status).toBe('AWAITING_PAYMENT');
    await page.getByTestId('order-details').getByText('待支付').waitFor();
    await stack.pool.query(`UPDATE console_sessions SET csrf_token = $2 WHERE ${sessionOf}`, [staffA.email, rows[0].csrf_token]);

    await page.getByRole('button', { name: '取消订单' }).click();
    await confirmPopup(page, '确定');
    await page.getByTestId('order-details').getByText('已关闭').waitFor();
    expect((await stack.getPayment(orders.unpaid)).body.status).toBe('CLOSED');
  }, STEP_TIMEOUT);

  it("another merchant's staff cannot see the order by any URL", async () => {
    const b = await openTab(browser);
    const { page } = b;
    try {
      // The order's page opened directly: the login first, then the page it asked for.
      const orderPath = `/console/orders/${orders.paid}`;
      const apiAnswer = page.waitForResponse((res) => new URL(res.url()).pathname === `/console/api/v1/payments/${orders.paid}`);
      await logIn(page, base, staffB, orderPath);
      expect(new URL(page.url()).pathname).toBe(orderPath);
      expect((await apiAnswer).status()).toBe(404);
      await page.getByTestId('order-not-found').filter({ hasText: `订单不存在：${orders.paid}` }).waitFor();
      await shoot(page, 'order-not-found', { zh: `订单不存在：${orders.paid}`, en: `No such order: ${orders.paid}` });

      // Nor through the API the console reads, whatever the path.
      const statuses = await page.evaluate(async (no) => {
        const paths = [`/v1/payments/${no}`, `/v1/payments/${no}/refunds`, `/v1/payments/${no}/events`, '/ops/payments?status=PAID'];
        return Promise.all(paths.map(async (path) => (await fetch(`/console/api${path}`)).status));
      }, orders.paid);
      expect(statuses).toEqual([404, 404, 404, 403]);

      // The list has B's order and not A's.
      await page.getByRole('menuitem', { name: '订单' }).click();
      await page.waitForURL('**/console/orders');
      await row(page, 'orders-table', orders.other).filter({ hasText: '¥19.90' }).waitFor();
      expect(await page.getByTestId('orders-table').getByText(orders.paid).count()).toBe(0);
      await page.getByTestId('search-no').fill(orders.paid);
      await page.getByRole('button', { name: '查询' }).click();
      await page.getByTestId('orders-table').getByText('没有符合条件的订单').waitFor();
      // Operators' pages are not a merchant's.
      await page.goto(`${base}/console/ops/review`);
      await page.getByText('无权访问此页面').waitFor();
      expect(b.errors).toEqual([]);
    } finally {
      await b.context.close();
    }
  }, STEP_TIMEOUT);

  it('an operator resolves a REVIEW order with a note, reads its timeline with the Temporal link, sees the audit entry, and disables, enables and adds merchants', async () => {
    const ops = await openTab(browser);
    const { page } = ops;
    const paymentId = stack.workflowId(orders.review);
    try {
      await logIn(page, base, operator);
      await page.waitForURL('**/console/ops/review');
      const queued = row(page, 'review-table', orders.review);
      await queued.filter({ hasText: '¥66.00' }).filter({ hasText: '待复核' }).waitFor();
      expect(await queued.textContent()).toMatch(/\d+ 分钟/);
      await shoot(page, 'review', { zh: '待复核订单', en: 'Review queue' });

      // The dialog in English first (the language is switched with no dialog over the header).
      const dialog = page.getByRole('dialog');
      await text(page, 'English').click();
      await queued.getByRole('button', { name: 'Resolve' }).click();
      await dialog.getByText('Closed (CLOSED)').click();
      await dialog.locator('textarea').fill('The buyer paid 0.01 of 66.00; given back by hand');
      await screenshot(page, 'resolve-dialog.en.png');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      await text(page, '中文').click();

      await queued.getByRole('button', { name: '处理' }).click();
      await dialog.getByText('关闭订单 (CLOSED)').click();
      await dialog.locator('textarea').fill('买家未付全款，已线下退回');
      await screenshot(page, 'resolve-dialog.zh-CN.png');
      await dialog.getByRole('button', { name: '处理' }).click();
      await page.getByText(`订单 ${orders.review} 已处理为 已关闭`).waitFor();
      await queued.waitFor({ state: 'detached' });
      expect((await stack.getPayment(orders.review)).body.status).toBe('CLOSED');

      await page.goto(`${base}/console/ops/timeline/${encodeURIComponent(paymentId)}`);
      await page.getByTestId('timeline-entries').locator('tr', { hasText: '账本' }).first().waitFor();
      const link = page.getByRole('link', { name: '在 Temporal UI 中查看历史' });
      expect(await link.getAttribute('href')).toMatch(new RegExp(`^${TEMPORAL_UI_URL}/namespaces/[^/]+/workflows/${encodeURIComponent(paymentId)}/`));
      await shoot(page, 'timeline', { zh: '订单时间线', en: 'Order timeline' });

      await page.getByRole('menuitem', { name: '审计日志' }).click();
      await page.waitForURL('**/console/ops/audit');
      const entry = page.getByTestId('audit-table').locator('tr', { hasText: 'resolve-review' }).filter({ hasText: paymentId });
      await entry.filter({ hasText: operator.email }).filter({ hasText: '200' }).waitFor();
      expect(await entry.textContent()).toContain('买家未付全款');
      await shoot(page, 'audit', { zh: '审计日志', en: 'Audit log' });

      await page.getByRole('menuitem', { name: '商户' }).click();
      await page.waitForURL('**/console/ops/merchants');
      await row(page, 'merchants-table', merchantB.merchant.id).filter({ hasText: '乙茶馆 Other Tea' }).filter({ hasText: '正常' }).waitFor();
      await shoot(page, 'merchants', { zh: '商户 ID', en: 'Merchant id' });

      // B disabled: its signed requests are refused; enabled again: answered.
      const bRow = row(page, 'merchants-table', merchantB.merchant.id);
      await bRow.getByRole('button', { name: '停用' }).click();
      await confirmPopup(page, '确定');
      await bRow.getByText('已停用').waitFor();
      await waitFor('the disabled merchant to be refused', async () => ((await merchantB.getPayment(orders.other)).status === 401 ? true : undefined));
      await bRow.getByRole('button', { name: '启用' }).click();
      await bRow.getByText('正常').waitFor();
      await waitFor('the enabled merchant to be answered', async () => ((await merchantB.getPayment(orders.other)).status === 200 ? true : undefined));
      // A new merchant: its credentials are shown this once.
      await page.getByRole('button', { name: '新增商户' }).click();
      const create = page.getByRole('dialog');
      await create.locator('input').fill('丙茶馆 Third Tea');
      await create.getByRole('button', { name: '确定' }).click();
      await page.getByText('凭据只显示这一次，请妥善保存：').waitFor();
      await page.getByText(/^sk_/).first().waitFor();
      await row(page, 'merchants-table', '丙茶馆 Third Tea').filter({ hasText: '正常' }).waitFor();

      // A merchant's pages are not an operator's.
      await page.goto(`${base}/console/orders`);
      await page.getByText('无权访问此页面').waitFor();
      expect(ops.errors).toEqual([]);
    } finally {
      await ops.context.close();
    }
  }, STEP_TIMEOUT);

  it('sends the browser to the login page, saying so, once its session has expired', async () => {
    const { page } = a;
    await page.goto(`${base}/console/orders/${orders.paid}`);
    await page.getByTestId('order-amount').waitFor();
    const ended = await stack.pool.query(
      `UPDATE console_sessions SET expires_at = now() - interval '1 minute'
       WHERE user_id = (SELECT id FROM console_users WHERE email = $1)`,
      [staffA.email],
    );
    expect(ended.rowCount).toBeGreaterThan(0);
    // The order page reads the order again every few seconds: the next read is refused.
    await page.waitForURL('**/console/login');
    await page.getByText('会话已过期，请重新登录').waitFor();
    await shoot(page, 'session-expired', { zh: '会话已过期，请重新登录', en: 'Session expired, please log in again' });
    // The session is gone for the API too.
    const after = await page.evaluate(async () => (await fetch('/console/api/session')).status);
    expect(after).toBe(401);
    expect(a.errors).toEqual([]);
    await a.context.close();
  }, STEP_TIMEOUT);

  describe("merchant staff's orders filters, API credentials, reconciliation and export", () => {
    let m: Tab;
    beforeAll(async () => {
      m = await openTab(browser);
      await logIn(m.page, base, staffA);
      await m.page.waitForURL('**/console/orders');
    }, STEP_TIMEOUT);
    afterAll(async () => {
      await m?.context.close();
    });

    it('filters orders by amount and method on the server', async () => {
      const { page } = m;
      await row(page, 'orders-table', orders.paid).waitFor();
      await page.getByTestId('search-min').fill('60');
      await page.getByTestId('search-max').fill('1,234.5');
      const sent = page.waitForRequest((req) => new URL(req.url()).pathname === '/console/api/v1/payments' && new URL(req.url()).searchParams.has('amountMin'));
      await page.getByRole('button', { name: '查询' }).click();
      const params = new URL((await sent).url()).searchParams;
      expect(params.get('amountMin')).toBe('60.00');
      expect(params.get('amountMax')).toBe('1234.50');
      expect(params.get('limit')).toBe('20');
      await row(page, 'orders-table', orders.paid).filter({ hasText: '¥1,234.50' }).waitFor();
      await row(page, 'orders-table', orders.review).filter({ hasText: '¥66.00' }).waitFor();
      await row(page, 'orders-table', orders.unpaid).waitFor({ state: 'detached' });
      expect(await page.getByTestId('orders-table').locator('tbody tr').count()).toBe(2);

      // And by method: both are QR orders; none was paid by payment code.
      const method = page.locator('.ant-form-item', { hasText: '支付方式' }).locator('.ant-select');
      await method.click();
      await page.locator('.ant-select-item-option', { hasText: '付款码支付' }).click();
      const byCode = page.waitForRequest((req) => new URL(req.url()).searchParams.get('method') === 'barcode');
      await page.getByRole('button', { name: '查询' }).click();
      expect(new URL((await byCode).url()).searchParams.get('amountMin')).toBe('60.00');
      await page.getByTestId('orders-table').getByText('没有符合条件的订单').waitFor();
      await method.click();
      await page.locator('.ant-select-item-option', { hasText: '扫码支付' }).click();
      await page.getByRole('button', { name: '查询' }).click();
      await page.waitForURL((url) => url.searchParams.get('method') === 'qr');
      await row(page, 'orders-table', orders.paid).waitFor();
      await row(page, 'orders-table', orders.review).waitFor();
      await shoot(page, 'orders-filtered', { zh: '最小金额', en: 'Min amount' });

      // A maximum under the minimum is refused in the form, before any request.
      await page.getByTestId('search-max').fill('10');
      await page.getByRole('button', { name: '查询' }).click();
      await page.getByText('最大金额不能小于最小金额').waitFor();
      expect(m.errors).toEqual([]);
    }, STEP_TIMEOUT);

    it('rotates the API secret after a confirmation, shows the new one once, and the previous one still signs during the grace', async () => {
      const { page } = m;
      await page.getByRole('menuitem', { name: 'API 凭据' }).click();
      await page.waitForURL('**/console/credentials');
      await page.getByTestId('credentials-merchant-id').filter({ hasText: stack.merchant.id }).waitFor();
      await shoot(page, 'credentials', { zh: '轮换 API 密钥', en: 'Rotate the API secret' });

      await page.getByTestId('credentials-grace').getByText('1 小时').click();
      await page.getByTestId('credentials-rotate').click();
      const popup = page.locator('.ant-popconfirm:not(.ant-popover-hidden)');
      await popup.getByText('旧密钥将在 1 小时 后失效。').waitFor();
      const answer = page.waitForResponse((res) => res.url().endsWith('/console/api/v1/credentials/rotate-secret'));
      await confirmPopup(page, '确定');
      expect((await answer).status()).toBe(200);
      const secret = (await page.getByTestId('credentials-secret').innerText()).trim();
      expect(secret).toMatch(/^sk_/);
      await page.getByText('新密钥只显示这一次，请立即复制并妥善保存').waitFor();
      const { rows } = await stack.pool.query('SELECT previous_secret_expires_at AS until FROM merchants WHERE id = $1', [stack.merchant.id]);
      const until: Date = rows[0].until;
      expect(Math.abs(until.getTime() - Date.now() - 3_600_000)).toBeLessThan(120_000);
      const local = new Date(until.getTime() + 8 * 3_600_000).toISOString().replace('T', ' ').slice(0, 19);
      expect(await page.getByTestId('credentials-previous-until').innerText()).toBe(`旧密钥失效时间：${local}`);
      await screenshot(page, 'credentials-rotated.zh-CN.png');

      // Signed /v1 requests: the new secret works, and so does the previous one, within its grace.
      const fresh = merchantClient(base, { ...stack.merchant, secret });
      expect((await fresh.call('GET', `/v1/payments/${orders.paid}`)).status).toBe(200);
      expect((await merchantClient(base, stack.merchant).call('GET', `/v1/payments/${orders.paid}`)).status).toBe(200);
      expect((await merchantClient(base, { ...stack.merchant, secret: `${secret}x` }).call('GET', `/v1/payments/${orders.paid}`)).status).toBe(401);

      // Shown once: after a reload the page has no secret to show.
      await page.reload();
      await page.getByTestId('credentials-rotate').waitFor();
      expect(await page.getByTestId('credentials-secret').count()).toBe(0);
      expect(await page.content()).not.toContain(secret);
      expect(m.errors).toEqual([]);
    }, STEP_TIMEOUT);

    it("lists the reconciliation's findings about the merchant's orders, and downloads the orders as CSV", async () => {
      const { page } = m;
      // A finding about A's paid order and one about B's, from yesterday's reconciliation (Beijing time).
      const yesterday = new Date(Date.now() + 8 * 3_600_000 - 86_400_000).toISOString().slice(0, 10);
      const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
      const idOf = async (merchantId: string, no: string) =>
        (await stack.pool.query('SELECT id FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [merchantId, no])).rows[0].id;
      await stack.pool.query(`INSERT INTO reconciliations (app_id, bill_date, status, run_id, mismatch_count, finished_at) VALUES ($1, $2, 'DONE', 'run-console', 2, now())`, [
        stack.appId,
        yesterday,
      ]);
      await stack.pool.query(
        `INSERT INTO reconciliation_mismatches (app_id, bill_date, run_id, type, payment_id, out_trade_no, alipay_trade_no, local_amount_fen, gateway_amount_fen, detail, dispatched_at)
         VALUES ($1, $2, 'run-console', 'amount_mismatch', $3, 'a', 'T-console', 123450, 123400, 'the bill lists 1234.00', now()),
                ($1, $2, 'run-console', 'missing_gateway', $4, 'b', NULL, 1990, NULL, 'not A''s', now())`,
        [stack.appId, yesterday, await idOf(stack.merchant.id, orders.paid), await idOf(merchantB.merchant.id, orders.other)],
      );

      await page.getByRole('menuitem', { name: '对账' }).click();
      await page.waitForURL('**/console/reconciliation');
      const finding = row(page, 'findings-table', orders.paid);
      await finding.filter({ hasText: yesterday }).filter({ hasText: '金额不一致' }).filter({ hasText: '¥1,234.50' }).filter({ hasText: '¥1,234.00' }).waitFor();
      expect(await page.getByTestId('findings-table').getByText(orders.other).count()).toBe(0);
      expect(await page.getByTestId('findings-table').locator('tbody tr').count()).toBe(1);
      await shoot(page, 'reconciliation', { zh: '差异类型', en: 'Finding' });

      const from = new Date(Date.now() + 8 * 3_600_000 - 29 * 86_400_000).toISOString().slice(0, 10);
      const downloading = page.waitForEvent('download');
      await page.getByTestId('findings-export').click();
      const download = await downloading;
      expect(download.suggestedFilename()).toBe(`durapay-orders-${from}-${today}.csv`);
      const bytes = readFileSync((await download.path())!);
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const rows: string[][] = parseCsv(bytes, { bom: true });
      expect(rows[0]).toEqual([...EXPORT_COLUMNS]);
      const records = rows.slice(1).map((r) => Object.fromEntries(EXPORT_COLUMNS.map((c, i) => [c, r[i]])));
      const ours = await stack.pool.query('SELECT out_trade_no FROM payments WHERE merchant_id = $1 ORDER BY created_at, id', [stack.merchant.id]);
      expect(records.filter((r) => r.record_type === 'payment').map((r) => r.out_trade_no)).toEqual(ours.rows.map((o) => o.out_trade_no));
      expect(records.map((r) => r.out_trade_no)).not.toContain(orders.other);
      const paid = records.filter((r) => r.out_trade_no === orders.paid);
      expect(paid).toEqual([
        expect.objectContaining({ record_type: 'payment', status: 'PARTIALLY_REFUNDED', amount: '1234.50', paid_amount: '1234.50', refunded_amount: '234.50', subject: '西湖龙井 礼盒' }),
        expect.objectContaining({ record_type: 'refund', status: 'SUCCEEDED', amount: '234.50', reason: '少发一盒', out_request_no: expect.stringMatching(/^rf-/) }),
      ]);
      expect(records.find((r) => r.out_trade_no === orders.unpaid)).toMatchObject({ status: 'CLOSED', amount: '8.80', paid_amount: '' });
      expect(m.errors).toEqual([]);
    }, STEP_TIMEOUT);
  });
});
