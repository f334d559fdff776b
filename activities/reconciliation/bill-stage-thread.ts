// The bulk of a reconciliation's staging, in a worker thread of its own (see stageBill in
// bill-staging.ts): the bill's detail file read as a stream and written to the staging table in
// batches, in one transaction on a connection of the thread's own. Every row's garbage lives and
// dies in this thread's small heap, so a bill of any size leaves the worker's own heap as it was.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { BillDownloadError, BillFormatError, readTradeBill, type BillReadSummary } from './bill-file.js';

export interface StageJob {
  zipPath: string;
  connectionString: string;
  appId: string;
  date: string;
  runId: string;
  batchRows: number;
  statementTimeoutMs: number;
}

export type StageMessage =
  | { progress: number }
  | { done: BillReadSummary }
  | { error: { kind: 'format' | 'download' | 'other'; message: string } };

const job = workerData as StageJob;
const post = (message: StageMessage) => parentPort!.postMessage(message);
const db = new pg.Client({ connectionString: job.connectionString, statement_timeout: job.statementTimeoutMs, query_timeout: job.statementTimeoutMs + 5_000 });

try {
  await db.connect();
  await db.query('BEGIN');
  // A retry starts over: rows an earlier attempt of this day staged are dropped first.
  await db.query('DELETE FROM reconciliation_bill_rows WHERE app_id = $1 AND bill_date = $2', [job.appId, job.date]);
  let staged = 0;
  const summary = await readTradeBill(
    job.zipPath,
    async (rows) => {
      await db.query(
        `INSERT INTO reconciliation_bill_rows
           (app_id, bill_date, run_id, line, kind, alipay_trade_no, out_trade_no, out_request_no, amount_fen, fee_fen, completed_at)
         SELECT $1, $2, $3, * FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::timestamptz[])`,
        [
          job.appId,
          job.date,
          job.runId,
          rows.map((r) => r.line),
          rows.map((r) => r.kind),
          rows.map((r) => r.alipayTradeNo),
          rows.map((r) => r.outTradeNo),
          rows.map((r) => r.outRequestNo ?? null),
          rows.map((r) => r.amountFen),
          rows.map((r) => r.feeFen ?? null),
          rows.map((r) => r.completedAt ?? null),
        ],
      );
      staged += rows.length;
      post({ progress: staged });
    },
    job.batchRows,
  );
  await db.query('UPDATE reconciliations SET bill_rows = $4 WHERE app_id = $1 AND bill_date = $2 AND run_id = $3', [
    job.appId,
    job.date,
    job.runId,
    summary.payments + summary.refunds,
  ]);
  await db.query('COMMIT');
  post({ done: summary });
} catch (err) {
  const kind = err instanceof BillFormatError ? 'format' : err instanceof BillDownloadError ? 'download' : 'other';
  post({ error: { kind, message: (err as Error).message } });
} finally {
  // Uncommitted work is rolled back by the server when the connection ends.
  await db.end().catch(() => {});
}
