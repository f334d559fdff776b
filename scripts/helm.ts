/**
 * Finds (or builds) the Helm 4 CLI that lints and renders the chart in deploy/helm/durapay.
 *
 * Order: `helm` on PATH when it is Helm 4, the per-user cache (`~/.cache/durapay/bin/helm`, beside
 * the Temporal CLI), a `go install` of Helm's official module `helm.sh/helm/v4/cmd/helm` into the
 * cache (Go 1.26 or later; minutes on a cold Go cache). Run directly to resolve/build and print the
 * path:
 *   npx tsx scripts/helm.ts
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { compareVersions, findOnPath, goBinaryCacheDir, installIntoCache, isExecutableFile } from './go-binaries.js';
import { isMainModule } from '../lib/platform/module-files.js';

export const HELM_VERSION = '4.3.2';
const HELM_MODULE = 'helm.sh/helm/v4/cmd/helm';
/** Helm 4.3's go.mod says `go 1.26.0`. */
const GO_REQUIRED = '1.26.0';

export type HelmSource = 'PATH' | 'cache' | 'go-install';

export interface ResolvedHelm {
  path: string;
  source: HelmSource;
  version: string;
}

export interface ResolveHelmOptions {
  /** Allow `go install` when nothing else is found (default true). */
  build?: boolean;
}

export function cachedHelmPath(): string {
  return path.join(goBinaryCacheDir(), 'helm');
}

/** A Helm 4 on PATH, else the cached build, built there first if need be (Go required). */
export async function resolveHelm(log: (msg: string) => void = () => {}, opts: ResolveHelmOptions = {}): Promise<ResolvedHelm> {
  const tried: string[] = [];
  const onPath = await findOnPath('helm');
  if (onPath) {
    const version = await readHelmVersion(onPath);
    if (version && version.startsWith('4.')) return { path: onPath, source: 'PATH', version };
    tried.push(`PATH: ${onPath} is ${version ? `Helm ${version}` : 'a helm whose `helm version` failed'}, not Helm 4`);
  } else {
    tried.push('PATH: no `helm` executable');
  }

  const cached = cachedHelmPath();
  const cacheProblem = await checkCachedHelm(cached);
  if (!cacheProblem) return { path: cached, source: 'cache', version: HELM_VERSION };
  tried.push(`cache: ${cached} (${cacheProblem})`);

  const why = () => `No Helm 4 found. Tried:\n${tried.map((step) => `  - ${step}`).join('\n')}`;
  if (opts.build === false) throw new Error(`${why()}\n  - go install: skipped (build: false)`);
  const go = await findOnPath('go');
  if (!go) {
    throw new Error(
      `${why()}\n  - go install: \`go\` is not on PATH.\nInstall Helm 4 (https://helm.sh/docs/intro/install/) and put \`helm\` on PATH, or install Go ${GO_REQUIRED} or later (https://go.dev/dl/) to build it into the cache.`,
    );
  }
  // An older Go fetches a newer toolchain by itself (as a module) unless GOTOOLCHAIN=local forbids it.
  const { version: goVersion, toolchain } = await readGoEnv(go);
  if (goVersion && compareVersions(goVersion, GO_REQUIRED) < 0 && toolchain.startsWith('local')) {
    throw new Error(
      `${why()}\n  - go install: Helm ${HELM_VERSION} needs Go ${GO_REQUIRED} or later, and ${go} is Go ${goVersion} with GOTOOLCHAIN=local (unset it, or install a newer Go)`,
    );
  }
  const builtByUs = await installIntoCache(
    {
      label: `Helm ${HELM_VERSION}`,
      programs: [{ package: `${HELM_MODULE}@v${HELM_VERSION}`, builds: 'helm', installAs: 'helm' }],
      // As Helm's own Makefile does: without it `helm version` says only "v4.3".
      ldflags: `-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}`,
      check: () => checkCachedHelm(cached),
      expected: '~7 min',
      lockName: '.helm-build.lock',
    },
    go,
    log,
  );
  return { path: cached, source: builtByUs ? 'go-install' : 'cache', version: HELM_VERSION };
}

/** Undefined when the cached binary is usable, else why not. */
async function checkCachedHelm(binary: string): Promise<string | undefined> {
  if (!(await isExecutableFile(binary))) return 'missing';
  const version = await readHelmVersion(binary);
  if (!version) return '`helm version` failed';
  if (version !== HELM_VERSION) return `version ${version}, not ${HELM_VERSION}`;
  return undefined;
}

/** "4.3.2" from `helm version --template {{.Version}}` ("v4.3.2"); undefined when it fails. */
function readHelmVersion(binary: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(binary, ['version', '--template', '{{.Version}}'], { timeout: 15_000 }, (err, stdout) => {
      resolve(err ? undefined : /^v?(\d+\.\d+(?:\.\d+)?)/.exec(stdout.trim())?.[1]);
    });
  });
}

function readGoEnv(go: string): Promise<{ version?: string; toolchain: string }> {
  return new Promise((resolve) => {
    execFile(go, ['env', 'GOVERSION', 'GOTOOLCHAIN'], { timeout: 15_000 }, (err, stdout) => {
      const [goVersion = '', toolchain = ''] = err ? [] : stdout.trim().split('\n');
      resolve({ version: /^go(\d+\.\d+(?:\.\d+)?)/.exec(goVersion.trim())?.[1], toolchain: toolchain.trim() });
    });
  });
}

async function main(): Promise<void> {
  try {
    const helm = await resolveHelm((msg) => console.error(`[helm] ${msg}`));
    console.log(helm.path);
  } catch (err) {
    console.error(`[helm] ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

if (isMainModule(import.meta.url)) await main();
