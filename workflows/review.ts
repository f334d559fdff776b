// An operator's decision on a REVIEW order, after checking Alipay and the merchant's books. The
// same steps run in the order's payment workflow while it waits for the decision, and in a review
// workflow of its own (review:<paymentId>) when the REVIEW was written after the payment workflow
// had finished (a late payment, a reconciliation finding, a late refund Alipay refused), so every
// resolution stands in Temporal's history.
//
// - PAID: the buyer's money is kept; the order records Alipay's own payment time and amount, and
//   the merchant can refund it like any paid order.
// - CLOSED: money Alipay still holds for the order goes back to the buyer first, through the refund
//   workflow, under the number of a refund Alipay refused before (late-<trade_no>) or else
//   review-<trade_no>: never a second number for the same money. The order reads CLOSED only once
//   Alipay has confirmed the refund; a refused refund keeps it in REVIEW with the reason.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  executeChild,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PaymentChange, PaymentEventType, PaymentRecord, TradeNotFound } from '../lib/payments/activity-contracts.js';
import { formatYuan, parseAlipayAmount } from '../lib/payments/money.js';
import {
  isPaidReport as isPaid,
  resolveReviewUpdate,
  searchAttributes,
  type PaymentStatus,
  type ReviewResolution,
  type ReviewWorkflowInput,
  type TradeReport,
} from '../lib/payments/payment.js';
import { refundWorkflowId, reviewRefundRequestNo } from '../lib/payments/refund.js';
import { alipay, ledger } from './durable-calls.js';
import { errorMessage, isUnplaceable } from './failures.js';
import { refundWorkflow } from './refund.js';

type Record = (type: PaymentEventType, data: { [key: string]: unknown }, change?: PaymentChange) => Promise<unknown>;

/** Checks what an operator sent; the same rule for the payment workflow and the review workflow. */
export function validateResolution(resolution: ReviewResolution | undefined): void {
  if (!resolution || !['PAID', 'CLOSED'].includes(resolution.outcome) || typeof resolution.note !== 'string' || resolution.note.trim() === '') {
    throw ApplicationFailure.nonRetryable('a resolution needs an outcome (PAID or CLOSED) and a note', 'InvalidResolution');
  }
}

export function notInReview(orderNo: string, status: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`order ${orderNo} is ${status}, not REVIEW`, 'NotInReview');
}

