// The operators' reconciliation page in a real headless Chromium (Debian's, driven by
// playwright-core) against a whole stack: a past day is reconciled against the simulator's bill
// with one tampered amount; an operator opens the day from the menu and by its date, reads its
// status, totals and the mismatch (linked to the order's timeline), reruns it and sees it come back
// DONE; a day never reconciled says so; the English switch changes the page's words. The page is
// shot in zh-CN and in English into test-artifacts/console/.
import { existsSync, mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsoleUser } from '../lib/console/users.js';
import { beijingDay, beijingDayStart } from '../lib/payments/reconciliation.js';
import { startStack, type Stack } from './support/stack.js';
import { CHROMIUM, CONSOLE_INDEX, confirmPopup, launchChromium, logIn, openTab, screenshot, SCREENSHOTS, SETTLE_MS, text, type Tab } from './support/console.js';
import { waitFor } from './support/wait.js';

const STEP_TIMEOUT = 180_000;
/** How long a condition in the browser may take: a reconciliation run ending. */
const DAY_MS = 86_400_000;

const operator = { email: 'ops@durapay.example', password: 'console test password 1' };

/** A past Beijing day of the test's own, and the skew that puts Alipay's clock at its noon. */
function pastDay(daysAgo: number) {
  const date = beijingDay(Date.now() - daysAgo * DAY_MS);
  return { date, clockSkewMs: Date.now() - (beijingDayStart(date)! + 12 * 3_600_000) };
}

let stack: Stack;
let browser: Browser;
let base: string;
const day = pastDay(5);
/** A day nothing reconciled. */
const emptyDay = pastDay(40).date;
/** The order whose bill amount differs (¥10.00 here, ¥9.90 in the bill), and a clean one. */
let tampered = '';

async function paidOrder(label: string, amount: string, faults: Record<string, unknown> = {}) {
  const outTradeNo = stack.newOrderNo(label);
  await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { clockSkewMs: day.clockSkewMs, ...faults });
  const created = await stack.createPayment({ outTradeNo, amount, subject: `console reconciliation ${label}` });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(outTradeNo, 'PAID');
  return outTradeNo;
}

