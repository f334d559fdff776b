// The comparison of the staged bill with durapay's read model, set-based in PostgreSQL, and the
// stored result (totals and mismatches) it answers with.
import type pg from 'pg';
import type { ReconciliationRun } from '../../lib/payments/activity-contracts.js';
import { fromAlipayOutTradeNo } from '../../lib/alipay/order-numbers.js';
import { beijingDayEnd, beijingDayStart, type ComparisonSummary } from '../../lib/payments/reconciliation.js';
import type { MismatchType } from '../../lib/payments/findings.js';
import { bulk, bulkTransaction } from './bulk.js';

/** Mismatches carried in the workflow's history; past this it gets the list's reference only. */
const INLINE_MISMATCHES = 20;

/** The run's comparison, made once: a retried attempt answers with what the first one stored. */
export async function compareBill(pool: pg.Pool, run: ReconciliationRun): Promise<ComparisonSummary> {
  const done = await storedSummary(pool, run);
  if (done) return done; // an earlier attempt compared and committed; its answer was lost
  return bulkTransaction(pool, async (db) => {
    await compare(db, run);
    return (await storedSummary(db, run))!;
  });
}

/** The Beijing day as [start, end) instants; the workflow validated the date. */
function dayBounds(date: string): [Date, Date] {
  return [new Date(beijingDayStart(date)!), new Date(beijingDayEnd(date)!)];
}

const yuan = (expr: string) => `to_char((${expr}) / 100.0, 'FM999999999990.00')`;

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
  const q: Query = (text, values = []) => bulk(db, text, values);
  await q('DELETE FROM reconciliation_mismatches WHERE run_id = $1', [run.runId]);
  await gatherBill(q, run);
  await gatherRecord(q, run);
  for (const table of ['rc_bill_pay', 'rc_bill_ref', 'rc_orders', 'rc_local_pay', 'rc_local_ref']) await q(`ANALYZE ${table}`);
  await recordPaymentMismatches(q, run);
  await recordRefundMismatches(q, run);
  await storeTotals(q, run);
}

type Query = (text: string, values?: unknown[]) => Promise<unknown>;

const INSERT_MISMATCH = `INSERT INTO reconciliation_mismatches
  (app_id, bill_date, run_id, type, payment_id, out_trade_no, out_request_no, alipay_trade_no, local_amount_fen, gateway_amount_fen, detail)`;

/** The bill's side: its payments by out_trade_no, its refunds by out_trade_no and out_request_no. */
async function gatherBill(q: Query, run: ReconciliationRun): Promise<void> {
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
}

/** durapay's side: the orders either side names, what it holds as paid and refunded for the day. */
async function gatherRecord(q: Query, run: ReconciliationRun): Promise<void> {
  const [start, end] = dayBounds(run.date);
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
}

/** A payment on one side only, with another trade, or with another amount. */
async function recordPaymentMismatches(q: Query, run: ReconciliationRun): Promise<void> {
  await q(
    `${INSERT_MISMATCH}
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
}

/** Each refund on one side only, or with another amount; an order whose refunds disagree as a whole, once. */
async function recordRefundMismatches(q: Query, run: ReconciliationRun): Promise<void> {
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
    `${INSERT_MISMATCH}
     SELECT $1, $2, $3, 'status_mismatch', s.payment_id, s.out_trade_no, NULL, s.trade_no, s.local_fen, s.gateway_fen,
       CASE WHEN s.all_local
         THEN format('durapay says %s (refunds %s, %s in all, made this day); Alipay''s bill shows no refund of the trade', s.order_status, s.requests, ${yuan('s.local_fen')})
         ELSE format('durapay says PAID; Alipay''s bill shows refunds %s, %s in all', s.requests, ${yuan('s.gateway_fen')}) END
     FROM rc_status_orders s ORDER BY s.out_trade_no`,
    [run.appId, run.date, run.runId],
  );
  await q(
    `${INSERT_MISMATCH}
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
}

/** The totals of both sides and the mismatch count; the day's staged rows are done with. */
async function storeTotals(q: Query, run: ReconciliationRun): Promise<void> {
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
