// The web console's pages under /console: the files `npm run console:build` writes to console/dist
// (dist/console/dist in a compiled build: `npm run build` puts them there), the single page's index.html for any
// path without a file extension, hashed assets cached for a year. Its API is api/console.ts.
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler, type Response } from 'express';
import { runsCompiled } from '../lib/platform/module-files.js';

/** console/dist beside api/ (from the sources), or beside dist/api/ (compiled), where `npm run build` puts it. */
export const CONSOLE_DIST = fileURLToPath(new URL('../console/dist', import.meta.url));
/** A compiled build run from the repository, its console built where the sources keep it. */
const SOURCE_CONSOLE_DIST = fileURLToPath(new URL('../../console/dist', import.meta.url));

export const CONSOLE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
const ONE_YEAR = 'public, max-age=31536000, immutable';

function htmlHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CONSOLE_CSP,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
  });
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>durapay console</title></head>
<body><h1>The console is not built</h1>
<p>Run <code>npm run console:build</code>, then reload this page.</p></body></html>
`;

export function consolePages(given?: string): RequestHandler {
  const root =
    given ?? (runsCompiled(import.meta.url) && !existsSync(join(CONSOLE_DIST, 'index.html')) && existsSync(join(SOURCE_CONSOLE_DIST, 'index.html')) ? SOURCE_CONSOLE_DIST : CONSOLE_DIST);
  const files = express.static(root, {
    index: false,
    redirect: false,
    fallthrough: true,
    setHeaders: (res, path) => {
      res.set('X-Content-Type-Options', 'nosniff');
      if (path.endsWith('.html')) htmlHeaders(res);
      else if (path.startsWith(join(root, 'assets'))) res.set('Cache-Control', ONE_YEAR);
      else res.set('Cache-Control', 'no-cache');
    },
  });
  return (req, res, next) => {
    // The console's API is api/console.ts; what it does not serve is a JSON 404, not a page.
    if ((req.method !== 'GET' && req.method !== 'HEAD') || /^\/api(\/|$)/i.test(req.path)) return next();
    const index = join(root, 'index.html');
    if (!existsSync(index)) {
      htmlHeaders(res);
      res.status(503).type('html').set('Cache-Control', 'no-store').send(NOT_BUILT);
      return;
    }
    files(req, res, (err?: unknown) => {
      if (err) return next(err);
      // A file that is not there (an old asset, a typo) is a 404; any other path is a page of the app.
      if (extname(req.path)) return next();
      htmlHeaders(res);
      res.type('html').send(readFileSync(index));
    });
  };
}
