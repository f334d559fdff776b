// Bundles the workflow code into the file named on the command line. The worker runs this in a
// short-lived process of its own: webpack's memory goes away with it instead of staying in the
// worker for good (about 100 MB here).
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { WORKFLOWS_PATH } from './worker.js';

const [out] = process.argv.slice(2);
if (!out) throw new Error('usage: bundle-workflows.ts <output file>');
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
writeFileSync(out, code);
