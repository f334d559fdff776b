// The reconciliation's side effects: Alipay's bill (asked for, downloaded and parsed as streams in
// one activity, so the short-lived download URL never reaches workflow history or a log), the
// set-based comparison with the read model in PostgreSQL, the stored result, and the findings
// signalled back to each order's workflow.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AlipaySdk } from 'alipay-sdk';
import type pg from 'pg';
import { FAILURE, type AlipayRefusal, type BillStaging, type ReconciliationActivities, type ReconciliationRun } from '../lib/payments/activity-contracts.js';
import { moduleFile, runsCompiled } from '../lib/platform/module-files.js';
import { fromAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { searchAttributes } from '../lib/payments/payment.js';
import {
  beijingDayEnd,
  beijingDayStart,
  RECONCILIATION_FINDINGS_WORKFLOW_TYPE,
  reconciliationFindingsSignal,
  reconciliationFindingsWorkflowId,
  type ComparisonSummary,
  type ReconciliationFindingsInput,
} from '../lib/payments/reconciliation.js';
import type { Finding, MismatchType } from '../lib/payments/findings.js';
import { describe, isTransportFailure, RETRYABLE_SUB_CODES, type AlipayClients, type GatewayAnswer } from './alipay.js';
import { BillDownloadError, BillFormatError, saveDownload, type BillReadSummary } from './bill.js';
import type { StageJob, StageMessage } from './bill-stage-thread.js';
import { inTransaction } from '../lib/platform/database.js';

const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';
/** Alipay's "no bill for this day yet" (isp.bill_not_exist, and the older BILL_NOT_EXIST). */
const BILL_NOT_READY = /bill_not_exist/i;
/** A day's bill of a busy merchant is tens of megabytes; anything this large is not one. */
const MAX_BILL_BYTES = 1024 ** 3;
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
/** Bulk statements over a whole day run longer than the pool's per-statement bound. */
const BULK_STATEMENT_TIMEOUT_MS = 180_000;
/** Mismatches carried in the workflow's history; past this it gets the list's reference only. */
const INLINE_MISMATCHES = 20;
const DISPATCH_CONCURRENCY = 8;

export interface ReconciliationActivityDeps {
  /** The apps' signing clients: each app's bill is asked with its own. */
  alipay: AlipayClients;
  pool: pg.Pool;
  /** Where findings are signalled, and findings workflows started. */
  temporal: { client: Client; taskQueue: string };
  /** How long the bill's download may take. */
  downloadTimeoutMs?: number;
}

/** A statement that may run for the bulk bound, on a connection whose transaction set it. */
function bulk(db: pg.PoolClient, text: string, values: unknown[] = []) {
  return db.query({ text, values, query_timeout: BULK_STATEMENT_TIMEOUT_MS + 5_000 } as pg.QueryConfig);
}

async function bulkTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (db) => {
    await db.query(`SET LOCAL statement_timeout = ${BULK_STATEMENT_TIMEOUT_MS}`);
    return work(db);
  });
}

/** The Beijing day as [start, end) instants; the workflow validated the date. */
function dayBounds(date: string): [Date, Date] {
  return [new Date(beijingDayStart(date)!), new Date(beijingDayEnd(date)!)];
}

const yuan = (expr: string) => `to_char((${expr}) / 100.0, 'FM999999999990.00')`;

