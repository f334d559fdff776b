// Operator actions on orders, under /ops behind the OPS_TOKEN: list orders by status from the
// workflows' search attributes, query Alipay now, and decide a REVIEW order. Each action is an
// update on the order's workflow, so it stands in the order's own history; the API writes nothing.
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { formatYuan } from '../lib/money.js';
import { PAYMENT_WORKFLOW_TYPE, queryNowUpdate, resolveReviewUpdate, searchAttributes, type PaymentStatus } from '../lib/payment.js';
import { answerWithin, failureType } from './answer-time.js';
import { HttpError, invalidRequest } from './errors.js';
import { PAYMENT_STATUSES } from './list.js';
import { unknownFields } from './payments.js';
import { paymentResource, type PaymentRow } from './read-model.js';

export interface OpsPaymentsDeps {
  client: Client;
  pool: pg.Pool;
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
    olderThanMinutes: z
      .string({ error: MINUTES_RULE })
      .regex(/^\d{1,6}$/, MINUTES_RULE)
      .transform(Number)
      .refine((n) => n <= 525_600, MINUTES_RULE)
      .optional(),
    merchantId: z.string({ error: MERCHANT_RULE }).regex(/^[A-Za-z0-9]{1,32}$/, MERCHANT_RULE).optional(),
    limit: z.string({ error: LIMIT_RULE }).regex(/^\d{1,4}$/, LIMIT_RULE).transform(Number).refine((n) => n >= 1 && n <= MAX_OPS_LIST, LIMIT_RULE).optional(),
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

export const queryNowBody = z.strictObject(
  { note: note('must be at most 1000 characters').optional(), operator: operator.optional() },
  unknownFields,
);

const NOTE_RULE = 'must say why, in 1-1000 characters';
export const resolveReviewBody = z.strictObject(
  {
    outcome: z.enum(['PAID', 'CLOSED'], { error: 'must be PAID (after checking the money is at Alipay) or CLOSED' }),
    note: note(NOTE_RULE).refine((text) => text.trim().length > 0, NOTE_RULE),
    operator: operator.optional(),
  },
  unknownFields,
);

/** One order as the workflows' search attributes list it. */
interface OpsOrder {
  paymentId: string;
  outTradeNo: string | null;
  merchantId: string | null;
  status: PaymentStatus;
  amount: string | null;
  alipayTradeNo: string | null;
  startedAt: string;
  /** RUNNING while it waits for a payment, or for an operator (REVIEW). */
  workflowStatus: string;
}

export function opsPaymentsRouter(deps: OpsPaymentsDeps): Router {
  const router = Router();
  const { client, pool } = deps;

  async function requireRow(paymentId: string): Promise<PaymentRow> {
    const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [paymentId]);
    if (!rows[0]) throw new HttpError(404, 'NOT_FOUND', `no payment ${paymentId}`);
    return rows[0];
  }

  /** An update on the order's workflow; a refusal (the order has moved on) answers 409 with the order. */
  async function act(paymentId: string, what: string, refusals: Record<string, string>, call: () => Promise<unknown>) {
    const row = await requireRow(paymentId);
    try {
      await answerWithin(client, deps.answerTimeoutMs, what, call);
    } catch (err) {
      const code = failureType(err);
      // Temporal no longer has a finished order's workflow: the record says what it is.
      const refusal = code && refusals[code] ? refusals[code] : err instanceof WorkflowNotFoundError ? Object.values(refusals)[0] : undefined;
      if (!refusal) throw err;
      const now = await requireRow(paymentId);
      throw new HttpError(409, refusal, `order ${row.out_trade_no} is ${now.status}`, paymentResource(now, deps.publicBaseUrl));
    }
    return paymentResource(await requireRow(paymentId), deps.publicBaseUrl);
  }

  router.get('/payments', async (req, res) => {
    const parsed = opsPaymentsQuery.safeParse(req.query);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { status, olderThanMinutes, merchantId, limit = 100 } = parsed.data;
    // Every value is checked above against a closed set or a strict pattern before it joins the query.
    const clauses = [`WorkflowType = '${PAYMENT_WORKFLOW_TYPE}'`, `${searchAttributes.paymentStatus.name} = '${status}'`];
    if (merchantId) clauses.push(`${searchAttributes.merchantId.name} = '${merchantId}'`);
    if (olderThanMinutes !== undefined) clauses.push(`StartTime < '${new Date(Date.now() - olderThanMinutes * 60_000).toISOString()}'`);
    const orders: OpsOrder[] = [];
    await answerWithin(client, deps.answerTimeoutMs, 'list', async () => {
      for await (const execution of client.workflow.list({ query: clauses.join(' AND '), pageSize: Math.min(limit, 1000) })) {
        const attributes = execution.typedSearchAttributes;
        const amountFen = attributes.get(searchAttributes.amountFen);
        orders.push({
          paymentId: execution.workflowId,
          outTradeNo: attributes.get(searchAttributes.outTradeNo) ?? null,
          merchantId: attributes.get(searchAttributes.merchantId) ?? null,
          status: (attributes.get(searchAttributes.paymentStatus) ?? status) as PaymentStatus,
          amount: amountFen === undefined ? null : formatYuan(amountFen),
          alipayTradeNo: attributes.get(searchAttributes.alipayTradeNo) ?? null,
          startedAt: execution.startTime.toISOString(),
          workflowStatus: execution.status.name,
        });
        if (orders.length >= limit) break;
      }
    });
    res.json({ query: clauses.join(' AND '), orders });
  });

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
    res.json(
      await act(paymentId, 'resolution', { NotInReview: 'NOT_IN_REVIEW' }, () =>
        client.workflow.getHandle(paymentId).executeUpdate(resolveReviewUpdate, { args: [parsed.data] }),
      ),
    );
  });

  return router;
}