/** Resolves one REVIEW order; returns the change it recorded (REVIEW again when a refund failed). */
export async function resolveReviewedOrder(args: {
  appId: string;
  /** Alipay's out_trade_no of the order. */
  outTradeNo: string;
  order: PaymentRecord;
  resolution: ReviewResolution;
  record: Record;
  /** alipay.trade.query, recorded on the order. */
  queryTrade: () => Promise<TradeReport | TradeNotFound>;
}): Promise<PaymentChange> {
  const { order, resolution, record } = args;
  const { outcome, note, operator } = resolution;
  const decided = `resolved as ${outcome}${operator ? ` by ${operator}` : ''} after review: ${note}`;
  const action = { outcome, note, ...(operator ? { operator } : {}), reviewReason: order.reason };

  // Alipay's word now decides what money it holds; the report kept at REVIEW is the fallback.
  let report: TradeReport | TradeNotFound | undefined;
  try {
    report = await args.queryTrade();
  } catch (err) {
    if (!isUnplaceable(err)) throw err;
    if (outcome === 'CLOSED') return stayInReview(`Alipay's answer to the check could not be placed (${errorMessage(err)}); nothing was refunded`);
  }
  const paid = report && isPaid(report) ? report : undefined;
  const tradeNo = paid?.tradeNo ?? order.alipayReport?.tradeNo ?? order.alipayTradeNo ?? order.latePayment?.tradeNo;

  if (outcome === 'PAID') {
    const paidFen = parseAlipayAmount(paid?.totalAmount ?? order.alipayReport?.totalAmount) ?? order.paidAmountFen ?? order.amountFen;
    const refundedFen = order.refundedAmountFen ?? 0;
    const status: PaymentStatus = refundedFen === 0 ? 'PAID' : refundedFen >= paidFen ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
    const change: PaymentChange = {
      status,
      paidAmountFen: paidFen,
      // Alipay's payment time: the day its bill lists the payment, whenever the operator decides.
      paidAt: paid?.paidAt ?? order.alipayReport?.paidAt ?? order.paidAt ?? new Date().toISOString(),
      reason: decided,
      ...(tradeNo ? { alipayTradeNo: tradeNo } : {}),
    };
    await record('review_resolved', action, change);
    return change;
  }

  // CLOSED: what Alipay holds of the trade (its total less the refunds done) goes back first.
  const totalFen = paid ? parseAlipayAmount(paid.totalAmount) : undefined;
  const heldFen = totalFen === undefined ? 0 : totalFen - (order.refundsDoneFen ?? 0);
  if (heldFen > 0 && tradeNo) {
    const refusedBefore = order.latePayment?.refundStatus === 'FAILED' ? order.latePayment.outRequestNo : undefined;
    const outRequestNo = refusedBefore ?? reviewRefundRequestNo(tradeNo);
    const answer = await executeChild(refundWorkflow, {
      workflowId: refundWorkflowId(args.appId, args.outTradeNo, outRequestNo),
      args: [{ appId: args.appId, outTradeNo: args.outTradeNo, outRequestNo, amountFen: heldFen, heldFen, kind: 'review', tradeNo, reason: 'returned after review' }],
      typedSearchAttributes: [
        { key: searchAttributes.amountFen, value: heldFen },
        { key: searchAttributes.alipayTradeNo, value: tradeNo },
      ],
    });
    if (!answer.ok) return stayInReview(`the refund of ${formatYuan(heldFen)} (${outRequestNo}) was refused: ${answer.message}`);
    if (answer.refund.status !== 'SUCCEEDED') {
      return stayInReview(`Alipay refused the refund of ${formatYuan(heldFen)} (${outRequestNo}): ${answer.refund.failureReason ?? 'no reason given'}; the money is still held`);
    }
    const change: PaymentChange = {
      status: 'CLOSED',
      reason: `${decided}; ${formatYuan(heldFen)} refunded to the buyer (${outRequestNo})`,
      // Money Alipay took for an order that never counted as paid stays on the record as a late
      // payment given back: the merchant reads what came and went, and the reconciliation pairs
      // the bill's payment with it.
      ...(order.paidAmountFen === undefined
        ? { latePayment: { tradeNo, amountFen: totalFen!, detectedAt: order.latePayment?.detectedAt ?? new Date().toISOString(), outRequestNo, refundStatus: 'SUCCEEDED' as const } }
        : {}),
    };
    await record('review_resolved', { ...action, refunded: { outRequestNo, amountFen: heldFen } }, change);
    return change;
  }
  const change: PaymentChange = { status: 'CLOSED', reason: decided };
  await record('review_resolved', action, change);
  return change;

  async function stayInReview(why: string): Promise<PaymentChange> {
    const reason = `resolution as CLOSED${operator ? ` by ${operator}` : ''} failed: ${why}`;
    log.error('REVIEW RESOLUTION FAILED: the order stays in REVIEW', { reason });
    const change: PaymentChange = { status: 'REVIEW', reason };
    await record('anomaly', { reason, resolution: action }, change);
    return change;
  }
}

const { findPaymentRecord, recordPaymentEvent } = ledger;

/**
 * Started (update-with-start, by the /ops API) for a REVIEW order whose payment workflow has
 * finished: takes the operator's resolution, carries it out, and ends.
 */
export async function reviewWorkflow({ appId, outTradeNo, paymentId }: ReviewWorkflowInput): Promise<PaymentRecord | undefined> {
  let eventSeq = 0;
  const record: Record = (type, data, change) =>
    recordPaymentEvent({ paymentId, eventKey: `${workflowInfo().runId}:${++eventSeq}`, type, data, change });
  let busy = false;
  let handled = 0;
  let last: PaymentRecord | undefined;

  setHandler(
    resolveReviewUpdate,
    async (resolution) => {
      // One resolution at a time: a second one reads the order the first one left.
      await condition(() => !busy);
      busy = true;
      try {
        const order = await findPaymentRecord({ paymentId });
        if (!order || order.status !== 'REVIEW') throw notInReview(order?.merchantOrderNo ?? outTradeNo, order?.status ?? 'unknown');
        const change = await resolveReviewedOrder({
          appId,
          outTradeNo,
          order,
          resolution,
          record,
          queryTrade: async () => {
            const report = await alipay.queryTrade({ appId, outTradeNo });
            await record('query_result', { ...report });
            return report;
          },
        });
        upsertSearchAttributes([{ key: searchAttributes.paymentStatus, value: change.status ?? order.status }]);
        last = (await findPaymentRecord({ paymentId })) ?? order;
        return last;
      } finally {
        busy = false;
        handled += 1;
      }
    },
    { validator: validateResolution },
  );

  // Started for one resolution: done once it (and any that came with it) has been carried out.
  await condition(() => handled > 0 && allHandlersFinished(), '1h');
  await condition(allHandlersFinished);
  return last;
}
