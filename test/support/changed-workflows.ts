// A build whose payment workflow is changed in a way that cannot replay the current build's runs:
// a QR order sleeps a millisecond before it is opened, so its first command is a timer where the
// current build's runs recorded the order opening (its handlers are in place before, as they must be). For the tests that show a changed workflow
// never meets the current build's runs (the rollout) and that the replay check catches such a change.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundle } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from '../../worker/worker.js';

const ANCHOR = 'const timeExpire = formatBeijingTime(deadline);';

export async function bundleChangedWorkflows(): Promise<WorkflowBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-changed-workflows-'));
  const loader = join(dir, 'insert-timer.cjs');
  // A webpack loader: the source file stays as it is; only this bundle sees the change.
  writeFileSync(
    loader,
    `module.exports = function (source) {
  const anchor = ${JSON.stringify(ANCHOR)};
  if (!source.includes(anchor)) throw new Error('workflows/payment.ts no longer has: ' + anchor);
  return source.replace(anchor, anchor + ' await sleep(1);');
};\n`,
  );
  try {
    return await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      logger: new DefaultLogger('WARN'),
      webpackConfigHook: (config) => {
        config.module?.rules?.unshift({ test: /workflows[\\/]payment\.ts$/, enforce: 'pre', use: [{ loader }] });
        return config;
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
