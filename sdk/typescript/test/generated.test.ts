// src/schema.ts is what the generator writes from sdk/openapi.json, untouched.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const SDK = fileURLToPath(new URL('..', import.meta.url));

it('src/schema.ts is generated from sdk/openapi.json and up to date', () => {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-sdk-ts-'));
  try {
    const out = join(dir, 'schema.ts');
    // The generate script itself, as `npm run sdk:generate:typescript` runs it.
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const run = spawnSync(process.execPath, [tsx, join(SDK, 'scripts/generate.ts'), out], { cwd: SDK, encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(join(SDK, 'src/schema.ts'), 'utf8'), 'sdk/typescript/src/schema.ts is stale: run npm run sdk:generate:typescript').toBe(
      readFileSync(out, 'utf8'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
