// The buyer's cashier page against the whole stack: cashierUrl on the merchant's answers, the page's
// headers and escaping, the same 404 for every unknown token, and, in a real headless Chromium,
// the QR code as the browser shows it, a payment in the simulator turning the page to paid without
// a reload, and an order that runs out of time turning to closed. Screenshots of each state are
// left in test-artifacts/cashier/.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import jsqr from 'jsqr';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { paymentWorkflowId } from '../lib/payments/payment.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';

// jsqr is CommonJS: under NodeNext its default import is the module, whose default is the decoder.
const decodeQr = jsqr.default;
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = fileURLToPath(new URL('../test-artifacts/cashier/', import.meta.url));
// Chinese, and every character HTML gives a meaning to.
const SUBJECT = '西湖龙井 一杯 <b>"特级"</b> & \'新茶\'';
const MERCHANT_NAME = '茶馆 <i>Tea & "Co"</i>';

let stack: Stack;
beforeAll(async () => {
  // Orders wait 8 s unless they ask for longer: long enough to see one open, short enough to see it close.
  stack = await startStack({ orderTimeout: '8s', pollLadder: '1s' });
});
afterAll(async () => {
  await stack?.stop();
});

/** An order of a merchant whose name needs escaping, waiting `timeoutMinutes` (default: 8 s). */
async function createOrder(label: string, timeoutMinutes?: number, amount = '12.50') {
  const merchant = await stack.newMerchant(MERCHANT_NAME);
  const outTradeNo = stack.newOrderNo(label);
  const created = await merchant.createPayment({ outTradeNo, amount, subject: SUBJECT, ...(timeoutMinutes && { timeoutMinutes }) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { merchant, outTradeNo, created: created.body };
}

describe('cashierUrl and the page over HTTP', () => {
  it('is on every answer about the order, the same for every retry, and holds a 128-bit token', async () => {
    const { merchant, outTradeNo, created } = await createOrder('url', 5);
    expect(created.cashierUrl).toMatch(new RegExp(`^${stack.api.url}/pay/[A-Za-z0-9_-]{22}$`));
    expect(created.cashierUrl).not.toContain(outTradeNo);
    const again = await merchant.createPayment({ outTradeNo, amount: '12.50', subject: SUBJECT, timeoutMinutes: 5 });
    expect(again.body.cashierUrl).toBe(created.cashierUrl);
    expect((await merchant.getPayment(outTradeNo)).body.cashierUrl).toBe(created.cashierUrl);
    const listed = await merchant.call('GET', '/v1/payments?limit=1');
    expect(listed.body.payments[0].cashierUrl).toBe(created.cashierUrl);
    const { rows } = await stack.pool.query('SELECT cashier_token FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [
      merchant.merchant.id,
      outTradeNo,
    ]);
    expect(created.cashierUrl.endsWith(`/pay/${rows[0].cashier_token}`)).toBe(true);
  });

  it("keeps its token out of the order's workflow history, where anyone who reads Temporal would find it", async () => {
    const { merchant, outTradeNo, created } = await createOrder('history', 5);
    const token = new URL(created.cashierUrl).pathname.split('/').pop()!;
    const client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
    try {
      const history = await client.workflow.getHandle(paymentWorkflowId(stack.appId, toAlipayOutTradeNo(merchant.merchant.id, outTradeNo))).fetchHistory();
      const payloads: string[] = [];
      const walk = (node: unknown): void => {
        if (node instanceof Uint8Array) payloads.push(Buffer.from(node).toString('utf8'));
        else if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') Object.values(node).forEach(walk);
      };
      walk(history);
      const text = payloads.join('\n');
      expect(text).toContain(outTradeNo);
      expect(text).not.toContain(token);
    } finally {
      await client.connection.close();
    }
    // The page still opens with it.
    expect((await fetch(created.cashierUrl)).status).toBe(200);
  });

  it('is UTF-8 zh-CN with every piece of user text escaped, under a strict Content-Security-Policy', async () => {
    const { outTradeNo, created } = await createOrder('http', 5);
    const res = await fetch(created.cashierUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const page = await res.text();
    expect(page).toContain('<html lang="zh-CN">');
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toContain('西湖龙井 一杯 &lt;b&gt;&quot;特级&quot;&lt;/b&gt; &amp; &#39;新茶&#39;');
    expect(page).toContain('茶馆 &lt;i&gt;Tea &amp; &quot;Co&quot;&lt;/i&gt;');
    expect(page).not.toContain('<b>');
    expect(page).not.toContain('<i>');
    expect(page).not.toContain(outTradeNo);
    expect(page).toContain('¥12.50');

    const csp = Object.fromEntries(
      res.headers.get('content-security-policy')!.split(';').map((directive) => {
        const [name, ...values] = directive.trim().split(/\s+/);
        return [name, values];
      }),
    );
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['img-src']).toEqual(['data:']);
    expect(csp['connect-src']).toEqual(["'self'"]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    // The one inline script and style are allowed by their hashes, and nothing else is.
    const inline = (tag: string) => new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page)![1]!;
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    expect(csp['script-src']).toEqual([hash(inline('script'))]);
    expect(csp['style-src']).toEqual([hash(inline('style'))]);
  });

  it('shows the amount as a buyer reads money, ¥1,234.50, and names the QR code as one to scan', async () => {
    const { created } = await createOrder('words', 5, '1234.50');
    const page = await (await fetch(created.cashierUrl)).text();
    expect(page).toContain('<p class="amount">¥1,234.50</p>');
    expect(page).toContain('<title>支付 Pay ¥1,234.50 · ');
    // 付款码 is the buyer's own barcode; the page shows a code the buyer scans.
    expect(page).toMatch(/<img class="qr" [^>]*alt="支付宝扫码支付二维码 Alipay QR code to scan"/);
    expect(page).not.toContain('付款码');
  });

  it('answers every unknown token with the same 404 page, whatever it looks like', async () => {
    const unknown = [randomBytes(16).toString('base64url'), 'order-1001', 'x'.repeat(500), '%E0%A4%A', '%00', 'A'.repeat(22)];
    const answers = await Promise.all(
      unknown.flatMap((token) => [`/pay/${token}`, `/pay/${token}/events`]).map(async (path) => {
        const res = await fetch(`${stack.api.url}${path}`);
        return { path, status: res.status, type: res.headers.get('content-type'), csp: res.headers.get('content-security-policy'), body: await res.text() };
      }),
    );
    const first = answers[0]!;
    expect(first.status).toBe(404);
    expect(first.body).toContain('No such order');
    for (const answer of answers) expect({ ...answer, path: first.path }, answer.path).toEqual(first);
  });
});

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`cashier page browser test skipped: no Chromium at ${CHROMIUM}; install it with: apt-get install chromium`);

