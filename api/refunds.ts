// The merchant API for refunds: create (idempotent on out_request_no), list, read. Each refund is a
// workflow of its own; the amount is reserved in the record before Alipay hears of it.
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { formatYuan, parseYuan } from '../lib/payments/money.js';
import { PAID_STATUSES, searchAttributes } from '../lib/payments/payment.js';
import {
  REFUND_WORKFLOW_TYPE,
  refundOutcomeUpdate,
  refundWorkflowId,
  type RefundAnswer,
  type RefundWorkflowInput,
} from '../lib/payments/refund.js';
import { answerWithin, failureType } from './answer-time.js';
import { requestMemo } from './request-ids.js';
import { HttpError, invalidRequest } from './errors.js';
import { noteOrderParam, type Merchant } from './merchant.js';
import { NO_CONTROL_CHARACTERS, orderNumber, plainText, requireOrder, unknownFields, yuanAmount } from './payments.js';
import { findRefund, listRefunds, refundResource, type PaymentRow } from './read-model.js';

/** The workflow's signature, without importing workflow code into the API. */
type RefundWorkflow = (input: RefundWorkflowInput) => Promise<RefundAnswer>;

export interface RefundsDeps {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  /** How long a refund request waits for Alipay's answer before it answers PENDING. */
  answerTimeoutMs: number;
}

export const createRefundBody = z.strictObject(
  {
    outRequestNo: orderNumber.meta({
      description: "The refund's own number, unique within its order: Alipay's out_request_no and the idempotency key.",
      examples: ['refund-1'],
    }),
    amount: yuanAmount,
    reason: plainText(z.string({ error: 'must be a string of at most 256 characters' }).max(256, 'must be at most 256 characters'))
      .meta({ description: 'Why, for Alipay and the buyer: no control characters, well-formed Unicode.', pattern: NO_CONTROL_CHARACTERS })
      .optional(),
  },
  unknownFields,
).meta({
  id: 'CreateRefundRequest',
  examples: [
    { outRequestNo: 'refund-1', amount: '2.50' },
    { outRequestNo: 'refund-2', amount: '1.00', reason: 'One cup was missing' },
  ],
});

function refundConflict(outRequestNo: string, amountFen: number): HttpError {
  return new HttpError('REFUND_CONFLICT', `refund ${outRequestNo} exists with amount ${formatYuan(amountFen)}`);
}

export function refundsRouter(deps: RefundsDeps): Router {
  const router = Router();
  router.param('outTradeNo', noteOrderParam);
  const { client, pool } = deps;

  router.post('/payments/:outTradeNo/refunds', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const payment = await requireOrder(pool, merchant, req.params.outTradeNo!);
    const parsed = createRefundBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const { outRequestNo, reason } = parsed.data;
    const amountFen = parseYuan(parsed.data.amount)!;

    // The same request again is answered from the record; Alipay never hears it twice.
    const known = await findRefund(pool, payment.id, outRequestNo);
    if (known) {
      if (known.amount_fen !== amountFen) throw refundConflict(outRequestNo, known.amount_fen);
      res.status(200).json(refundResource(known));
      return;
    }
    if (!PAID_STATUSES.includes(payment.status)) {
      throw new HttpError('NOT_REFUNDABLE', `order ${payment.out_trade_no} is ${payment.status}`, { status: payment.status });
    }

    // The app the order was paid under, whatever app its merchant uses now.
    const input: RefundWorkflowInput = {
      appId: payment.app_id,
      outTradeNo: payment.alipay_out_trade_no,
      outRequestNo,
      amountFen,
      reason,
      kind: 'merchant',
    };
    const startWorkflowOperation = new WithStartWorkflowOperation<RefundWorkflow>(REFUND_WORKFLOW_TYPE, {
      workflowId: refundWorkflowId(payment.app_id, payment.alipay_out_trade_no, outRequestNo),
      taskQueue: deps.taskQueue,
      args: [input],
      // A running refund is joined; a finished one may run again, and its reservation answers
      // from the record (a refused request can be made again once money is free).
      workflowIdConflictPolicy: 'USE_EXISTING',
      // Its log lines carry the id of the request that started it (a repeat finds it started).
      ...requestMemo(),
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: searchAttributes.outTradeNo, value: payment.out_trade_no },
        { key: searchAttributes.amountFen, value: amountFen },
        { key: searchAttributes.merchantId, value: merchant.id },
      ],
    });
    let answer: RefundAnswer | undefined;
    try {
      answer = await answerWithin(client, deps.answerTimeoutMs, 'refund', () =>
        client.workflow.executeUpdateWithStart(refundOutcomeUpdate, { args: [{ amountFen }], startWorkflowOperation }),
      );
    } catch (err) {
      // Another amount under a number a running refund has: the same answer as a repeat after it.
      if (failureType(err) === 'RefundConflict') {
        const other = await findRefund(pool, payment.id, outRequestNo);
        throw refundConflict(outRequestNo, other?.amount_fen ?? amountFen);
      }
      // Reserved but not settled in time: PENDING, and a GET shows the outcome later.
      if (!(err instanceof HttpError && err.status === 503)) throw err;
      const pending = await findRefund(pool, payment.id, outRequestNo);
      if (!pending) throw err;
      if (pending.amount_fen !== amountFen) throw refundConflict(outRequestNo, pending.amount_fen);
      res.status(201).json(refundResource(pending));
      return;
    }
    if (!answer.ok) throw refusal(answer, payment);
    const refund = (await findRefund(pool, payment.id, outRequestNo))!;
    if (refund.amount_fen !== amountFen) throw refundConflict(outRequestNo, refund.amount_fen);
    res.status(201).json(refundResource(refund));
  });

  router.get('/payments/:outTradeNo/refunds', async (req, res) => {
    const payment = await requireOrder(pool, res.locals.merchant as Merchant, req.params.outTradeNo!);
    res.json({ refunds: (await listRefunds(pool, payment.id)).map(refundResource) });
  });

  router.get('/payments/:outTradeNo/refunds/:outRequestNo', async (req, res) => {
    const payment = await requireOrder(pool, res.locals.merchant as Merchant, req.params.outTradeNo!);
    const parsed = orderNumber.safeParse(req.params.outRequestNo);
    if (!parsed.success) throw invalidRequest(parsed.error);
    const refund = await findRefund(pool, payment.id, parsed.data);
    if (!refund) throw new HttpError('NOT_FOUND', `no refund ${parsed.data} of payment ${payment.out_trade_no}`);
    res.json(refundResource(refund));
  });

  return router;
}

function refusal(answer: Extract<RefundAnswer, { ok: false }>, payment: PaymentRow): HttpError {
  switch (answer.code) {
    case 'REFUND_EXCEEDS_REFUNDABLE':
      return new HttpError(answer.code, answer.message, { refundable: formatYuan(answer.refundableFen ?? 0) });
    case 'NOT_REFUNDABLE':
      return new HttpError(answer.code, answer.message, { status: payment.status });
    default:
      return new HttpError(answer.code, answer.message);
  }
}