beforeAll(async () => {
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run npm run console:build first`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it with apt-get install chromium`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  stack = await startStack({ orderTimeout: '60s', reconciliationBillWait: '300ms', reconciliationBillTries: 3 });
  base = stack.api.url;
  await createConsoleUser(stack.pool, { ...operator, role: 'operator' });

  tampered = await paidOrder('recon-tampered', '10.00', { billAmount: '9.90' });
  await paidOrder('recon-fine', '12.00');
  const started = await stack.ops('POST', '/ops/reconciliations', { date: day.date });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  const done = await waitFor(
    `the reconciliation of ${day.date} to end`,
    async () => {
      const answer = await stack.ops('GET', `/ops/reconciliations/${day.date}`);
      return answer.status === 200 && answer.body.status !== 'RUNNING' ? answer.body : undefined;
    },
    { timeoutMs: SETTLE_MS },
  );
  expect(done).toMatchObject({ status: 'DONE', mismatchCount: 1, mismatches: [{ type: 'amount_mismatch', outTradeNo: tampered }] });

  browser = await launchChromium();
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const status = (page: Page) => page.getByTestId('recon-status');
const mismatchRow = (page: Page) => page.getByTestId('recon-mismatches').locator('tbody tr', { hasText: tampered });

describe("the operators' reconciliation page in Chromium", () => {
  let tab: Tab;

  it('the menu opens yesterday (Beijing time); a day never reconciled says so', async () => {
    tab = await openTab(browser);
    const { page } = tab;
    await logIn(page, base, operator);
    await page.locator('.ant-menu-item', { hasText: '对账' }).click();
    await page.waitForURL('**/console/ops/reconciliations');
    await text(page, '每日对账').waitFor();
    expect(await page.getByTestId('recon-date').locator('input').inputValue()).toBe(beijingDay(Date.now() - DAY_MS));

    await page.goto(`${base}/console/ops/reconciliations?date=${emptyDay}`);
    await page.getByTestId('recon-none').getByText(`${emptyDay} 尚未对账`).waitFor();
    expect(await page.getByTestId('recon-status').count()).toBe(0);
    await text(page, 'English').click();
    await page.getByTestId('recon-none').getByText(`${emptyDay} is not reconciled yet`).waitFor();
    await text(page, '中文').click();
    await page.getByTestId('recon-none').getByText(`${emptyDay} 尚未对账`).waitFor();
  }, STEP_TIMEOUT);

  it("a reconciled day shows DONE, the bill's and durapay's totals, and the mismatch linked to the order's timeline", async () => {
    const { page } = tab;
    await page.goto(`${base}/console/ops/reconciliations?date=${day.date}&appId=${stack.appId}`);
    await status(page).filter({ hasText: '已完成' }).waitFor();
    expect(await status(page).getAttribute('data-status')).toBe('DONE');
    expect(await page.getByTestId('recon-mismatch-count').textContent()).toBe('1');

    const payments = page.getByTestId('recon-totals').locator('tbody tr', { hasText: '支付' });
    expect(await payments.locator('td').allTextContents()).toEqual(['支付', '2', '¥21.90', '2', '¥22.00', '否']);
    const refunds = page.getByTestId('recon-totals').locator('tbody tr', { hasText: '退款' });
    expect(await refunds.locator('td').allTextContents()).toEqual(['退款', '0', '¥0.00', '0', '¥0.00', '是']);

    const found = mismatchRow(page);
    await found.filter({ hasText: '金额不符' }).filter({ hasText: '¥10.00' }).filter({ hasText: '¥9.90' }).waitFor();
    expect(await page.getByTestId('recon-mismatches').locator('tbody tr').count()).toBe(1);
    const paymentId = `payment:${stack.appId}:${stack.alipayNo(tampered)}`;
    const link = found.getByTestId('recon-timeline-link');
    expect(await link.getAttribute('href')).toBe(`/console/ops/timeline/${encodeURIComponent(paymentId)}`);

    // The same page in English: other words, the same money.
    await screenshot(page, 'reconciliations.zh-CN.png');
    await text(page, 'English').click();
    await text(page, 'Daily reconciliation').waitFor();
    await status(page).filter({ hasText: 'Done' }).waitFor();
    await found.filter({ hasText: 'Amounts differ' }).filter({ hasText: '¥10.00' }).filter({ hasText: '¥9.90' }).waitFor();
    await page.getByTestId('recon-totals').locator('tbody tr', { hasText: 'Payments' }).filter({ hasText: '¥21.90' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
    await screenshot(page, 'reconciliations.en.png');
    await text(page, '中文').click();
    await text(page, '每日对账').waitFor();

    // The order number opens the order's timeline, where the finding is.
    await link.click();
    await page.waitForURL(`**/console/ops/timeline/${encodeURIComponent(paymentId)}`);
    await page.getByTestId('timeline-entries').getByText(`amount_mismatch in the bill of ${day.date}`).first().waitFor();
  }, STEP_TIMEOUT);

  it('rerun asks first, posts the day with the CSRF token, shows progress and comes back DONE', async () => {
    const { page } = tab;
    await page.goto(`${base}/console/ops/reconciliations?date=${day.date}&appId=${stack.appId}`);
    await status(page).filter({ hasText: '已完成' }).waitFor();
    const before = await page.getByTestId('recon-started').getAttribute('data-at');
    expect(before).toMatch(/^\d{4}-\d{2}-\d{2}T/);

    const posted = page.waitForRequest((req) => req.method() === 'POST' && new URL(req.url()).pathname === '/console/api/ops/reconciliations');
    await page.getByTestId('recon-rerun').click();
    await confirmPopup(page, '重新对账');
    const request = await posted;
    expect(request.postDataJSON()).toEqual({ date: day.date, rerun: true, appId: stack.appId });
    expect(request.headers()['x-csrf-token']).toBeTruthy();
    await page.getByTestId('recon-progress').waitFor();

    // Followed until it ends: a new run, DONE, the same mismatch.
    await expect
      .poll(async () => `${await status(page).getAttribute('data-status')} ${(await page.getByTestId('recon-started').getAttribute('data-at')) !== before}`, {
        timeout: SETTLE_MS,
      })
      .toBe('DONE true');
    await page.getByTestId('recon-progress').waitFor({ state: 'detached' });
    await mismatchRow(page).filter({ hasText: '金额不符' }).waitFor();
    const rerun = await stack.ops('GET', `/ops/reconciliations/${day.date}`);
    expect(rerun.body).toMatchObject({ status: 'DONE', mismatchCount: 1, startedAt: await page.getByTestId('recon-started').getAttribute('data-at') });
    expect(tab.errors).toEqual([]);
    await tab.context.close();
  }, STEP_TIMEOUT);
});
