// What npm publishes: the package's fields, and dist/ as `npm run build` makes it, imported by the
// package's name through its `exports` in plain Node (no TypeScript loader).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SDK = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

describe('the published package', () => {
  it('is public, ESM, with typed exports, its files and exactly pinned dependencies', () => {
    expect(pkg).toMatchObject({ name: '@durapay/sdk', version: '0.1.0', license: 'MIT', type: 'module' });
    expect(pkg.private).toBeUndefined();
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE']));
    expect(pkg.scripts.build).toContain('tsc -p tsconfig.build.json');
    expect(pkg.scripts.prepublishOnly).toContain('npm run build');
    expect(Object.keys(pkg.dependencies)).toEqual(['openapi-fetch']);
    expect(pkg.devDependencies['openapi-typescript']).toBeDefined();
    for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('builds to dist/ and works when imported by its name in plain Node', { timeout: 120_000 }, () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const build = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: SDK, encoding: 'utf8', timeout: 110_000 });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const script = `
      import { readFileSync } from 'node:fs';
      import * as sdk from '@durapay/sdk';
      const vectors = JSON.parse(readFileSync('../signing-vectors.json', 'utf8'));
      const r = vectors.requests[0];
      const w = vectors.webhooks.find((v) => v.valid);
      const client = new sdk.Durapay({ apiUrl: 'http://x.test', merchantId: 'mtest00001', secret: 's' });
      console.log(JSON.stringify({
        exports: Object.keys(sdk).sort(),
        signed: sdk.requestSignature(r.secret, r) === r.signature,
        verified: sdk.verifyWebhook(w.secret, w.body, w.header, { now: w.now * 1000 }).id,
        client: typeof client.payments.create,
      }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: SDK, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ signed: true, verified: expect.stringMatching(/^evt_/), client: 'function' });
    expect(out.exports).toEqual(expect.arrayContaining(['Durapay', 'verifyWebhook', 'WebhookSignatureError', 'DurapayError', 'NotFoundError', 'RateLimitError']));
  });
});
