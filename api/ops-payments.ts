// Operator actions on orders, under /ops behind the OPS_TOKEN: list orders by their recorded status,
// query Alipay now, and decide a REVIEW order. Each action is an update on a workflow (the order's
// own, or for a finished order a review workflow of its own), so it stands in Temporal's history;
// the API writes nothing.
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { formatYuan } from '../lib/payments/money.js';
import {
  queryNowUpdate,
  resolveReviewUpdate,
  REVIEW_WORKFLOW_TYPE,
  reviewWorkflowId,
  searchAttributes,
  type PaymentStatus,
  type ReviewWorkflowInput,
} from '../lib/payments/payment.js';
import { answerWithin, failureType } from './answer-time.js';
import type { ErrorCode } from './error-codes.js';
import { HttpError, invalidRequest } from './errors.js';
import { wholeNumberParam, type OpsOrder } from './schemas.js';
import { PAYMENT_STATUSES } from '../lib/payments/payment.js';
import { unknownFields } from './payments.js';
import { paymentResource, type PaymentRow } from './read-model.js';

export interface OpsPaymentsDeps {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  answerTimeoutMs: number;
  publicBaseUrl: string;
}

export const MAX_OPS_LIST = 1000;
const LIMIT_RULE = `must be a whole number from 1 to ${MAX_OPS_LIST}`;
const MINUTES_RULE = 'must be a whole number of minutes from 0 to 525600';
const MERCHANT_RULE = 'must be a merchant id (letters and digits)';

export const opsPaymentsQuery = z.strictObject(
  {
    status: z.enum(PAYMENT_STATUSES, { error: `must be one of ${PAYMENT_STATUSES.join(', ')}` }),
    olderThanMinutes: wholeNumberParam(0, 525_600, MINUTES_RULE, 'Only orders created more than this many minutes ago.').optional(),
    merchantId: z.string({ error: MERCHANT_RULE }).regex(/^[A-Za-z0-9]{1,32}$/, MERCHANT_RULE).optional(),
    limit: wholeNumberParam(1, MAX_OPS_LIST, LIMIT_RULE, `At most this many (default 100, at most ${MAX_OPS_LIST}).`).optional(),
  },
  unknownFields,
);

const operator = z
  .string({ error: 'must be 1-64 characters naming who acts' })
  .min(1, 'must be 1-64 characters naming who acts')
  .max(64, 'must be 1-64 characters naming who acts')
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
  .meta({ description: 'Who acts (a name or an e-mail address), kept in the history.' });
const note = (rule: string) =>
  z.string({ error: rule }).max(1000, rule).regex(/^[^\u0000-\u0008\u000b-\u001f\u007f]*$/, 'must not contain control characters');

export const queryNowBody = z
  .strictObject({ note: note('must be at most 1000 characters').optional(), operator: operator.optional() }, unknownFields)
  .meta({ id: 'QueryNowRequest', examples: [{}, { note: 'buyer says they paid', operator: 'ops@shop.example.com' }] });

const NOTE_RULE = 'must say why, in 1-1000 characters';
export const resolveReviewBody = z.strictObject(
  {
    outcome: z.enum(['PAID', 'CLOSED'], { error: 'must be PAID (after checking the money is at Alipay) or CLOSED' }),
    note: note(NOTE_RULE)
      .refine((text) => text.trim().length > 0, NOTE_RULE)
      .meta({
        description: 'Why, kept in the history: 1-1000 characters, not blank, no control characters but tab and line breaks.',
        minLength: 1,
        pattern: '^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u0008\\u000b-\\u001f\\u007f]*$',
      }),
    operator: operator.optional(),
  },
  unknownFields,
).meta({
  id: 'ResolveReviewRequest',
  examples: [{ outcome: 'PAID', note: "Alipay's bill shows the payment", operator: 'ops@shop.example.com' }],
});


/** A review resolution's workflow, without importing workflow code into the API. */
type ReviewWorkflow = (input: ReviewWorkflowInput) => Promise<unknown>;

