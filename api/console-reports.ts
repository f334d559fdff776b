// What merchant staff read in the console that the signed /v1 API has no route for: their orders'
// findings from the daily reconciliations, and a CSV export of their orders and refunds. Both take
// a range of Beijing days (at most MAX_RANGE_DAYS) and see only the session's merchant's orders.
import { Router } from 'express';
import type pg from 'pg';
import { stringify } from 'csv-stringify';
import { z } from 'zod';
import { formatYuan } from '../lib/payments/money.js';
import { beijingDayStart } from '../lib/payments/reconciliation.js';
import { MISMATCH_TYPES } from '../lib/payments/findings.js';
import { invalidRequest } from './errors.js';
import type { Merchant } from './merchant.js';
import { unknownFields } from './payments.js';
import { yuan } from './schemas.js';

export const MAX_RANGE_DAYS = 92;
export const MAX_FINDINGS = 1000;
/** Orders read from PostgreSQL at a time while the CSV streams. */
export const EXPORT_BATCH = 500;
const DAY_MS = 86_400_000;

const DAY_RULE = 'must be a Beijing calendar day, YYYY-MM-DD';
const day = (description: string) =>
  z
    .string({ error: DAY_RULE })
    .refine((text) => beijingDayStart(text) !== undefined, DAY_RULE)
    .meta({ description: `${description}; a Beijing calendar day, YYYY-MM-DD.`, format: 'date', pattern: '^(?!00)\\d{4}-\\d{2}-\\d{2}$', examples: ['2025-01-31'] });

const RANGE_RULE = `must be from the same day as from to ${MAX_RANGE_DAYS - 1} days after it (at most ${MAX_RANGE_DAYS} days in all)`;

/** from and to, both inclusive, at most MAX_RANGE_DAYS days. */
export const dayRangeQuery = z
  .strictObject({ from: day('The first day (inclusive)'), to: day(`The last day (inclusive): from to ${MAX_RANGE_DAYS - 1} days later`) }, unknownFields)
  .refine(
    (q) => {
      const from = beijingDayStart(q.from);
      const to = beijingDayStart(q.to);
      return from === undefined || to === undefined || (to >= from && (to - from) / DAY_MS < MAX_RANGE_DAYS);
    },
    { path: ['to'], message: RANGE_RULE },
  );

export const consoleFindingSchema = z
  .strictObject({
    billDate: z.string().meta({ description: 'The Beijing day of the bill, YYYY-MM-DD.' }),
    outTradeNo: z.string().meta({ description: 'The order, by its number.' }),
    kind: z.enum(MISMATCH_TYPES as [string, ...string[]]).meta({
      description:
        'missing_gateway: durapay says paid, the bill has no such payment. amount_mismatch: the bill has another amount. status_mismatch: the refund state disagrees with the bill. refund_mismatch: a refund on one side only, or with another amount. missing_local: the bill has a payment durapay had not confirmed.',
    }),
    outRequestNo: z.string().nullable().meta({ description: 'The refund, for refund_mismatch.' }),
    alipayTradeNo: z.string().nullable(),
    localAmount: yuan.nullable().meta({ description: 'What durapay recorded, yuan.' }),
    gatewayAmount: yuan.nullable().meta({ description: "What Alipay's bill lists, yuan." }),
    detail: z.string(),
  })
  .meta({ id: 'ConsoleReconciliationFinding' });

export const consoleFindingListSchema = z
  .strictObject({
    from: z.string(),
    to: z.string(),
    findings: z.array(consoleFindingSchema).meta({ description: `Oldest bill day first; at most ${MAX_FINDINGS}.` }),
    truncated: z.boolean().meta({ description: `More than ${MAX_FINDINGS} findings: only the first ${MAX_FINDINGS} are here; ask for a shorter range.` }),
  })
  .meta({ id: 'ConsoleReconciliationFindingList' });

/** The export's columns, in order: what docs/operate/console.md lists. */
export const EXPORT_COLUMNS = [
  'record_type',
  'out_trade_no',
  'out_request_no',
  'method',
  'status',
  'amount',
  'paid_amount',
  'refunded_amount',
  'subject',
  'reason',
  'alipay_trade_no',
  'created_at',
  'completed_at',
] as const;

type ExportRow = Record<(typeof EXPORT_COLUMNS)[number], string>;

const fen = (value: string | number | null | undefined) => (value === null || value === undefined ? '' : formatYuan(Number(value)));
/** An instant in Beijing time, ISO 8601 with +08:00, to the second. */
const BEIJING_TIME = `'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'`;
const beijing = (column: string) => `to_char(${column} AT TIME ZONE 'Asia/Shanghai', ${BEIJING_TIME})`;

/** A 400 naming each unknown parameter as its own field, as a bad value is named. */
function invalidQuery(error: z.ZodError) {
  const issues = error.issues.flatMap((issue): z.core.$ZodIssue[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ code: 'custom', path: [key], message: 'is not a parameter of this route (known: from, to)', input: undefined }))
      : [issue],
  );
  return invalidRequest(new z.ZodError(issues));
}

function parseRange(query: unknown) {
  const parsed = dayRangeQuery.safeParse(query);
  if (!parsed.success) throw invalidQuery(parsed.error);
  const { from, to } = parsed.data;
  return { from, to, start: beijingDayStart(from)!, end: beijingDayStart(to)! + DAY_MS };
}

