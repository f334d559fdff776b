/**
 * Go programs the project builds from their official modules into the per-user cache (outside
 * the clone, so fresh clones and CI checkouts reuse one build): the Temporal CLI, the Temporal
 * server and its SQL schema tool. `go install` goes into a private GOBIN and the binaries are
 * renamed into place (atomic on one filesystem: a killed build never leaves half a binary); a
 * lock file serialises concurrent builders (parallel test workers), and whoever waited re-checks.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const BUILD_PROGRESS_INTERVAL_MS = 30_000;
/** A cold build takes minutes; a lock older than this is from a dead build. */
const STALE_LOCK_MS = 30 * 60_000;
const LOCK_POLL_MS = 1_000;

export function goBinaryCacheDir(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'durapay', 'bin');
}

export interface GoInstall {
  /** For people: what is being built. */
  label: string;
  /** `module/path/cmd@vX.Y.Z` for each program, and the name it gets in the cache. */
  programs: { package: string; builds: string; installAs: string }[];
  ldflags?: string;
  /** Undefined when what is in the cache is usable, else why not. */
  check(): Promise<string | undefined>;
  /** How long a cold build takes, for the first log line. */
  expected: string;
  /** The lock's name in the cache dir. */
  lockName: string;
}

/** Builds the programs into the cache unless they are there and pass `check`; true when this call built them. */
export async function installIntoCache(install: GoInstall, go: string, log: (msg: string) => void): Promise<boolean> {
  const binDir = goBinaryCacheDir();
  await fs.mkdir(binDir, { recursive: true });
  const lockFile = path.join(binDir, install.lockName);
  for (;;) {
    const release = await tryLock(lockFile);
    if (!release) {
      log(`another process is building ${install.label} (lock ${lockFile}); waiting`);
      await waitForLockRelease(lockFile);
      continue;
    }
    try {
      // The lock holder may have finished while we were waiting for the lock.
      if (!(await install.check())) return false;
      await removeLeftoverBuildDirs(binDir);
      const buildDir = await fs.mkdtemp(path.join(binDir, '.build-'));
      try {
        log(`building ${install.label} from its Go module into ${binDir}, ${install.expected} on a cold cache`);
        await runGoInstall(go, buildDir, install, log);
        for (const program of install.programs) {
          await fs.rename(path.join(buildDir, program.builds), path.join(binDir, program.installAs));
        }
        const problem = await install.check();
        if (problem) throw new Error(`go install built ${install.label}, but: ${problem}`);
        log(`built ${install.programs.map((p) => path.join(binDir, p.installAs)).join(', ')}`);
        return true;
      } finally {
        await fs.rm(buildDir, { recursive: true, force: true });
      }
    } finally {
      await release();
    }
  }
}

function runGoInstall(go: string, gobin: string, install: GoInstall, log: (msg: string) => void): Promise<void> {
  const args = ['install', ...(install.ldflags ? ['-ldflags', install.ldflags] : []), ...install.programs.map((p) => p.package)];
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
      log(`still building ${install.label} (${Math.round((Date.now() - started) / 1000)} s)`);
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

export async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

export async function isExecutableFile(file: string): Promise<boolean> {
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

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
