/**
 * Finds (or builds) the Temporal CLI that runs the local dev server.
 *
 * Order: $TEMPORAL_CLI, `temporal` on PATH, the per-user cache, a `go install`
 * into the cache. The cache lives outside the clone so fresh clones and CI
 * checkouts reuse one build. Run directly to resolve/build and print the path:
 *   npx tsx scripts/temporal-cli.ts
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, readFileSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEMPORAL_CLI_VERSION = '1.5.1';
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const BUILD_PROGRESS_INTERVAL_MS = 30_000;
/** A cold `go install` takes ~3 min; a lock older than this is from a dead build. */
const STALE_LOCK_MS = 30 * 60_000;
const LOCK_POLL_MS = 1_000;

export type TemporalCliSource = 'TEMPORAL_CLI' | 'PATH' | 'cache' | 'go-install';

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
}

export interface ResolveTemporalCliOptions {
  /** Allow `go install` when nothing else is found (default true). */
  build?: boolean;
  log?: (msg: string) => void;
}

export function temporalCliCacheDir(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'durapay', 'bin');
}

export function cachedTemporalCliPath(): string {
  return path.join(temporalCliCacheDir(), 'temporal');
}

export async function resolveTemporalCli(opts: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli | undefined> {
  return (await searchTemporalCli(opts)).found;
}

/** Same search as resolveTemporalCli, plus a line per step for error messages. */
async function searchTemporalCli(opts: ResolveTemporalCliOptions): Promise<{ found?: ResolvedTemporalCli; tried: string[] }> {
  const log = opts.log ?? (() => {});
  const tried: string[] = [];

  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!(await isExecutableFile(fromEnv))) {
      throw new Error(`TEMPORAL_CLI is set to ${fromEnv}, which is not an executable file. Fix or unset TEMPORAL_CLI.`);
    }
    return { found: { path: fromEnv, source: 'TEMPORAL_CLI' }, tried };
  }
  tried.push('TEMPORAL_CLI: not set');

  const onPath = await findOnPath('temporal');
  if (onPath) return { found: { path: onPath, source: 'PATH' }, tried };
  tried.push('PATH: no `temporal` executable');

  const cached = cachedTemporalCliPath();
  const cacheProblem = await checkCachedBinary(cached);
  if (!cacheProblem) return { found: { path: cached, source: 'cache' }, tried };
  tried.push(`cache: ${cached} (${cacheProblem})`);

  if (opts.build === false) {
    tried.push('go install: skipped (build: false)');
    return { tried };
  }
  const go = await findOnPath('go');
  if (!go) {
    tried.push('go install: `go` is not on PATH');
    return { tried };
  }
  const built = await buildIntoCache(go, log);
  return { found: { path: built.path, source: built.builtByUs ? 'go-install' : 'cache' }, tried };
}

/** Undefined when the cached binary is usable, else why not. */
async function checkCachedBinary(binary: string): Promise<string | undefined> {
  if (!(await isExecutableFile(binary))) return 'missing';
  const version = await readCliVersion(binary);
  if (!version) return '`--version` failed';
  if (compareVersions(version, TEMPORAL_CLI_VERSION) < 0) return `version ${version} is older than ${TEMPORAL_CLI_VERSION}`;
  return undefined;
}

/**
 * `go install` into a private GOBIN inside the cache dir, then rename over the
 * final path: rename is atomic on one filesystem, so a killed build never
 * leaves a half-written binary. A lock file serialises concurrent callers
 * (parallel test workers); whoever waits just re-checks the cache.
 */
