// `npm run build:workflows [-- <file>]`: the workflow bundle, built beforehand, for a worker started
// with WORKFLOW_BUNDLE=<file> (default dist/workflow-bundle.js); build it again with every change
// to workflows/ (a deploy), or the worker runs the old workflow code. Without WORKFLOW_BUNDLE the
// worker runs this itself at start, in a short-lived process of its own: webpack's memory (about
// 120 MB) goes away with that process instead of staying in the worker.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './worker.js';

const out = resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: new DefaultLogger('WARN') });
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, code);
console.log(`workflow bundle written to ${out} (${(code.length / 2 ** 20).toFixed(1)} MiB); start the worker with WORKFLOW_BUNDLE=${out}`);
