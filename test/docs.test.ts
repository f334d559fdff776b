// The docs: the reference pages the code writes are not stale, Chinese covers every page of start
// and integrate, the README stays short and its links land, and the site builds with no dead link
// (VitePress refuses to build with one).
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { copySwaggerUi, DOCS_DIR, referencePages } from '../scripts/docs-reference.js';
import { waitFor } from './support/wait.js';

const CHROMIUM = '/usr/bin/chromium';

const ROOT = join(DOCS_DIR, '..');

/** Markdown pages under a folder of docs/, as paths relative to it. */
function pages(folder: string): string[] {
  const dir = join(DOCS_DIR, folder);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => file.split('\\').join('/'))
    .sort();
}

describe('the docs', () => {
  it('reference pages written from the code are up to date (npm run docs:reference writes them)', () => {
    for (const [path, content] of Object.entries(referencePages())) {
      const file = join(DOCS_DIR, path);
      expect(existsSync(file), `docs/${path} exists`).toBe(true);
      expect(readFileSync(file, 'utf8') === content, `docs/${path} is stale: run npm run docs:reference`).toBe(true);
    }
  });

  it('has every page of start and integrate in English and in Chinese', () => {
    for (const section of ['start', 'integrate']) {
      const english = pages(section);
      expect(english.length, section).toBeGreaterThan(2);
      expect(pages(`zh/${section}`), `docs/zh/${section}`).toEqual(english);
    }
  });

  it('keeps the README at most 10 KB, in English and Chinese, every link to a file that exists', () => {
    for (const name of ['README.md', 'README.zh-CN.md']) {
      const file = join(ROOT, name);
      expect(statSync(file).size, name).toBeLessThanOrEqual(10 * 1024);
      const text = readFileSync(file, 'utf8');
      const links = [...text.matchAll(/\]\((?!https?:|#|mailto:)([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!);
      expect(links.length, `${name} links into the docs`).toBeGreaterThan(5);
      for (const link of links) expect(existsSync(join(ROOT, decodeURIComponent(link))), `${name} → ${link}`).toBe(true);
    }
  });

  it('builds the site with no dead link, a page for every Markdown file in both languages', () => {
    for (const page of pages('')) {
      expect(existsSync(join(builtSite(), page.replace(/\.md$/, '.html'))), `docs/${page} built`).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(builtSite(), 'openapi.json'), 'utf8')).openapi).toBe('3.1.0');
  }, 360_000);

  it.skipIf(!existsSync(CHROMIUM))("renders every operation of the API's document on the API page, from the site alone", async () => {
    const site = builtSite();
    const server = await serveStatic(site);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const base = server.url;
      const page = await browser.newPage();
      const elsewhere: string[] = [];
      page.on('request', (request) => {
        if (!request.url().startsWith(base) && !request.url().startsWith('data:')) elsewhere.push(request.url());
      });
      await page.goto(`${base}/reference/api`);
      const operations = Object.values<Record<string, unknown>>(referenceDocument().paths).reduce((n, item) => n + Object.keys(item).length, 0);
      await waitFor('Swagger UI to list every operation', async () => (await page.locator('.swagger-ui .opblock').count()) === operations || undefined, {
        timeoutMs: 60_000,
      });
      expect(elsewhere).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 120_000);
});

/** The built site over HTTP, as a static host serves it (clean URLs: /reference/api is reference/api.html). */
async function serveStatic(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.woff2': 'font/woff2' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const candidates = [path, `${path}.html`, join(path, 'index.html')].map((p) => join(root, p)).filter((file) => file.startsWith(root));
    const file = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let built: string | undefined;
/** The site, built once for this file (with the API page's Swagger UI assets), in a temp folder. */
function builtSite(): string {
  if (built) return built;
  copySwaggerUi();
  const outDir = mkdtempSync(join(tmpdir(), 'durapay-docs-'));
  const build = spawnSync(join(ROOT, 'node_modules', '.bin', 'vitepress'), ['build', 'docs', '--outDir', outDir], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
  built = outDir;
  return built;
}
afterAll(() => {
  if (built) rmSync(built, { recursive: true, force: true });
});

const referenceDocument = () => JSON.parse(referencePages()['public/openapi.json']!) as { paths: Record<string, Record<string, unknown>> };