async function buildIntoCache(go: string, log: (msg: string) => void): Promise<{ path: string; builtByUs: boolean }> {
  const binDir = temporalCliCacheDir();
  const target = cachedTemporalCliPath();
  await fs.mkdir(binDir, { recursive: true });
  const lockFile = path.join(binDir, '.temporal-build.lock');

  for (;;) {
    const release = await tryLock(lockFile);
    if (!release) {
      log(`another process is building the Temporal CLI (lock ${lockFile}); waiting`);
      await waitForLockRelease(lockFile);
      continue;
    }
    try {
      // The lock holder may have finished while we were waiting for the lock.
      if (!(await checkCachedBinary(target))) return { path: target, builtByUs: false };
      await removeLeftoverBuildDirs(binDir);
      const buildDir = await fs.mkdtemp(path.join(binDir, '.build-'));
      try {
        log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} from its Go module into ${binDir}, ~3 min on a cold cache`);
        await runGoInstall(go, buildDir, log);
        const version = await readCliVersion(path.join(buildDir, 'temporal'));
        if (!version || compareVersions(version, TEMPORAL_CLI_VERSION) < 0) {
          throw new Error(`go install produced a Temporal CLI reporting version ${version ?? '(none)'}`);
        }
        await fs.rename(path.join(buildDir, 'temporal'), target);
        log(`built ${target}`);
        return { path: target, builtByUs: true };
      } finally {
        await fs.rm(buildDir, { recursive: true, force: true });
      }
    } finally {
      await release();
    }
  }
}

function runGoInstall(go: string, gobin: string, log: (msg: string) => void): Promise<void> {
  const args = [
    'install',
    '-ldflags',
    `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
    `${TEMPORAL_CLI_MODULE}@v${TEMPORAL_CLI_VERSION}`,
  ];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(go, args, {
      env: { ...process.env, CGO_ENABLED: '0', GOBIN: gobin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const progress = setInterval(() => {
      log(`still building the Temporal CLI (${Math.round((Date.now() - started) / 1000)} s)`);
    }, BUILD_PROGRESS_INTERVAL_MS);
    child.once('error', (err) => {
      clearInterval(progress);
      reject(new Error(`could not run ${go}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearInterval(progress);
      if (code === 0) resolve();
      else reject(new Error(`go ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** Creates the lock file exclusively; returns its release function, or undefined if held by a live process. */
async function tryLock(lockFile: string): Promise<(() => Promise<void>) | undefined> {
  try {
    await fs.writeFile(lockFile, String(process.pid), { flag: 'wx' });
    return () => fs.rm(lockFile, { force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (await isLockStale(lockFile)) {
    await fs.rm(lockFile, { force: true });
    return tryLock(lockFile);
  }
  return undefined;
}

async function isLockStale(lockFile: string): Promise<boolean> {
  try {
    const [content, stat] = await Promise.all([fs.readFile(lockFile, 'utf8'), fs.stat(lockFile)]);
    const pid = Number.parseInt(content, 10);
    return !Number.isInteger(pid) || !isProcessAlive(pid) || Date.now() - stat.mtimeMs > STALE_LOCK_MS;
  } catch {
    return false; // vanished or half-written: the retry loop sorts it out
  }
}

async function waitForLockRelease(lockFile: string): Promise<void> {
  while ((await pathExists(lockFile)) && !(await isLockStale(lockFile))) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

/** Build dirs of killed builds; only called while holding the lock. */
async function removeLeftoverBuildDirs(binDir: string): Promise<void> {
  for (const entry of await fs.readdir(binDir)) {
    if (entry.startsWith('.build-')) await fs.rm(path.join(binDir, entry), { recursive: true, force: true });
  }
}

function readCliVersion(binary: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { timeout: 15_000 }, (err, stdout) => {
      // "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"
      resolve(err ? undefined : /version v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1]);
    });
  });
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function pathExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed builder whose parent has not reaped it yet is a zombie: dead for our purposes.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

async function main(): Promise<void> {
  const log = (msg: string) => console.error(`[temporal-cli] ${msg}`);
  try {
    const { found, tried } = await searchTemporalCli({ log });
    if (found) {
      console.log(found.path);
      return;
    }
    console.error(
      [
        `No Temporal CLI (>= ${TEMPORAL_CLI_VERSION}) found. Tried:`,
        ...tried.map((step) => `  - ${step}`),
        'Fix one of:',
        '  - install the Temporal CLI (https://docs.temporal.io/cli#install) and put `temporal` on PATH,',
        '  - or set TEMPORAL_CLI=/path/to/temporal,',
        '  - or install Go (https://go.dev/dl/) and rerun `npm run temporal-cli` to build it into the cache.',
        'Without it, the dev server falls back to @temporalio/testing, which downloads the CLI (needs internet).',
      ].join('\n'),
    );
  } catch (err) {
    console.error(`[temporal-cli] ${(err as Error).message}`);
  }
  process.exitCode = 1;
}

function isMainModule(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMainModule()) await main();
