// Operator endpoints under /ops, behind `Authorization: Bearer <OPS_TOKEN>`: start a day's
// reconciliation with Alipay's trade bill and read what it found; act on orders (api/ops-payments.ts). The API never calls Alipay and
// writes nothing: the reconciliation workflow and its activities do the work and keep the record.
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { formatYuan } from '../lib/payments/money.js';
import {
  beijingDay,
  beijingDayStart,
  RECONCILIATION_WORKFLOW_TYPE,
  reconciliationWorkflowId,
  type ReconciliationInput,
  type ReconciliationSettings,
  type ReconciliationStatus,
} from '../lib/payments/reconciliation.js';
import { HttpError, invalidRequest } from './errors.js';
import { wholeNumberParam } from './schemas.js';
import { fromAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { opsPaymentsRouter } from './ops-payments.js';
import { opsTimelineRouter } from './ops-timeline.js';
import { unknownFields } from './payments.js';

export interface OpsDeps {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  /** Unset: every /ops request is refused. */
  opsToken?: string;
  settings: ReconciliationSettings;
  answerTimeoutMs: number;
  publicBaseUrl: string;
  /** TEMPORAL_UI_URL: the base of the workflow links in an order's timeline. */
  temporalUiUrl?: string;
  /** Who may call: default the OPS_TOKEN check; the console mounts the same router behind its operators' sessions. */
  authorize?: RequestHandler;
}

const DATE_RULE = 'must be a Beijing calendar day as YYYY-MM-DD, e.g. 2025-01-31';
const NOT_LATER_RULE = 'must not be later than today in Beijing (a day has a bill only once it is over)';
export const MAX_MISMATCH_PAGE = 1000;
const PAGE_RULE = `must be a whole number from 1 to ${MAX_MISMATCH_PAGE}`;
const OFFSET_RULE = 'must be a whole number from 0';

/** Which Alipay app's bill: each app has its own (default: the configured app). */
const APP_ID_RULE = 'must be an Alipay app id (digits) of this engine';
const alipayAppId = z.string({ error: APP_ID_RULE }).regex(/^\d{6,32}$/, APP_ID_RULE).meta({ description: "The Alipay app whose bill it is; default: the configured app." });

export const reconciliationDate = z
  .string({ error: DATE_RULE })
  .refine((text) => beijingDayStart(text) !== undefined, DATE_RULE)
  // Years before 0100 are refused too (Date.UTC reads them as 19xx).
  .meta({ description: 'A Beijing calendar day, YYYY-MM-DD.', format: 'date', pattern: '^(?!00)\\d{4}-\\d{2}-\\d{2}$', examples: ['2025-01-31'] });

export const startReconciliationBody = z.strictObject(
  {
    date: reconciliationDate.refine((text) => text <= beijingDay(Date.now()), NOT_LATER_RULE).meta({
      description: 'The Beijing day to reconcile, YYYY-MM-DD, today at the latest (a later day is refused; today\'s bill only exists tomorrow: the run ends BILL_NOT_READY).',
    }),
    appId: alipayAppId.optional(),
    rerun: z
      .boolean({ error: 'must be true or false' })
      .meta({ description: 'Reconcile the day again even though it was reconciled before (refused while a run of the day is going on).' })
      .optional(),
  },
  unknownFields,
).meta({ id: 'StartReconciliationRequest', examples: [{ date: '2025-01-31' }, { date: '2025-01-31', rerun: true }] });

export const mismatchQuery = z.strictObject(
  {
    appId: alipayAppId.optional(),
    limit: wholeNumberParam(1, MAX_MISMATCH_PAGE, PAGE_RULE, `Mismatches in this answer (default and most: ${MAX_MISMATCH_PAGE}); mismatchCount says how many there are.`).optional(),
    offset: wholeNumberParam(0, 999_999_999, OFFSET_RULE, 'Mismatches to skip, in the order they were found.').optional(),
  },
  unknownFields,
);

/** Bearer OPS_TOKEN, compared in constant time (as SHA-256 digests, so lengths never leak). */
export function requireOpsToken(opsToken: string | undefined): RequestHandler {
  const expected = opsToken ? createHash('sha256').update(opsToken).digest() : undefined;
  return (req, res, next) => {
    res.set('WWW-Authenticate', 'Bearer realm="durapay-ops"');
    const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(req.get('authorization') ?? '');
    if (!expected) return next(new HttpError('OPS_UNAUTHORIZED', 'the /ops endpoints are closed: OPS_TOKEN is not set on this server'));
    if (!match) return next(new HttpError('OPS_UNAUTHORIZED', 'send Authorization: Bearer <OPS_TOKEN>'));
    const given = createHash('sha256').update(match[1]!).digest();
    if (!timingSafeEqual(given, expected)) return next(new HttpError('OPS_UNAUTHORIZED', 'the bearer token is not this server\'s OPS_TOKEN'));
    res.removeHeader('WWW-Authenticate');
    next();
  };
}

interface ReconciliationRow {
  status: ReconciliationStatus;
  run_id: string;
  reason: string | null;
  gateway_payment_count: number | null;
  gateway_payment_fen: number | null;
  local_payment_count: number | null;
  local_payment_fen: number | null;
  gateway_refund_count: number | null;
  gateway_refund_fen: number | null;
  local_refund_count: number | null;
  local_refund_fen: number | null;
  mismatch_count: number | null;
  started_at: Date;
  finished_at: Date | null;
}

const side = (count: number | null, fen: number | null) => ({ count: count ?? 0, amount: formatYuan(fen ?? 0) });
const yuanOrNull = (fen: number | null) => (fen === null ? null : formatYuan(fen));

export function opsRouter(deps: OpsDeps): Router {
  const router = Router();
  const { client, pool } = deps;

  /** The configured app, or one registered in alipay_apps; a 404 otherwise. */
  async function requireApp(appId: string | undefined): Promise<string> {
    if (!appId || appId === deps.settings.appId) return deps.settings.appId;
    const { rowCount } = await pool.query('SELECT 1 FROM alipay_apps WHERE app_id = $1', [appId]);
    if (!rowCount) throw new HttpError('NOT_FOUND', `no Alipay app ${appId} in this engine`);
    return appId;
  }
  router.use(deps.authorize ?? requireOpsToken(deps.opsToken));
  router.use(express.json({ limit: '4kb' }));
  router.use(opsPaymentsRouter({ client, pool, taskQueue: deps.taskQueue, answerTimeoutMs: deps.answerTimeoutMs, publicBaseUrl: deps.publicBaseUrl }));
  router.use(opsTimelineRouter({ client, pool, answerTimeoutMs: deps.answerTimeoutMs, temporalUiUrl: deps.temporalUiUrl }));

  /** The run of the day Temporal is running now, if any (a rerun that has not written yet, say). */
  async function runningRunId(appId: string, date: string): Promise<string | undefined> {
    try {
      const description = await client.withDeadline(Date.now() + 2_000, () => client.workflow.getHandle(reconciliationWorkflowId(appId, date)).describe());
      return description.status.name === 'RUNNING' ? description.runId : undefined;
    } catch {
      // Never started, forgotten after Temporal's retention, or Temporal unreachable: the record answers alone.
      return undefined;
    }
  }

  /** The day as the record and Temporal have it; undefined when it was never reconciled. */
  async function reconciliation(appId: string, date: string, page: { limit: number; offset: number }) {
    const [{ rows }, runningRun] = await Promise.all([
      pool.query<ReconciliationRow>('SELECT * FROM reconciliations WHERE app_id = $1 AND bill_date = $2', [appId, date]),
      runningRunId(appId, date),
    ]);
    const row = rows[0];
    if (!row && !runningRun) return undefined;
    // A run Temporal has started and that has not written the record yet is RUNNING, whatever an
    // earlier run left there.
    const current = row && (!runningRun || runningRun === row.run_id) ? row : undefined;
    const status: ReconciliationStatus = current?.status ?? 'RUNNING';
    const done = status === 'DONE' && current?.mismatch_count !== null && current !== undefined;
    const mismatches = done
      ? (
          await pool.query(
            `SELECT m.type, m.out_trade_no AS alipay_out_trade_no, p.merchant_id, p.out_trade_no, m.out_request_no, m.alipay_trade_no,
                    m.local_amount_fen, m.gateway_amount_fen, m.detail
             FROM reconciliation_mismatches m LEFT JOIN payments p ON p.id = m.payment_id
             WHERE m.run_id = $1 ORDER BY m.id LIMIT $2 OFFSET $3`,
            [current.run_id, page.limit, page.offset],
          )
        ).rows
      : [];
    return {
      date,
      status,
      reason: current?.reason ?? null,
      startedAt: current?.started_at.toISOString() ?? null,
      finishedAt: current?.finished_at?.toISOString() ?? null,
      totals: done
        ? {
            payments: {
              gateway: side(current.gateway_payment_count, current.gateway_payment_fen),
              local: side(current.local_payment_count, current.local_payment_fen),
            },
            refunds: {
              gateway: side(current.gateway_refund_count, current.gateway_refund_fen),
              local: side(current.local_refund_count, current.local_refund_fen),
            },
          }
        : null,
      mismatchCount: done ? current.mismatch_count! : 0,
      mismatches: mismatches.map((m) => ({
        type: m.type,
        // The order as its merchant knows it; Alipay's number beside it. An order durapay has no
        // record of is named by what its number says, if it is one of ours.
        merchantId: m.merchant_id ?? fromAlipayOutTradeNo(m.alipay_out_trade_no)?.merchantId ?? null,
        outTradeNo: m.out_trade_no ?? fromAlipayOutTradeNo(m.alipay_out_trade_no)?.orderNo ?? null,
        alipayOutTradeNo: m.alipay_out_trade_no,
        alipayTradeNo: m.alipay_trade_no,
        localAmount: yuanOrNull(m.local_amount_fen),
        gatewayAmount: yuanOrNull(m.gateway_amount_fen),
        detail: m.detail,
        outRequestNo: m.out_request_no,
      })),
    };
  }

  router.post('/reconciliations', async (req, res) => {
    const parsed = startReconciliationBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { date, rerun = false } = parsed.data;
    const appId = await requireApp(parsed.data.appId);
    const firstPage = { limit: MAX_MISMATCH_PAGE, offset: 0 };
    if (!rerun) {
      // Idempotent per day: a day reconciled (or being reconciled) answers as it stands.
      const known = await reconciliation(appId, date, firstPage);
      if (known) return void res.status(202).json(known);
    }
    const input: ReconciliationInput = { date, settings: { ...deps.settings, appId } };
    try {
      await client.workflow.start(RECONCILIATION_WORKFLOW_TYPE, {
        workflowId: reconciliationWorkflowId(appId, date),
        taskQueue: deps.taskQueue,
        args: [input],
        // A run of the day going on is joined; a finished one is only run again when asked to.
        workflowIdConflictPolicy: rerun ? 'FAIL' : 'USE_EXISTING',
        workflowIdReusePolicy: rerun ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (rerun) throw new HttpError('RECONCILIATION_RUNNING', `the reconciliation of ${date} is running; ask for a rerun once it has ended`);
      // Finished before, and Temporal still has it while the record does not: answer below.
    }
    res.status(202).json((await reconciliation(appId, date, firstPage)) ?? { ...notStartedYet(date) });
  });

  router.get('/reconciliations/:date', async (req, res) => {
    const date = reconciliationDate.safeParse(req.params.date);
    if (!date.success) throw invalidRequest(new z.ZodError(date.error.issues.map((issue) => ({ ...issue, path: ['date'] }))));
    const query = mismatchQuery.safeParse(req.query);
    if (!query.success) throw invalidRequest(query.error);
    const appId = await requireApp(query.data.appId);
    const found = await reconciliation(appId, date.data, { limit: query.data.limit ?? MAX_MISMATCH_PAGE, offset: query.data.offset ?? 0 });
    if (!found) throw new HttpError('NOT_FOUND', `no reconciliation of ${date.data}`);
    res.json(found);
  });

  return router;
}

/** A run just started whose first step has not been recorded yet. */
function notStartedYet(date: string) {
  return { date, status: 'RUNNING' as const, reason: null, startedAt: null, finishedAt: null, totals: null, mismatchCount: 0, mismatches: [] };
}