describe.skipIf(!haveChromium)(`the page in headless Chromium${haveChromium ? '' : ' (skipped: install Chromium with apt-get install chromium)'}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** A page that fails the test on any console error, a refused script or style among them. */
  async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 420, height: 760 } });
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(url);
    return { page, errors };
  }

  it('shows the QR code the order was given; paid in the simulator, it turns to paid without a reload', async () => {
    const { created } = await createOrder('browser', 5);
    const { page, errors } = await openPage(created.cashierUrl);
    const main = page.locator('main#cashier');
    expect(await main.getAttribute('data-state')).toBe('awaiting');
    expect(await page.evaluate(() => document.characterSet)).toBe('UTF-8');
    expect(await page.locator('.subject').textContent()).toBe(SUBJECT);
    expect(await page.locator('.merchant').textContent()).toBe(MERCHANT_NAME);
    expect(await page.locator('.amount').textContent()).toBe('¥12.50');
    expect(await page.locator('main b, main i').count()).toBe(0);
    await page.waitForFunction(() => /^[45]:[0-5]\d$/.test(document.getElementById('countdown')!.textContent!), undefined, { timeout: 5_000 });

    // The QR code as the browser draws it decodes to the order's code.
    const shot = PNG.sync.read(await page.locator('img.qr').screenshot());
    expect(decodeQr(new Uint8ClampedArray(shot.data), shot.width, shot.height)?.data).toBe(created.qrCode);
    await page.screenshot({ path: `${SCREENSHOTS}awaiting.png`, fullPage: true });

    // Marks this document: a reload would lose it.
    await page.evaluate(() => document.body.setAttribute('data-same-document', 'yes'));
    const link = page.getByRole('link', { name: /Scan and pay in the simulator/ });
    expect(await link.getAttribute('href')).toBe(created.qrCode);
    const [simulator] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
    await simulator.getByRole('button', { name: 'Pay' }).click();
    await simulator.locator('#out').filter({ hasText: 'TRADE_SUCCESS' }).waitFor({ timeout: 5_000 });

    await page.locator('main#cashier[data-state="paid"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('[data-show="paid"]').isVisible()).toBe(true);
    expect(await page.locator('img.qr').isVisible()).toBe(false);
    expect(await page.locator('body').getAttribute('data-same-document')).toBe('yes');
    await page.screenshot({ path: `${SCREENSHOTS}paid.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('counts down to the deadline, then shows the order closed', async () => {
    const { created } = await createOrder('expiry');
    const { page, errors } = await openPage(created.cashierUrl);
    expect(await page.locator('main#cashier').getAttribute('data-state')).toBe('awaiting');
    await page.waitForFunction(() => /^0:0\d$/.test(document.getElementById('countdown')!.textContent!), undefined, { timeout: 5_000 });

    await page.locator('main#cashier[data-state="closed"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-show="closed"]').textContent()).toBe('订单已关闭 Closed');
    expect(await page.locator('img.qr').isVisible()).toBe(false);
    await page.screenshot({ path: `${SCREENSHOTS}closed.png`, fullPage: true });
    expect(errors).toEqual([]);
    // Loaded again, the page says the same at once.
    await page.reload();
    expect(await page.locator('main#cashier').getAttribute('data-state')).toBe('closed');
  });
});
