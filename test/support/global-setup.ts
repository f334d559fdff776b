// One Temporal dev server, one PostgreSQL cluster and one workflow bundle for the whole run (and the
// Temporal server's build, for the tests on a cluster);
// each test file gets its own database, task queue, Alipay app and simulator on top.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../scripts/embedded/postgres.js';
import { startTemporalDevServer } from '../../scripts/embedded/temporal.js';
import { resolveTemporalServer } from '../../scripts/embedded/temporal-cluster.js';
import { resolveTemporalUi } from '../../scripts/embedded/temporal-ui.js';
import { resolveHelm } from '../../scripts/helm.js';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from '../../worker/worker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject) {
  const log = (msg: string) => console.log(`[test stack] ${msg}`);
  const [temporal, postgres, bundle] = await Promise.allSettled([
    startTemporalDevServer({ log }),
    startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), 'durapay-test-pg-')), persistent: false, log }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: new DefaultLogger('WARN') }),
  ]);
  if (temporal.status === 'rejected' || postgres.status === 'rejected' || bundle.status === 'rejected') {
    // Stop what did start, and say what did not, once, before any test runs.
    await Promise.allSettled([temporal, postgres].map((part) => (part.status === 'fulfilled' ? part.value.stop() : undefined)));
    const failures = [
      ['the Temporal dev server', temporal],
      ['the embedded PostgreSQL', postgres],
      ['the workflow bundle', bundle],
    ] as const;
    const why = failures
      .filter(([, part]) => part.status === 'rejected')
      .map(([what, part]) => `${what}: ${((part as PromiseRejectedResult).reason as Error)?.message ?? part}`);
    throw new Error(`the shared test stack did not start, so no test ran:\n${why.join('\n')}`);
  }
  // The tests on a Temporal cluster share one build of the server and its UI, and the chart's tests
  // one Helm, made here (minutes on a fresh machine, printed as they go) rather than in a test's time.
  const [server, ui, helm] = await Promise.allSettled([resolveTemporalServer(log), resolveTemporalUi(log), resolveHelm(log)]);
  const buildFailures = ([['the Temporal server', server], ['the Temporal UI', ui], ['Helm', helm]] as const).flatMap(([what, build]) =>
    build.status === 'rejected' ? [`${what}: ${(build.reason as Error)?.message ?? build.reason}`] : [],
  );
  if (buildFailures.length > 0) {
    await Promise.allSettled([temporal.value.stop(), postgres.value.stop()]);
    throw new Error(`the shared test stack did not start, so no test ran:\n${buildFailures.join('\n')}`);
  }
  const bundleDir = mkdtempSync(join(tmpdir(), 'durapay-bundle-'));
  const bundlePath = join(bundleDir, 'workflows.js');
  writeFileSync(bundlePath, bundle.value.code);
  project.provide('temporalAddress', temporal.value.address);
  project.provide('databaseUrl', postgres.value.url);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await Promise.allSettled([temporal.value.stop(), postgres.value.stop()]);
    rmSync(bundleDir, { recursive: true, force: true });
  };
}
