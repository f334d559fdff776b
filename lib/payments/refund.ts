// Refunds: the domain shared by the refund workflow, its activities and the API. One refund is
// one workflow, keyed by the order and the merchant's out_request_no (Alipay's idempotency key).
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export type RefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';
/** merchant: asked by the merchant. late_payment: money paid after the order closed, given back.
 *  review: an operator resolved a REVIEW order as CLOSED and the money Alipay holds goes back. */
export type RefundKind = 'merchant' | 'late_payment' | 'review';

export interface RefundWorkflowInput {
  appId: string;
  /** Alipay's out_trade_no of the order (lib/alipay/order-numbers.ts). */
  outTradeNo: string;
  outRequestNo: string;
  amountFen: number;
  reason?: string;
  kind: RefundKind;
  /** For a late payment: the trade whose money goes back. */
  tradeNo?: string;
  /** For a review refund: what Alipay holds of the trade now (its total less the refunds done), the
   *  most it may give back. */
  heldFen?: number;
}

/** Refusals that can pass: the same out_request_no is sent again later (Alipay: a balance refusal
 *  passes once the merchant's balance is topped up; a frozen trade can be unfrozen). */
export const PASSING_REFUND_REFUSALS: readonly string[] = [
  'ACQ.SELLER_BALANCE_NOT_ENOUGH',
  'ACQ.SYSTEM_ERROR',
  'aop.ACQ.SYSTEM_ERROR',
  'isp.unknow-error',
  'ACQ.REASON_TRADE_BEEN_FREEZEN',
];

export interface RefundView {
  outRequestNo: string;
  amountFen: number;
  status: RefundStatus;
  reason?: string;
  failureReason?: string;
  /** Alipay's fund_change: "Y" when the call moved money, "N" for a repeat. */
  alipayFundChange?: string;
  createdAt: string;
  settledAt?: string;
}

export type RefundRefusalCode = 'REFUND_CONFLICT' | 'REFUND_EXCEEDS_REFUNDABLE' | 'NOT_REFUNDABLE';

/** Decided by the reservation in the record, before Alipay is called. */
export type RefundAnswer =
  | { ok: true; refund: RefundView }
  | { ok: false; code: RefundRefusalCode; message: string; refundableFen?: number };

export function refundWorkflowId(appId: string, outTradeNo: string, outRequestNo: string): string {
  return `refund:${appId}:${outTradeNo}:${outRequestNo}`;
}

/** The out_request_no of the refund that gives a late payment back: one per trade, so never twice. */
export function lateRefundRequestNo(tradeNo: string): string {
  return `late-${tradeNo}`;
}

/** The out_request_no of the refund that gives back what a REVIEW order holds, when no refund of
 *  that money was tried before. */
export function reviewRefundRequestNo(tradeNo: string): string {
  return `review-${tradeNo}`;
}

/** Answers once the refund is settled, or at once when the reservation refuses it. A request for
 *  another amount than the refund's own is refused (RefundConflict): only the amount refunded is
 *  ever answered 2xx. Absent (callers from before): no check. */
export const refundOutcomeUpdate = defineUpdate<RefundAnswer, [RefundRequest | undefined]>('refundOutcome');
export interface RefundRequest {
  amountFen: number;
}
export const refundStateQuery = defineQuery<RefundAnswer | undefined>('refundState');

export const REFUND_WORKFLOW_TYPE = 'refundWorkflow';
