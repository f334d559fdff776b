// The reconciliation's activities, assembled from one module per concern (reconciliation/): Alipay's
// bill (asked for, downloaded and parsed as streams in one activity, so the short-lived download URL
// never reaches workflow history or a log), the set-based comparison with the read model in
// PostgreSQL, the stored result, and the findings signalled back to each order's workflow.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { FAILURE, type ReconciliationActivities } from '../lib/payments/activity-contracts.js';
import type { AlipayClients } from './alipay.js';
import { BillDownloadError, BillFormatError } from './reconciliation/bill-file.js';
import { billDownloadUrl, downloadBill } from './reconciliation/bill-download.js';
import { stageBill } from './reconciliation/bill-staging.js';
import { compareBill } from './reconciliation/matching.js';
import { feedBackMismatches, type FindingsTarget } from './reconciliation/findings.js';

export interface ReconciliationActivityDeps {
  /** The apps' signing clients: each app's bill is asked with its own. */
  alipay: AlipayClients;
  pool: pg.Pool;
  /** Where findings are signalled, and findings workflows started. */
  temporal: FindingsTarget;
  /** How long the bill's download may take. */
  downloadTimeoutMs?: number;
}

export function createReconciliationActivities(deps: ReconciliationActivityDeps): ReconciliationActivities {
  const { pool } = deps;
  const downloadTimeoutMs = deps.downloadTimeoutMs ?? 120_000;

  return {
    async beginReconciliation(run) {
      await pool.query(
        `INSERT INTO reconciliations (app_id, bill_date, status, run_id) VALUES ($1, $2, 'RUNNING', $3)
         ON CONFLICT (app_id, bill_date) DO UPDATE SET
           status = 'RUNNING', run_id = $3, reason = NULL, bill_rows = NULL,
           gateway_payment_count = NULL, gateway_payment_fen = NULL, local_payment_count = NULL, local_payment_fen = NULL,
           gateway_refund_count = NULL, gateway_refund_fen = NULL, local_refund_count = NULL, local_refund_fen = NULL,
           mismatch_count = NULL, started_at = now(), finished_at = NULL
         WHERE reconciliations.run_id <> $3`,
        [run.appId, run.date, run.runId],
      );
    },

    async fetchAndStageBill(run) {
      const answer = await billDownloadUrl(deps.alipay, run.appId, run.date);
      if ('notReady' in answer) return { ready: false, ...answer.notReady };
      const dir = await mkdtemp(join(tmpdir(), 'durapay-bill-'));
      try {
        const path = join(dir, 'bill.zip');
        await downloadBill(answer.url, path, downloadTimeoutMs);
        return await stageBill(pool, run, path);
      } catch (err) {
        if (err instanceof BillFormatError) throw ApplicationFailure.nonRetryable(`Alipay's bill of ${run.date}: ${err.message}`, FAILURE.billUnreadable);
        // An expired link or a broken download: the next attempt asks for a new link.
        if (err instanceof BillDownloadError) throw ApplicationFailure.retryable(`Alipay's bill of ${run.date}: ${err.message}`, 'BillDownloadFailed');
        throw err;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    compareBill: (run) => compareBill(pool, run),

    async finishReconciliation({ status, reason, ...run }) {
      await pool.query(
        `UPDATE reconciliations SET status = $4, reason = $5, finished_at = now() WHERE app_id = $1 AND bill_date = $2 AND run_id = $3`,
        [run.appId, run.date, run.runId, status, reason ?? null],
      );
      await pool.query('DELETE FROM reconciliation_bill_rows WHERE run_id = $1', [run.runId]);
    },

    feedBackMismatches: (input) => feedBackMismatches(pool, deps.temporal, input),
  };
}
