/**
 * Finds (or builds) the Temporal CLI that runs the local dev server.
 *
 * Order: $TEMPORAL_CLI, `temporal` on PATH, the per-user cache, a `go install`
 * into the cache. The cache lives outside the clone so fresh clones and CI
 * checkouts reuse one build. Run directly to resolve/build and print the path:
 *   npx tsx scripts/temporal-cli.ts
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { compareVersions, findOnPath, goBinaryCacheDir, installIntoCache, isExecutableFile } from './go-binaries.js';
import { isMainModule } from '../lib/platform/module-files.js';

export const TEMPORAL_CLI_VERSION = '1.5.1';
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

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

export function cachedTemporalCliPath(): string {
  return path.join(goBinaryCacheDir(), 'temporal');
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

/** `go install` of the CLI's module into the cache. */
async function buildIntoCache(go: string, log: (msg: string) => void): Promise<{ path: string; builtByUs: boolean }> {
  const target = cachedTemporalCliPath();
  const builtByUs = await installIntoCache(
    {
      label: `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
      programs: [{ package: `${TEMPORAL_CLI_MODULE}@v${TEMPORAL_CLI_VERSION}`, builds: 'temporal', installAs: 'temporal' }],
      ldflags: `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
      check: () => checkCachedBinary(target),
      expected: '~3 min',
      lockName: '.temporal-build.lock',
    },
    go,
    log,
  );
  return { path: target, builtByUs };
}

function readCliVersion(binary: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { timeout: 15_000 }, (err, stdout) => {
      // "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"
      resolve(err ? undefined : /version v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1]);
    });
  });
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

if (isMainModule(import.meta.url)) await main();