export function consoleReportsRouter(pool: pg.Pool): Router {
  const router = Router();

  router.get('/reconciliation-findings', async (req, res) => {
    const { from, to } = parseRange(req.query);
    const merchant = res.locals.merchant as Merchant;
    // Only what each day's current run found (a re-run replaces a day's findings), and only about
    // orders of this merchant: a finding of no order of durapay's is left to the operators.
    const { rows } = await pool.query(
      `SELECT to_char(m.bill_date, 'YYYY-MM-DD') AS bill_date, p.out_trade_no, m.type, m.out_request_no, m.alipay_trade_no,
              m.local_amount_fen, m.gateway_amount_fen, m.detail
       FROM reconciliation_mismatches m
       JOIN reconciliations r ON r.app_id = m.app_id AND r.bill_date = m.bill_date AND r.run_id = m.run_id
       JOIN payments p ON p.id = m.payment_id
       WHERE p.merchant_id = $1 AND m.bill_date BETWEEN $2::date AND $3::date
       ORDER BY m.bill_date, m.id
       LIMIT $4`,
      [merchant.id, from, to, MAX_FINDINGS + 1],
    );
    res.json({
      from,
      to,
      findings: rows.slice(0, MAX_FINDINGS).map((row) => ({
        billDate: row.bill_date,
        outTradeNo: row.out_trade_no,
        kind: row.type,
        outRequestNo: row.out_request_no,
        alipayTradeNo: row.alipay_trade_no,
        localAmount: row.local_amount_fen === null ? null : fen(row.local_amount_fen),
        gatewayAmount: row.gateway_amount_fen === null ? null : fen(row.gateway_amount_fen),
        detail: row.detail,
      })),
      truncated: rows.length > MAX_FINDINGS,
    });
  });

  router.get('/exports/orders.csv', async (req, res) => {
    const { from, to, start, end } = parseRange(req.query);
    const merchant = res.locals.merchant as Merchant;
    res.set({
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="durapay-orders-${from}-${to}.csv"`,
      'Cache-Control': 'no-store',
    });
    // A byte-order mark, so Excel reads the file as UTF-8; formulas in a cell (a subject that
    // starts with =, +, - or @) are written as text.
    const csv = stringify({ header: true, columns: [...EXPORT_COLUMNS], bom: true, escape_formulas: true, record_delimiter: 'windows' });
    csv.pipe(res);
    let failed = false;
    csv.on('error', () => {
      failed = true;
      res.destroy();
    });
    // A client that goes away ends the export: nothing waits for a drain that will not come.
    res.once('close', () => {
      failed = true;
    });
    const write = (row: ExportRow) =>
      csv.write(row) || failed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              csv.off('drain', done);
              res.off('close', done);
              resolve();
            };
            csv.once('drain', done);
            res.once('close', done);
          });
    try {
      // Oldest first, EXPORT_BATCH orders at a time on a keyset (created_at, id), each order followed by its refunds.
      let after: { t: string; id: string } | undefined;
      for (;;) {
        const { rows: orders } = await pool.query(
          `SELECT id, out_trade_no, method, status, amount_fen, paid_amount_fen, refunded_amount_fen, subject, reason, alipay_trade_no,
                  ${beijing('created_at')} AS created, ${beijing('paid_at')} AS completed,
                  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time
           FROM payments
           WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3
             AND ($4::timestamptz IS NULL OR (created_at, id) > ($4::timestamptz, $5))
           ORDER BY created_at, id
           LIMIT $6`,
          [merchant.id, new Date(start), new Date(end), after?.t ?? null, after?.id ?? null, EXPORT_BATCH],
        );
        if (orders.length === 0) break;
        const { rows: refunds } = await pool.query(
          `SELECT payment_id, out_request_no, kind, status, amount_fen, reason, failure_reason,
                  ${beijing('created_at')} AS created, ${beijing('coalesce(alipay_refunded_at, settled_at)')} AS completed
           FROM refunds WHERE payment_id = ANY($1::text[]) ORDER BY payment_id, created_at, out_request_no`,
          [orders.map((o) => o.id)],
        );
        const refundsOf = new Map<string, typeof refunds>();
        for (const refund of refunds) refundsOf.set(refund.payment_id, [...(refundsOf.get(refund.payment_id) ?? []), refund]);
        for (const order of orders) {
          if (failed) return void csv.destroy();
          await write({
            record_type: 'payment',
            out_trade_no: order.out_trade_no,
            out_request_no: '',
            method: order.method,
            status: order.status,
            amount: fen(order.amount_fen),
            paid_amount: fen(order.paid_amount_fen),
            refunded_amount: fen(order.refunded_amount_fen),
            subject: order.subject,
            reason: order.reason ?? '',
            alipay_trade_no: order.alipay_trade_no ?? '',
            created_at: order.created,
            completed_at: order.completed ?? '',
          });
          for (const refund of refundsOf.get(order.id) ?? []) {
            await write({
              record_type: refund.kind === 'late_payment' ? 'late_payment_refund' : 'refund',
              out_trade_no: order.out_trade_no,
              out_request_no: refund.out_request_no,
              method: order.method,
              status: refund.status,
              amount: fen(refund.amount_fen),
              paid_amount: '',
              refunded_amount: '',
              subject: order.subject,
              reason: refund.status === 'FAILED' ? (refund.failure_reason ?? refund.reason ?? '') : (refund.reason ?? ''),
              alipay_trade_no: order.alipay_trade_no ?? '',
              created_at: refund.created,
              completed_at: refund.status === 'SUCCEEDED' ? (refund.completed ?? '') : '',
            });
          }
        }
        const last = orders[orders.length - 1]!;
        after = { t: last.cursor_time, id: last.id };
        if (orders.length < EXPORT_BATCH) break;
      }
      csv.end();
    } catch (err) {
      // The header is gone already: the download is cut short rather than ending as if complete.
      csv.destroy();
      res.destroy(err instanceof Error ? err : undefined);
    }
  });

  return router;
}
