/**
 * The Temporal UI for the Temporal server of TEMPORAL_MODE=cluster: Temporal's own UI server (the
 * one the dev server embeds, assets included), built from its Go module into the cache beside the
 * CLI and run against the cluster's frontend, opening on the durapay namespace.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findFreePorts, retryOnAddressInUse } from '../../lib/platform/free-port.js';
import { findOnPath, goBinaryCacheDir, installIntoCache, isExecutableFile } from '../go-binaries.js';
import { sleep, spawnInOwnGroup } from './temporal.js';

/** The UI the Temporal CLI v1.5.1 embeds. */
export const TEMPORAL_UI_VERSION = '2.42.1';
const UI_MODULE = 'github.com/temporalio/ui-server/v2';
const READY_DEADLINE_MS = 30_000;
const POLL_MS = 200;

/** The UI server from the cache, built there first if need be (Go required). */
export async function resolveTemporalUi(log: (msg: string) => void): Promise<string> {
  const binary = path.join(goBinaryCacheDir(), `temporal-ui-server-${TEMPORAL_UI_VERSION}`);
  const check = async () => ((await isExecutableFile(binary)) ? undefined : `${binary} is missing`);
  if (!(await check())) return binary;
  const go = await findOnPath('go');
  if (!go) throw new Error(`the Temporal UI ${TEMPORAL_UI_VERSION} is built from its Go module, and \`go\` is not on PATH: install Go 1.25 or later (https://go.dev/dl/)`);
  await installIntoCache(
    {
      label: `the Temporal UI ${TEMPORAL_UI_VERSION}`,
      programs: [{ package: `${UI_MODULE}/cmd/server@v${TEMPORAL_UI_VERSION}`, builds: 'server', installAs: path.basename(binary) }],
      ldflags: '-s -w',
      check,
      expected: '~2 min',
      lockName: '.temporal-ui-build.lock',
    },
    go,
    log,
  );
  return binary;
}

export interface TemporalUi {
  url: string;
  stop(): Promise<void>;
}

export interface TemporalUiOptions {
  /** The frontend's host:port. */
  temporalAddress: string;
  namespace: string;
  /** Where its configuration is written (a folder of its own). */
  dir: string;
  /** 0/undefined: a free port. */
  port?: number;
  log?: (msg: string) => void;
}

export async function startTemporalUi(opts: TemporalUiOptions): Promise<TemporalUi> {
  const log = opts.log ?? (() => {});
  const binary = await resolveTemporalUi(log);
  return retryOnAddressInUse(async () => {
    const port = opts.port || (await findFreePorts(1))[0]!;
    const configDir = path.join(opts.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    // Loopback only, like the dev server's UI: it can start, signal and terminate workflows.
    writeFileSync(
      path.join(configDir, 'development.yaml'),
      [
        `temporalGrpcAddress: ${opts.temporalAddress}`,
        'host: 127.0.0.1',
        `port: ${port}`,
        'enableUi: true',
        `defaultNamespace: ${opts.namespace}`,
        'notifyOnNewVersion: false',
        'cors:',
        '  cookieInsecure: true',
        '',
      ].join('\n'),
    );
    const server = spawnInOwnGroup(binary, ['--root', opts.dir, '--config', 'config', '--env', 'development', 'start']);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + READY_DEADLINE_MS;
    for (;;) {
      if (server.exited()) throw new Error(`the Temporal UI exited during startup. Output:\n${server.outputTail()}`);
      const answered = await fetch(`${url}/api/v1/settings`, { signal: AbortSignal.timeout(2_000) }).then((res) => res.ok, () => false);
      if (answered) break;
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`the Temporal UI did not answer at ${url} within ${READY_DEADLINE_MS / 1000} s. Output:\n${server.outputTail()}`);
      }
      await sleep(POLL_MS);
    }
    log(`Temporal UI ${TEMPORAL_UI_VERSION} ready at ${url}`);
    return { url, stop: server.stop };
  }, log);
}