export function opsPaymentsRouter(deps: OpsPaymentsDeps): Router {
  const router = Router();
  const { client, pool } = deps;

  async function requireRow(paymentId: string): Promise<PaymentRow> {
    const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [paymentId]);
    if (!rows[0]) throw new HttpError('NOT_FOUND', `no payment ${paymentId}`);
    return rows[0];
  }

  /** An update on the order's workflow; a refusal (the order has moved on) answers 409 with the order. */
  async function act(paymentId: string, what: string, refusals: Record<string, ErrorCode>, call: () => Promise<unknown>) {
    const row = await requireRow(paymentId);
    try {
      await answerWithin(client, deps.answerTimeoutMs, what, call);
    } catch (err) {
      const code = failureType(err);
      // Temporal no longer has a finished order's workflow: the record says what it is.
      const refusal = code && refusals[code] ? refusals[code] : err instanceof WorkflowNotFoundError ? Object.values(refusals)[0] : undefined;
      if (!refusal) throw err;
      const now = await requireRow(paymentId);
      throw new HttpError(refusal, `order ${row.out_trade_no} is ${now.status}`, paymentResource(now, deps.publicBaseUrl));
    }
    return paymentResource(await requireRow(paymentId), deps.publicBaseUrl);
  }

  router.get('/payments', async (req, res) => {
    const parsed = opsPaymentsQuery.safeParse(req.query);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { status, olderThanMinutes, merchantId, limit = 100 } = parsed.data;
    // The record lists every order in a status, whichever workflow put it there.
    const clauses = ['status = $1'];
    const values: unknown[] = [status];
    if (merchantId) clauses.push(`merchant_id = $${values.push(merchantId)}`);
    if (olderThanMinutes !== undefined) clauses.push(`created_at < $${values.push(new Date(Date.now() - olderThanMinutes * 60_000))}`);
    const { rows } = await pool.query<PaymentRow & { id: string; merchant_id: string | null }>(
      `SELECT * FROM payments WHERE ${clauses.join(' AND ')} ORDER BY created_at, id LIMIT $${values.push(limit)}`,
      values,
    );
    const workflowStatuses = await answerWithin(client, deps.answerTimeoutMs, 'list', () => describeAll(rows.map((row) => row.id)));
    const orders: OpsOrder[] = rows.map((row) => ({
      paymentId: row.id,
      outTradeNo: row.out_trade_no,
      merchantId: row.merchant_id,
      status: row.status,
      amount: formatYuan(row.amount_fen),
      alipayTradeNo: row.alipay_trade_no,
      reason: row.reason,
      startedAt: row.created_at.toISOString(),
      workflowStatus: workflowStatuses.get(row.id) ?? null,
    }));
    res.json({ orders });
  });

  /** Each payment workflow's status, a few at a time; absent when Temporal no longer has it. */
  async function describeAll(paymentIds: string[]): Promise<Map<string, string>> {
    const statuses = new Map<string, string>();
    let next = 0;
    const describers = Array.from({ length: Math.min(8, paymentIds.length) }, async () => {
      for (let id = paymentIds[next++]; id !== undefined; id = paymentIds[next++]) {
        try {
          statuses.set(id, (await client.workflow.getHandle(id).describe()).status.name);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
    });
    await Promise.all(describers);
    return statuses;
  }

  router.post('/payments/:paymentId/query-now', async (req, res) => {
    const parsed = queryNowBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { paymentId } = req.params as { paymentId: string };
    res.json(
      await act(paymentId, 'query', { NotWaiting: 'NOT_WAITING' }, () =>
        client.workflow.getHandle(paymentId).executeUpdate(queryNowUpdate, { args: [parsed.data] }),
      ),
    );
  });

  router.post('/payments/:paymentId/resolve-review', async (req, res) => {
    const parsed = resolveReviewBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { paymentId } = req.params as { paymentId: string };
    const row = await requireRow(paymentId);
    if (row.status !== 'REVIEW') throw new HttpError('NOT_IN_REVIEW', `order ${row.out_trade_no} is ${row.status}`, paymentResource(row, deps.publicBaseUrl));
    // The order's payment workflow decides while it waits for this; a finished one's REVIEW is
    // decided in a review workflow of its own.
    const waiting = await paymentWorkflowRunning(paymentId);
    const resolved = await act(paymentId, 'resolution', { NotInReview: 'NOT_IN_REVIEW' }, () =>
      waiting
        ? client.workflow.getHandle(paymentId).executeUpdate(resolveReviewUpdate, { args: [parsed.data] })
        : client.workflow.executeUpdateWithStart(resolveReviewUpdate, { args: [parsed.data], startWorkflowOperation: reviewStart(row) }),
    );
    // Still in REVIEW: the resolution could not be carried out (Alipay refused the refund).
    if (resolved.status === 'REVIEW') throw new HttpError('RESOLUTION_REFUSED', resolved.reason ?? `order ${row.out_trade_no} stays in REVIEW`, resolved);
    res.json(resolved);
  });

  async function paymentWorkflowRunning(paymentId: string): Promise<boolean> {
    try {
      return (await client.workflow.getHandle(paymentId).describe()).status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  function reviewStart(row: PaymentRow & { id: string; app_id: string; merchant_id: string | null }) {
    return new WithStartWorkflowOperation<ReviewWorkflow>(REVIEW_WORKFLOW_TYPE, {
      workflowId: reviewWorkflowId(row.id),
      taskQueue: deps.taskQueue,
      args: [{ appId: row.app_id, outTradeNo: row.alipay_out_trade_no, paymentId: row.id }],
      // A second operator joins the running resolution; an order back in REVIEW later gets a new one.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: searchAttributes.paymentStatus, value: 'REVIEW' },
        { key: searchAttributes.outTradeNo, value: row.out_trade_no },
        { key: searchAttributes.amountFen, value: Number(row.amount_fen) },
        ...(row.merchant_id ? [{ key: searchAttributes.merchantId, value: row.merchant_id }] : []),
        ...(row.alipay_trade_no ? [{ key: searchAttributes.alipayTradeNo, value: row.alipay_trade_no }] : []),
      ],
    });
  }

  return router;
}
