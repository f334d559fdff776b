// Migrations are a step of their own (`npm run migrate`): the API and the worker refuse to start
// on a schema behind their build, saying what to run, and start once it has run.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createPool, pendingMigrations } from '../lib/platform/database.js';
import { createDatabase, startStack, type Stack } from './support/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** `npm run migrate`, as a process with `env`: its exit code and output. */
function runMigrate(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

async function pendingIn(databaseUrl: string): Promise<string[]> {
  const pool = createPool(databaseUrl, { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 }, 1);
  try {
    return await pendingMigrations(pool);
  } finally {
    await pool.end();
  }
}

describe('npm run migrate', () => {
  it('is the step the API and the worker wait for: they refuse an unmigrated database, and start once it ran', async () => {
    const fresh = await createDatabase(inject('databaseUrl'));
    const engineEnv = { ...process.env, ...stack.engineEnv(), DATABASE_URL: fresh, LOG_LEVEL: 'info' };
    const allMigrations = await pendingIn(fresh);
    expect(allMigrations[0]).toBe('001_payments');
    expect(allMigrations.length).toBeGreaterThanOrEqual(12);

    const refusals = await Promise.allSettled([stack.spawnApiProcess({ DATABASE_URL: fresh }), stack.spawnWorkerProcess({ DATABASE_URL: fresh })]);
    for (const refusal of refusals) {
      expect(refusal.status).toBe('rejected');
      const message = String((refusal as PromiseRejectedResult).reason);
      expect(message).toMatch(/exited while starting/);
      expect(message).toMatch(/database schema is behind this build: \d+ migration\(s\) not applied \(001_payments, /);
      expect(message).toMatch(/run `npm run migrate`/);
    }
    // A refusal changes nothing: no table was made, not even node-pg-migrate's own.
    expect(await pendingIn(fresh)).toEqual(allMigrations);

    const withoutKey = await runMigrate({ ...engineEnv, DURAPAY_MASTER_KEY: '', DURAPAY_API_KEYS: '' });
    expect(withoutKey.code).toBe(1);
    expect(withoutKey.output).toMatch(/DURAPAY_MASTER_KEY: required .*migrate seals the merchants' secrets/);
    expect(await pendingIn(fresh)).toEqual(allMigrations);

    const migrated = await runMigrate(engineEnv);
    expect(migrated.code, migrated.output).toBe(0);
    expect(migrated.output).toMatch(/database schema is current/);
    expect(await pendingIn(fresh)).toEqual([]);
    // Run again: nothing to do, still a success.
    expect((await runMigrate(engineEnv)).code).toBe(0);

    const api = await stack.spawnApiProcess({ DATABASE_URL: fresh });
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    const worker = await stack.spawnWorkerProcess({ DATABASE_URL: fresh });
    await Promise.all([api.stop(), worker.stop()]);
  });

  it('a schema newer than the build is accepted: an older build still draining runs beside a newer one', async () => {
    const pool = createPool(stack.config.databaseUrl, { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 }, 1);
    try {
      await pool.query("INSERT INTO schema_migrations (name, run_on) VALUES ('999_from_a_newer_build', now())");
      expect(await pendingMigrations(pool)).toEqual([]);
    } finally {
      await pool.end();
    }
    const api = await stack.spawnApiProcess();
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    await api.stop();
  });
});
