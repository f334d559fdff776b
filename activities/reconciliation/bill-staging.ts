// The downloaded bill, parsed and staged into reconciliation_bill_rows by a worker thread of its
// own (bill-stage-thread.ts), so the rows' garbage stays out of the worker's heap.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Context, log } from '@temporalio/activity';
import type pg from 'pg';
import type { BillStaging, ReconciliationRun } from '../../lib/payments/activity-contracts.js';
import { moduleFile, runsCompiled } from '../../lib/platform/module-files.js';
import { BillDownloadError, BillFormatError, type BillReadSummary } from './bill-file.js';
import type { StageJob, StageMessage } from './bill-stage-thread.js';
import { BULK_STATEMENT_TIMEOUT_MS } from './bulk.js';

const STAGE_BATCH_ROWS = 5_000;
/** The staging thread's heap: a stream of rows needs a few tens of megabytes whatever the bill's size. */
const STAGE_THREAD_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 };

/**
 * The staging thread's entry, in the build this runs from. From the TypeScript sources the thread
 * first registers tsx's loader (its ESM API, found through tsx's own package exports), then imports
 * the entry; compiled, it imports the entry's JavaScript as it is.
 */
const THREAD_BOOTSTRAP = (() => {
  const entry = pathToFileURL(moduleFile('./bill-stage-thread', import.meta.url)).href;
  if (runsCompiled(import.meta.url)) return `import(${JSON.stringify(entry)});`;
  const require = createRequire(import.meta.url);
  const tsxPackage = require.resolve('tsx/package.json');
  const exports = (require('tsx/package.json') as { exports: Record<string, { import: { default: string } }> }).exports;
  const tsxApi = new URL(exports['./esm/api']!.import.default, pathToFileURL(tsxPackage)).href;
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
})();

/**
 * Reads the bill at `path` into the staging table in a worker thread with a small heap of its
 * own (bill-stage-thread.ts): the rows' garbage never reaches the worker's heap, whose V8 would
 * otherwise let it pile up to hundreds of megabytes before collecting it. Progress comes back as
 * heartbeats; a cancelled activity ends the thread, and its transaction with it.
 */
export async function stageBill(pool: pg.Pool, run: ReconciliationRun, path: string): Promise<BillStaging> {
  const ctx = Context.current();
  const job: StageJob = {
    zipPath: path,
    connectionString: pool.options.connectionString!,
    ...run,
    batchRows: STAGE_BATCH_ROWS,
    statementTimeoutMs: BULK_STATEMENT_TIMEOUT_MS,
  };
  const thread = new Worker(THREAD_BOOTSTRAP, { eval: true, workerData: job, resourceLimits: STAGE_THREAD_LIMITS });
  const summary = await new Promise<BillReadSummary>((resolve, reject) => {
    const stop = () => void thread.terminate();
    ctx.cancellationSignal.addEventListener('abort', stop, { once: true });
    const settle = () => ctx.cancellationSignal.removeEventListener('abort', stop);
    thread.on('message', (message: StageMessage) => {
      if ('progress' in message) return ctx.heartbeat({ staged: message.progress });
      settle();
      if ('done' in message) return resolve(message.done);
      const { kind, message: text } = message.error;
      reject(kind === 'format' ? new BillFormatError(text) : kind === 'download' ? new BillDownloadError(text) : new Error(text));
    });
    thread.on('error', (err) => {
      settle();
      reject(err);
    });
    thread.on('exit', (code) => {
      settle();
      reject(ctx.cancellationSignal.aborted ? ctx.cancellationSignal.reason : new Error(`the staging thread ended (exit code ${code}) before it was done`));
    });
  });
  await thread.terminate();
  log.info('bill staged', { date: run.date, entry: summary.entry, payments: summary.payments, refunds: summary.refunds, ignored: summary.ignored });
  return { ready: true, payments: summary.payments, refunds: summary.refunds, ignored: summary.ignored };
}