export function createReconciliationActivities(deps: ReconciliationActivityDeps): ReconciliationActivities {
  const { pool } = deps;
  const downloadTimeoutMs = deps.downloadTimeoutMs ?? 120_000;

  /** Alipay's answer to the download-URL query: the URL, or "not yet". */
  async function billDownloadUrl(appId: string, date: string): Promise<{ url: string } | { notReady: { subCode: string; message: string } }> {
    const sdk = await deps.alipay.client(appId);
    if (!sdk) throw ApplicationFailure.retryable(`${BILL_METHOD}: no Alipay app ${appId} is configured or registered`, 'AlipayAppUnknown');
    let answer: GatewayAnswer;
    try {
      answer = (await sdk.exec(BILL_METHOD, { bizContent: { billType: 'trade', billDate: date } }, { validateSign: true })) as unknown as GatewayAnswer;
    } catch (err) {
      if (isTransportFailure(err)) throw ApplicationFailure.retryable(`${BILL_METHOD}: ${(err as Error).message}`, 'AlipayUnavailable');
      throw ApplicationFailure.retryable(`${BILL_METHOD}: unverifiable answer: ${(err as Error).message}`, 'AlipayUnexpectedAnswer');
    }
    if (answer.code === '10000' && typeof answer.billDownloadUrl === 'string' && /^https?:\/\//.test(answer.billDownloadUrl)) {
      return { url: answer.billDownloadUrl };
    }
    if (answer.code === '20000' || (answer.subCode && RETRYABLE_SUB_CODES.has(answer.subCode))) {
      throw ApplicationFailure.retryable(describe(BILL_METHOD, answer), 'AlipaySystemError');
    }
    if (answer.code === '40004' && answer.subCode && BILL_NOT_READY.test(answer.subCode)) {
      return { notReady: { subCode: answer.subCode, message: answer.subMsg ?? answer.msg ?? '' } };
    }
    const refusal: AlipayRefusal = { code: answer.code, msg: answer.msg, subCode: answer.subCode, subMsg: answer.subMsg };
    throw ApplicationFailure.nonRetryable(describe(BILL_METHOD, answer), FAILURE.alipayRejected, refusal);
  }

  /** The bill into a file of its own: streamed to disk, never held in memory. */
  async function download(url: string, path: string): Promise<void> {
    const cancelled = Context.current().cancellationSignal;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(downloadTimeoutMs), cancelled]) });
    } catch (err) {
      // Never the URL itself in a message: it may carry a signature.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new BillDownloadError(`the bill download failed: ${cause?.code ?? cause?.message ?? (err as Error).name}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new BillDownloadError(`the bill download answered HTTP ${res.status}`);
    }
    await saveDownload(Readable.fromWeb(res.body as unknown as WebReadableStream), path, MAX_BILL_BYTES);
  }

  /**
   * Reads the bill at `path` into the staging table in a worker thread with a small heap of its
   * own (bill-stage-thread.ts): the rows' garbage never reaches the worker's heap, whose V8 would
   * otherwise let it pile up to hundreds of megabytes before collecting it. Progress comes back as
   * heartbeats; a cancelled activity ends the thread, and its transaction with it.
   */
  async function stage(run: ReconciliationRun, path: string): Promise<BillStaging> {
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

  /** What an earlier attempt of this run stored, or undefined when it has not compared yet. */
  async function storedSummary(db: pg.PoolClient | pg.Pool, run: ReconciliationRun): Promise<ComparisonSummary | undefined> {
    const { rows } = await db.query('SELECT * FROM reconciliations WHERE app_id = $1 AND bill_date = $2 AND run_id = $3 AND mismatch_count IS NOT NULL', [
      run.appId,
      run.date,
      run.runId,
    ]);
    const row = rows[0];
    if (!row) return undefined;
    const { rows: types } = await db.query('SELECT type, count(*)::int AS n FROM reconciliation_mismatches WHERE run_id = $1 GROUP BY type', [run.runId]);
    const summary: ComparisonSummary = {
      totals: {
        payments: {
          gateway: { count: row.gateway_payment_count, amountFen: row.gateway_payment_fen },
          local: { count: row.local_payment_count, amountFen: row.local_payment_fen },
        },
        refunds: {
          gateway: { count: row.gateway_refund_count, amountFen: row.gateway_refund_fen },
          local: { count: row.local_refund_count, amountFen: row.local_refund_fen },
        },
      },
      mismatchCount: row.mismatch_count,
      byType: Object.fromEntries(types.map((t) => [t.type as MismatchType, t.n])),
      mismatchList: { table: 'reconciliation_mismatches', runId: run.runId },
    };
    if (row.mismatch_count <= INLINE_MISMATCHES) {
      const { rows: list } = await db.query(
        `SELECT m.type, m.out_trade_no AS alipay_out_trade_no, p.merchant_id, p.out_trade_no, m.detail
         FROM reconciliation_mismatches m LEFT JOIN payments p ON p.id = m.payment_id WHERE m.run_id = $1 ORDER BY m.id`,
        [run.runId],
      );
      summary.mismatches = list.map((m) => {
        const ours = fromAlipayOutTradeNo(m.alipay_out_trade_no);
        return {
          type: m.type,
          merchantId: m.merchant_id ?? ours?.merchantId ?? null,
          outTradeNo: m.out_trade_no ?? ours?.orderNo ?? null,
          alipayOutTradeNo: m.alipay_out_trade_no,
          detail: m.detail,
        };
      });
    }
    return summary;
  }

  /**
   * The comparison, in one transaction. Both sides are gathered into temporary tables: the bill's
   * payments and refunds, and what durapay recorded for the same day (payments by paid_at and
   * refunds by Alipay's refund time, both on Alipay's clock) together with its record of every
   * trade and refund the bill lists (so a record on another day's side of midnight still matches).
   * Full outer joins on Alipay's out_trade_no (and out_request_no) give the differences.
   */
  async function compare(db: pg.PoolClient, run: ReconciliationRun): Promise<void> {
    const [start, end] = dayBounds(run.date);
    const q = (text: string, values: unknown[] = []) => bulk(db, text, values);
    await q('DELETE FROM reconciliation_mismatches WHERE run_id = $1', [run.runId]);

    await q(`CREATE TEMP TABLE rc_bill_pay (out_trade_no text PRIMARY KEY, trade_no text, amount_fen bigint) ON COMMIT DROP`);
    await q(
      `INSERT INTO rc_bill_pay SELECT out_trade_no, min(alipay_trade_no), sum(amount_fen)
       FROM reconciliation_bill_rows WHERE run_id = $1 AND kind = 'payment' GROUP BY out_trade_no`,
      [run.runId],
    );
    await q(`CREATE TEMP TABLE rc_bill_ref (out_trade_no text, out_request_no text, trade_no text, amount_fen bigint, PRIMARY KEY (out_trade_no, out_request_no)) ON COMMIT DROP`);
    await q(
      `INSERT INTO rc_bill_ref SELECT out_trade_no, coalesce(out_request_no, ''), min(alipay_trade_no), sum(amount_fen)
       FROM reconciliation_bill_rows WHERE run_id = $1 AND kind = 'refund' GROUP BY 1, 2`,
      [run.runId],
    );

    // The orders either side names: paid on the day in durapay's record, or listed in the bill.
    await q(
      `CREATE TEMP TABLE rc_orders ON COMMIT DROP AS
       SELECT id, alipay_out_trade_no, alipay_trade_no, paid_amount_fen, paid_at, status, late_payment FROM payments WHERE false`,
    );
    await q(
      `INSERT INTO rc_orders
       SELECT p.id, p.alipay_out_trade_no, p.alipay_trade_no, p.paid_amount_fen, p.paid_at, p.status, p.late_payment
       FROM payments p WHERE p.id IN (
         SELECT id FROM payments WHERE app_id = $1 AND paid_at >= $2 AND paid_at < $3
         UNION
         SELECT p2.id FROM rc_bill_pay b JOIN payments p2 ON p2.app_id = $1 AND p2.alipay_out_trade_no = b.out_trade_no
       )`,
      [run.appId, start, end],
    );
    await q('CREATE INDEX ON rc_orders (alipay_out_trade_no)');
    // What durapay holds as paid for the day: confirmed payments (PAID, refunded since, or sent
    // to review after confirmation) and late payments of closed orders that the bill lists.
    await q(`CREATE TEMP TABLE rc_local_pay (payment_id text, out_trade_no text, trade_no text, amount_fen bigint, status text) ON COMMIT DROP`);
    await q(
      `INSERT INTO rc_local_pay
       SELECT o.id, o.alipay_out_trade_no, o.alipay_trade_no, o.paid_amount_fen, o.status
       FROM rc_orders o LEFT JOIN rc_bill_pay b ON b.out_trade_no = o.alipay_out_trade_no
       WHERE o.paid_amount_fen IS NOT NULL AND o.status IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'REVIEW')
         AND ((o.paid_at >= $1 AND o.paid_at < $2) OR b.trade_no = o.alipay_trade_no)
       UNION ALL
       SELECT o.id, o.alipay_out_trade_no, o.late_payment->>'tradeNo', (o.late_payment->>'amountFen')::bigint, o.status
       FROM rc_orders o JOIN rc_bill_pay b ON b.out_trade_no = o.alipay_out_trade_no AND b.trade_no = o.late_payment->>'tradeNo'
       -- once resolved as PAID, the late payment is the order's payment, counted above
       WHERE o.paid_amount_fen IS NULL`,
      [start, end],
    );
    await q(`CREATE TEMP TABLE rc_local_ref (payment_id text, out_trade_no text, out_request_no text, trade_no text, amount_fen bigint, order_status text) ON COMMIT DROP`);
    await q(
      `INSERT INTO rc_local_ref
       SELECT r.payment_id, p.alipay_out_trade_no, r.out_request_no, coalesce(p.alipay_trade_no, p.late_payment->>'tradeNo'), r.amount_fen, p.status
       FROM refunds r JOIN payments p ON p.id = r.payment_id
       WHERE r.status = 'SUCCEEDED' AND p.app_id = $1
         AND coalesce(r.alipay_refunded_at, r.settled_at) >= $2 AND coalesce(r.alipay_refunded_at, r.settled_at) < $3
       UNION
       SELECT r.payment_id, p.alipay_out_trade_no, r.out_request_no, coalesce(p.alipay_trade_no, p.late_payment->>'tradeNo'), r.amount_fen, p.status
       FROM rc_bill_ref b JOIN payments p ON p.app_id = $1 AND p.alipay_out_trade_no = b.out_trade_no
       JOIN refunds r ON r.payment_id = p.id AND r.out_request_no = b.out_request_no AND r.status = 'SUCCEEDED'
       UNION
       -- A payment Alipay refunded itself, as its answer to a cancel (a barcode payment that landed
       -- while it was cancelled): the order records it as a late payment, refunded by the cancel.
       SELECT o.id, o.alipay_out_trade_no, b.out_request_no, o.late_payment->>'tradeNo', (o.late_payment->>'amountFen')::bigint, o.status
       FROM rc_orders o JOIN rc_bill_ref b ON b.out_trade_no = o.alipay_out_trade_no AND b.trade_no = o.late_payment->>'tradeNo'
       WHERE o.late_payment->>'refundedBy' = 'cancel'`,
      [run.appId, start, end],
    );
    for (const table of ['rc_bill_pay', 'rc_bill_ref', 'rc_orders', 'rc_local_pay', 'rc_local_ref']) await q(`ANALYZE ${table}`);

    const insert = `INSERT INTO reconciliation_mismatches
      (app_id, bill_date, run_id, type, payment_id, out_trade_no, out_request_no, alipay_trade_no, local_amount_fen, gateway_amount_fen, detail)`;
    // Payments.
    await q(
      `${insert}
       SELECT $1, $2, $3,
         CASE WHEN l.out_trade_no IS NULL THEN 'missing_local'
              WHEN b.out_trade_no IS NULL THEN 'missing_gateway'
              WHEN b.trade_no IS DISTINCT FROM l.trade_no THEN 'status_mismatch'
              ELSE 'amount_mismatch' END,
         coalesce(l.payment_id, o.id), coalesce(b.out_trade_no, l.out_trade_no), NULL, coalesce(b.trade_no, l.trade_no), l.amount_fen, b.amount_fen,
         CASE WHEN l.out_trade_no IS NULL AND o.id IS NULL
                THEN format('Alipay''s bill has a payment of %s for an order durapay has no record of', ${yuan('b.amount_fen')})
              WHEN l.out_trade_no IS NULL
                THEN format('Alipay''s bill has a payment of %s that durapay never confirmed: the order is %s', ${yuan('b.amount_fen')}, o.status)
              WHEN b.out_trade_no IS NULL
                THEN format('durapay recorded a payment of %s (the order is %s); Alipay''s bill of the day has no such payment', ${yuan('l.amount_fen')}, l.status)
              WHEN b.trade_no IS DISTINCT FROM l.trade_no
                THEN format('Alipay''s bill has trade %s for the order; durapay recorded trade %s', b.trade_no, l.trade_no)
              ELSE format('Alipay''s bill has %s; durapay recorded %s', ${yuan('b.amount_fen')}, ${yuan('l.amount_fen')}) END
       FROM rc_bill_pay b FULL JOIN rc_local_pay l ON l.out_trade_no = b.out_trade_no
       LEFT JOIN rc_orders o ON o.alipay_out_trade_no = b.out_trade_no
       WHERE l.out_trade_no IS NULL OR b.out_trade_no IS NULL OR l.amount_fen <> b.amount_fen OR b.trade_no IS DISTINCT FROM l.trade_no
       ORDER BY 6`,
      [run.appId, run.date, run.runId],
    );

    // Refunds: each one on one side only, or with another amount.
    await q(
      `CREATE TEMP TABLE rc_ref_diff ON COMMIT DROP AS
       SELECT ''::text AS out_trade_no, ''::text AS out_request_no, ''::text AS trade_no, 0::bigint AS local_fen, 0::bigint AS gateway_fen,
              ''::text AS side, ''::text AS payment_id, ''::text AS order_status, ''::text AS local_status WHERE false`,
    );
    await q(
      `INSERT INTO rc_ref_diff
       SELECT coalesce(b.out_trade_no, l.out_trade_no), coalesce(b.out_request_no, l.out_request_no), coalesce(b.trade_no, l.trade_no),
              l.amount_fen, b.amount_fen,
              CASE WHEN b.out_trade_no IS NULL THEN 'local' WHEN l.out_trade_no IS NULL THEN 'bill' ELSE 'both' END,
              p.id, p.status, r.status
       FROM rc_bill_ref b FULL JOIN rc_local_ref l ON l.out_trade_no = b.out_trade_no AND l.out_request_no = b.out_request_no
       LEFT JOIN payments p ON p.app_id = $1 AND p.alipay_out_trade_no = coalesce(b.out_trade_no, l.out_trade_no)
       LEFT JOIN refunds r ON r.payment_id = p.id AND r.out_request_no = coalesce(b.out_request_no, l.out_request_no)
       WHERE b.out_trade_no IS NULL OR l.out_trade_no IS NULL OR b.amount_fen <> l.amount_fen`,
      [run.appId],
    );
    // An order whose refund state as a whole disagrees is one status_mismatch, not one per refund:
    // durapay says (partly) refunded and the bill shows no refund of the trade that day, or the bill
    // shows refunds of an order durapay says PAID with no refund at all.
    await q(
      `CREATE TEMP TABLE rc_status_orders ON COMMIT DROP AS
       SELECT d.out_trade_no, min(d.payment_id) AS payment_id, min(d.order_status) AS order_status, min(d.trade_no) AS trade_no,
              bool_and(d.side = 'local') AS all_local, sum(d.local_fen)::bigint AS local_fen, sum(d.gateway_fen)::bigint AS gateway_fen,
              string_agg(d.out_request_no, ', ' ORDER BY d.out_request_no) AS requests
       FROM rc_ref_diff d GROUP BY d.out_trade_no
       HAVING (bool_and(d.side = 'local') AND min(d.order_status) IN ('REFUNDED', 'PARTIALLY_REFUNDED')
                 AND NOT EXISTS (SELECT 1 FROM rc_bill_ref b WHERE b.out_trade_no = d.out_trade_no))
           OR (bool_and(d.side = 'bill') AND min(d.order_status) = 'PAID'
                 AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = min(d.payment_id) AND r.status = 'SUCCEEDED'))`,
    );
    await q(
      `${insert}
       SELECT $1, $2, $3, 'status_mismatch', s.payment_id, s.out_trade_no, NULL, s.trade_no, s.local_fen, s.gateway_fen,
         CASE WHEN s.all_local
           THEN format('durapay says %s (refunds %s, %s in all, made this day); Alipay''s bill shows no refund of the trade', s.order_status, s.requests, ${yuan('s.local_fen')})
           ELSE format('durapay says PAID; Alipay''s bill shows refunds %s, %s in all', s.requests, ${yuan('s.gateway_fen')}) END
       FROM rc_status_orders s ORDER BY s.out_trade_no`,
      [run.appId, run.date, run.runId],
    );
    await q(
      `${insert}
       SELECT $1, $2, $3, 'refund_mismatch', d.payment_id, d.out_trade_no, nullif(d.out_request_no, ''), d.trade_no, d.local_fen, d.gateway_fen,
         CASE d.side
           WHEN 'both' THEN format('refund %s: Alipay''s bill has %s; durapay recorded %s', d.out_request_no, ${yuan('d.gateway_fen')}, ${yuan('d.local_fen')})
           WHEN 'bill' THEN format('refund %s of %s is in Alipay''s bill; durapay %s', d.out_request_no, ${yuan('d.gateway_fen')},
                                   CASE WHEN d.payment_id IS NULL THEN 'has no such order'
                                        WHEN d.local_status IS NULL THEN 'has no such refund'
                                        ELSE format('has it %s', d.local_status) END)
           ELSE format('refund %s of %s: durapay recorded it SUCCEEDED this day; Alipay''s bill has no such refund', d.out_request_no, ${yuan('d.local_fen')}) END
       FROM rc_ref_diff d WHERE d.out_trade_no NOT IN (SELECT out_trade_no FROM rc_status_orders)
       ORDER BY d.out_trade_no, d.out_request_no`,
      [run.appId, run.date, run.runId],
    );

    // The totals, and the day's staged rows are done with.
    await q(
      `UPDATE reconciliations SET
         gateway_payment_count = (SELECT count(*) FROM reconciliation_bill_rows WHERE run_id = $3 AND kind = 'payment'),
         gateway_payment_fen = (SELECT coalesce(sum(amount_fen), 0) FROM reconciliation_bill_rows WHERE run_id = $3 AND kind = 'payment'),
         local_payment_count = (SELECT count(*) FROM rc_local_pay),
         local_payment_fen = (SELECT coalesce(sum(amount_fen), 0) FROM rc_local_pay),
         gateway_refund_count = (SELECT count(*) FROM reconciliation_bill_rows WHERE run_id = $3 AND kind = 'refund'),
         gateway_refund_fen = (SELECT coalesce(sum(amount_fen), 0) FROM reconciliation_bill_rows WHERE run_id = $3 AND kind = 'refund'),
         local_refund_count = (SELECT count(*) FROM rc_local_ref),
         local_refund_fen = (SELECT coalesce(sum(amount_fen), 0) FROM rc_local_ref),
         mismatch_count = (SELECT count(*) FROM reconciliation_mismatches WHERE run_id = $3)
       WHERE app_id = $1 AND bill_date = $2 AND run_id = $3`,
      [run.appId, run.date, run.runId],
    );
    await q('DELETE FROM reconciliation_bill_rows WHERE run_id = $1', [run.runId]);
  }

  /** Signals one order's findings to its running workflow, or to a findings workflow for it. */
  async function dispatch(run: ReconciliationRun & { latePaymentPolicy: ReconciliationFindingsInput['latePaymentPolicy'] }, order: {
    payment_id: string;
    out_trade_no: string;
    alipay_trade_no: string | null;
    findings: Finding[];
  }): Promise<'signalled' | 'started'> {
    const { client, taskQueue } = deps.temporal;
    const findings = { findings: order.findings };
    try {
      await client.workflow.getHandle(order.payment_id).signal(reconciliationFindingsSignal, findings);
      return 'signalled';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const input: ReconciliationFindingsInput = {
      appId: run.appId,
      outTradeNo: order.out_trade_no,
      paymentId: order.payment_id,
      latePaymentPolicy: run.latePaymentPolicy,
    };
    const merchantOrder = fromAlipayOutTradeNo(order.out_trade_no);
    await client.workflow.signalWithStart(RECONCILIATION_FINDINGS_WORKFLOW_TYPE, {
      workflowId: reconciliationFindingsWorkflowId(run.appId, run.date, order.out_trade_no),
      taskQueue,
      args: [input],
      signal: reconciliationFindingsSignal,
      signalArgs: [findings],
      typedSearchAttributes: [
        { key: searchAttributes.outTradeNo, value: merchantOrder?.orderNo ?? order.out_trade_no },
        ...(merchantOrder ? [{ key: searchAttributes.merchantId, value: merchantOrder.merchantId }] : []),
        ...(order.alipay_trade_no ? [{ key: searchAttributes.alipayTradeNo, value: order.alipay_trade_no }] : []),
      ],
    });
    return 'started';
  }

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
      const answer = await billDownloadUrl(run.appId, run.date);
      if ('notReady' in answer) return { ready: false, ...answer.notReady };
      const dir = await mkdtemp(join(tmpdir(), 'durapay-bill-'));
      try {
        const path = join(dir, 'bill.zip');
        await download(answer.url, path);
        return await stage(run, path);
      } catch (err) {
        if (err instanceof BillFormatError) throw ApplicationFailure.nonRetryable(`Alipay's bill of ${run.date}: ${err.message}`, FAILURE.billUnreadable);
        // An expired link or a broken download: the next attempt asks for a new link.
        if (err instanceof BillDownloadError) throw ApplicationFailure.retryable(`Alipay's bill of ${run.date}: ${err.message}`, 'BillDownloadFailed');
        throw err;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    async compareBill(run) {
      const done = await storedSummary(pool, run);
      if (done) return done; // an earlier attempt compared and committed; its answer was lost
      return bulkTransaction(pool, async (db) => {
        await compare(db, run);
        return (await storedSummary(db, run))!;
      });
    },

    async finishReconciliation({ status, reason, ...run }) {
      await pool.query(
        `UPDATE reconciliations SET status = $4, reason = $5, finished_at = now() WHERE app_id = $1 AND bill_date = $2 AND run_id = $3`,
        [run.appId, run.date, run.runId, status, reason ?? null],
      );
      await pool.query('DELETE FROM reconciliation_bill_rows WHERE run_id = $1', [run.runId]);
    },

    async feedBackMismatches(input) {
      const ctx = Context.current();
      const summary = { signalled: 0, started: 0, unknownOrders: 0 };
      // No order to tell: left for an operator, in the list and in the worker's log.
      const { rows: unknown } = await pool.query(
        `UPDATE reconciliation_mismatches SET dispatched_at = now()
         WHERE run_id = $1 AND payment_id IS NULL AND dispatched_at IS NULL
         RETURNING type, out_trade_no, alipay_trade_no, gateway_amount_fen, detail`,
        [input.runId],
      );
      for (const m of unknown) {
        log.error('RECONCILIATION: a mismatch of no order, for an operator', { date: input.date, type: m.type, outTradeNo: m.out_trade_no, tradeNo: m.alipay_trade_no, detail: m.detail });
      }
      summary.unknownOrders = unknown.length;
      for (;;) {
        const { rows: orders } = await pool.query(
          `SELECT payment_id, min(out_trade_no) AS out_trade_no, min(alipay_trade_no) AS alipay_trade_no,
                  json_agg(json_strip_nulls(json_build_object(
                    'date', $2::text, 'type', type, 'detail', detail, 'alipayTradeNo', alipay_trade_no, 'outRequestNo', out_request_no,
                    'localAmountFen', local_amount_fen, 'gatewayAmountFen', gateway_amount_fen)) ORDER BY id) AS findings
           FROM reconciliation_mismatches WHERE run_id = $1 AND payment_id IS NOT NULL AND dispatched_at IS NULL
           GROUP BY payment_id ORDER BY payment_id LIMIT 200`,
          [input.runId, input.date],
        );
        if (orders.length === 0) return summary;
        let next = 0;
        const workers = Array.from({ length: Math.min(DISPATCH_CONCURRENCY, orders.length) }, async () => {
          for (let order = orders[next++]; order; order = orders[next++]) {
            summary[await dispatch(input, order)] += 1;
            await pool.query('UPDATE reconciliation_mismatches SET dispatched_at = now() WHERE run_id = $1 AND payment_id = $2', [input.runId, order.payment_id]);
          }
        });
        await Promise.all(workers);
        ctx.heartbeat(summary);
      }
    },
  };
}
