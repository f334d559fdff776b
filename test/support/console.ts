// The web console's browser tests: Debian's Chromium through playwright-core, a tab that keeps the
// page's errors, logging in through the console's own form, screenshots and antd's Popconfirm.
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const CONSOLE_INDEX = fileURLToPath(new URL('../../console/dist/index.html', import.meta.url));
export const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
/** How long the console may take to show what a step changed. */
export const SETTLE_MS = 30_000;

export const CHROMIUM = '/usr/bin/chromium';

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Page errors and console errors (a refused script or style among them); a 4xx the console
   *  expects is logged by Chromium as a failed resource, and is left out. */
  errors: string[];
}

export async function openTab(browser: Browser): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  page.setDefaultTimeout(SETTLE_MS);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, errors };
}

/** Opens `path` of the API at `base`, is sent to the login page, and logs in as `who`. */
export async function logIn(page: Page, base: string, who: { email: string; password: string }, path = '/console/') {
  await page.goto(`${base}${path}`);
  await page.waitForURL('**/console/login');
  await page.locator('input#email').fill(who.email);
  await page.locator('input#password').fill(who.password);
  await page.locator('button[type=submit]').click();
  await page.waitForURL((url) => !url.pathname.endsWith('/login'));
}

export const text = (page: Page, words: string) => page.getByText(words, { exact: true }).first();

/** A whole-page screenshot, without the toasts of the last action. */
export const screenshot = (page: Page, file: string) =>
  page.screenshot({ path: `${SCREENSHOTS}${file}`, fullPage: true, style: '.ant-message { display: none !important; }' });

/** Clicks `label` in the open Popconfirm once its opening animation is over: a click while it
 *  still zooms in is taken by antd as a click outside it, which closes it. */
export async function confirmPopup(page: Page, label: string) {
  const popup = page.locator('.ant-popconfirm:not(.ant-popover-hidden)');
  await popup.waitFor();
  await expect.poll(() => popup.evaluate((el) => el.getAnimations({ subtree: true }).length), { timeout: SETTLE_MS }).toBe(0);
  await popup.getByRole('button', { name: label }).click();
}
