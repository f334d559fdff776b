// Refunds: the domain shared by the refund workflow, its activities and the API. One refund is
// one workflow, keyed by the order and the merchant's out_request_no (Alipay's idempotency key).
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export type RefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';
export type RefundKind = 'merchant' | 'late_payment';

export interface RefundWorkflowInput {
  appId: string;
  /** Alipay's out_trade_no of the order (lib/order-numbers.ts). */
  outTradeNo: string;
  outRequestNo: string;
  amountFen: number;
  reason?: string;
  kind: RefundKind;
  /** For a late payment: the trade whose money goes back. */
  tradeNo?: string;
}

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

/** Answers once the refund is settled, or at once when the reservation refuses it. */
export const refundOutcomeUpdate = defineUpdate<RefundAnswer>('refundOutcome');
export const refundStateQuery = defineQuery<RefundAnswer | undefined>('refundState');

export const REFUND_WORKFLOW_TYPE = 'refundWorkflow';
