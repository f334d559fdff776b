// One Temporal dev server, one PostgreSQL cluster and one workflow bundle for the whole run;
// each test file gets its own database, task queue, Alipay app and simulator on top.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../scripts/embedded/postgres.js';
import { startTemporalDevServer } from '../../scripts/embedded/temporal.js';
import { WORKFLOWS_PATH } from '../../worker/worker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject) {
  const log = (msg: string) => console.log(`[test stack] ${msg}`);
  const [temporal, postgres, bundle] = await Promise.all([
    startTemporalDevServer({ log }),
    startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), 'durapay-test-pg-')), persistent: false, log }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
  ]);
  const bundleDir = mkdtempSync(join(tmpdir(), 'durapay-bundle-'));
  const bundlePath = join(bundleDir, 'workflows.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', temporal.address);
  project.provide('databaseUrl', postgres.url);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await Promise.allSettled([temporal.stop(), postgres.stop()]);
    rmSync(bundleDir, { recursive: true, force: true });
  };
}
