// The payment domain shared by the workflow, the activities and the API: types, the workflow's
// messages (defined once, used by both sides) and its search attributes.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Finding } from './findings.js';

/** Our status, as merchants see it. Alipay's own trade status is kept beside it, never mixed in.
 *  FAILED: a barcode payment Alipay refused for good (an invalid code, a balance not enough): no money moved. */
export const PAYMENT_STATUSES = [
  'AWAITING_PAYMENT',
  'PAID',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
  'CLOSED',
  'PRECREATE_FAILED',
  'FAILED',
  'REVIEW',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];
export const FINAL_STATUSES: readonly PaymentStatus[] = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'PRECREATE_FAILED', 'FAILED', 'REVIEW'];
/** The buyer paid this order; refunds may have given some or all of it back since. */
export const PAID_STATUSES: readonly PaymentStatus[] = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'];

/**
 * Every move of an order's status, from each status to the ones it may reach; staying put is always
 * allowed. The SQL that writes a status (activities/ledger.ts) refuses any other move and records it
 * as an anomaly: a refund settling does not clear a REVIEW, a finding does not reopen a CLOSED order
 * by accident. REVIEW is left only by an operator's resolution (PAID, refunded, or CLOSED).
 */
export const STATUS_TRANSITIONS: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  AWAITING_PAYMENT: ['PAID', 'CLOSED', 'PRECREATE_FAILED', 'FAILED', 'REVIEW'],
  PAID: ['PARTIALLY_REFUNDED', 'REFUNDED', 'REVIEW'],
  PARTIALLY_REFUNDED: ['REFUNDED', 'REVIEW'],
  REFUNDED: ['REVIEW'],
  CLOSED: ['REVIEW'],
  PRECREATE_FAILED: ['REVIEW'],
  FAILED: ['REVIEW'],
  REVIEW: ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED'],
};

/** Whether an event of this kind may move an order from `from` to `to`: REVIEW is left only by
 *  an operator's resolution (review_resolved). */
export function canMoveStatus(from: PaymentStatus, to: PaymentStatus, byResolution: boolean): boolean {
  if (from === to) return true;
  if (from === 'REVIEW' && !byResolution) return false;
  return STATUS_TRANSITIONS[from].includes(to);
}

/** The statuses an order may be in for a move to `to` by an event of this kind. */
export function statusesAllowedBefore(to: PaymentStatus, byResolution: boolean): PaymentStatus[] {
  return (Object.keys(STATUS_TRANSITIONS) as PaymentStatus[]).filter((from) => canMoveStatus(from, to, byResolution));
}

/** What to do with money Alipay holds for an order we had already closed. */
export type LatePaymentPolicy = 'refund' | 'review';

/** qr: the buyer scans the merchant's QR code. barcode: the cashier scans the buyer's payment code. */
export type PaymentMethod = 'qr' | 'barcode';

export type AlipayTradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_FINISHED' | 'TRADE_CLOSED';

export interface PaymentOrder {
  appId: string;
  /** The merchant's own order number. */
  outTradeNo: string;
  /** The out_trade_no Alipay knows (lib/alipay/order-numbers.ts). */
  alipayOutTradeNo: string;
  amountFen: number;
  subject: string;
  /** Checked against the seller_id of notifies when configured. */
  sellerId?: string;
  /** Where Alipay posts its async notify for this order. */
  alipayNotifyUrl: string;
  merchantId?: string;
  /** The merchant's webhook URL for this order. */
  notifyUrl?: string;
  /** Absent: a QR order. */
  method?: PaymentMethod;
  /** Barcode only: the buyer's payment code, sealed for the worker (lib/alipay/payment-code.ts). */
  paymentCode?: { sealed: string; fingerprint: string; masked: string };
}

/** Every duration of the lifecycle is an input, so tests run the whole story in seconds. */
export interface PaymentTimings {
  orderTimeoutMs: number;
  /** Gaps between status queries; the last gap repeats until the deadline. */
  pollLadderMs: number[];
  /** A run that waits continues as new past this many history events, so history stays bounded. */
  historyLimit: number;
  /** Barcode only: the create answers within this, settled or still AWAITING_PAYMENT. */
  answerWithinMs?: number;
}

/** Barcode payments: the buyer confirms on the phone within a short window, queried a few
 *  seconds apart (Alipay's guide: every few seconds for about 30 s). */
export const DEFAULT_BARCODE_TIMINGS = { answerWithinMs: 10_000, queryEveryMs: 3_000, confirmWindowMs: 30_000 };

export const DEFAULT_TIMINGS: PaymentTimings = {
  orderTimeoutMs: 15 * 60_000,
  pollLadderMs: [60_000, 120_000, 300_000, 600_000],
  historyLimit: 2_000,
};

export interface PaymentWorkflowInput {
  order: PaymentOrder;
  timings: PaymentTimings;
  latePaymentPolicy: LatePaymentPolicy;
  /** Set when a long wait continued as a new run: where the previous run left off. */
  resume?: PaymentResume;
}

export interface PaymentResume {
  state: PaymentView;
  deadline: number;
  pollStep: number;
  nextPollAt: number;
  /** Notifies accepted by the previous run and not yet read. */
  notifies: SignedNotify[];
  /** A reconciliation's findings the previous run took in (absent in runs from before them). */
  findings?: Finding[];
}

/** Alipay's notify as it arrived: the form parameters with their RSA2 `sign`, verified by the
 *  workflow itself, so a signal sent straight to Temporal cannot confirm a payment. */
export interface SignedNotify {
  params: Record<string, string>;
  /** When the API received it, ms since the epoch: the start of the pay→PAID latency it measures
   *  (durapay_payment_paid_latency_seconds). Optional: notifies signalled before it existed lack it. */
  receivedAtMs?: number;
}

/** What Alipay told us about a trade, from a verified notify or a query. */
export interface TradeReport {
  /** pay: the answer of alipay.trade.pay itself (barcode). */
  source: 'notify' | 'query' | 'pay';
  outTradeNo: string;
  tradeNo?: string;
  tradeStatus: AlipayTradeStatus;
  /** Yuan string as Alipay sent it. */
  totalAmount?: string;
  appId?: string;
  sellerId?: string;
  notifyId?: string;
  paidAt?: string;
  /** Only on the notifies Alipay sends after a refund: the trade's cumulative refunded yuan. */
  refundFee?: string;
  /** Only on refund notifies: the refund's out_request_no. */
  outBizNo?: string;
}

/** Money Alipay took for an order we had already closed, and what became of it. */
export interface LatePayment {
  tradeNo: string;
  amountFen: number;
  detectedAt: string;
  /** The refund that gives it back (LATE_PAYMENT_POLICY=refund), keyed by the trade. */
  outRequestNo?: string;
  refundStatus?: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  /** cancel: Alipay refunded it itself, as its answer to our alipay.trade.cancel (action refund). */
  refundedBy?: 'cancel';
  /** While the refund is retried after a refusal that can pass (a seller balance too low): Alipay's
   *  last refusal, how many times it refused, and when the refund is sent again. */
  lastRefusal?: { subCode: string; message: string; at: string; attempts: number; nextAttemptAt?: string };
}

/** What Alipay reported of the trade when an order went to REVIEW: kept with the order, so that a
 *  resolution records Alipay's own payment time and amount. */
export interface AlipayReport {
  tradeNo?: string;
  tradeStatus: AlipayTradeStatus;
  totalAmount?: string;
  paidAt?: string;
}

/** The part of a report an order keeps when it goes to REVIEW. */
export function alipayReportOf(report: TradeReport | undefined): AlipayReport | undefined {
  if (!report) return undefined;
  return {
    tradeStatus: report.tradeStatus,
    ...(report.tradeNo ? { tradeNo: report.tradeNo } : {}),
    ...(report.totalAmount ? { totalAmount: report.totalAmount } : {}),
    ...(report.paidAt ? { paidAt: report.paidAt } : {}),
  };
}

export type PaidReport = TradeReport & { tradeStatus: 'TRADE_SUCCESS' | 'TRADE_FINISHED' };

/** Alipay holds the buyer's money for this trade (TRADE_FINISHED: paid, no longer refundable). */
export function isPaidReport(report: { tradeStatus: string }): report is PaidReport {
  return report.tradeStatus === 'TRADE_SUCCESS' || report.tradeStatus === 'TRADE_FINISHED';
}

export interface PaymentView {
  appId: string;
  outTradeNo: string;
  status: PaymentStatus;
  amountFen: number;
  subject: string;
  qrCode?: string;
  expiresAt: string;
  alipayStatus?: AlipayTradeStatus;
  alipayTradeNo?: string;
  paidAt?: string;
  /** Why an order went to REVIEW, PRECREATE_FAILED or FAILED. */
  reason?: string;
  /** FAILED: Alipay's sub_code of the refusal. */
  alipaySubCode?: string;
  latePayment?: LatePayment;
  /** REVIEW: what Alipay reported of the trade when the order went there. */
  alipayReport?: AlipayReport;
}

export interface CreatePaymentRequest {
  amountFen: number;
  subject: string;
  /** Absent: qr (requests from before barcode payments). */
  method?: PaymentMethod;
  /** Barcode: the payment code's fingerprint, so a repeat with another code is refused. */
  paymentCodeFingerprint?: string;
}

export function paymentWorkflowId(appId: string, outTradeNo: string): string {
  return `payment:${appId}:${outTradeNo}`;
}

/** One per notify_id: Alipay repeats a notify with the same id until it hears "success". */
export function lateNotifyWorkflowId(appId: string, outTradeNo: string, notifyId: string): string {
  return `late-notify:${appId}:${outTradeNo}:${notifyId}`;
}

export interface LateNotifyInput {
  appId: string;
  outTradeNo: string;
  notify: SignedNotify;
  latePaymentPolicy?: LatePaymentPolicy;
}

/** What became of a notify that arrived after its order's workflow had finished. */
export interface LateNotifyOutcome {
  outcome: 'rejected' | 'unknown_order' | 'recorded' | 'flagged' | 'refunding';
  detail: string;
}

/** QR: answers once the QR code is issued (or precreate failed). Barcode: once the payment has
 *  settled, or AWAITING_PAYMENT after answerWithinMs. Rejected when the order differs. */
export const createPaymentUpdate = defineUpdate<PaymentView, [CreatePaymentRequest]>('createPayment');
/** Merchant cancel: answers with the final state (PAID when the buyer won the race). */
export const cancelPaymentUpdate = defineUpdate<PaymentView>('cancelPayment');
/** Who asked, and why: kept with the action in the order's history and ledger. */
export interface OperatorRequest {
  note?: string;
  operator?: string;
}

export interface ReviewResolution extends OperatorRequest {
  /** PAID after checking the money is at Alipay as expected, or CLOSED. */
  outcome: 'PAID' | 'CLOSED';
  note: string;
}

/** An operator asks Alipay about a waiting order now, not at the next step of the ladder; answers
 *  once that query is done. Rejected (NotWaiting) for an order that is no longer waiting. */
export const queryNowUpdate = defineUpdate<PaymentView, [OperatorRequest]>('queryNow');
/** An operator decides a REVIEW order: answers once the resolution is done, or has failed and the
 *  order stays in REVIEW with the reason. Rejected (NotInReview) for an order not in REVIEW. Taken
 *  by the order's running payment workflow, or by a review workflow started for a finished one. */
export const resolveReviewUpdate = defineUpdate<{ status: PaymentStatus; reason?: string }, [ReviewResolution]>('resolveReview');

/** The workflow that resolves a REVIEW order whose payment workflow has finished. */
export function reviewWorkflowId(paymentId: string): string {
  return `review:${paymentId}`;
}
export interface ReviewWorkflowInput {
  appId: string;
  /** Alipay's out_trade_no of the order. */
  outTradeNo: string;
  paymentId: string;
}
export const REVIEW_WORKFLOW_TYPE = 'reviewWorkflow';

/** Alipay's notify, signed; the workflow verifies it before acting on it. */
export const alipayNotifySignal = defineSignal<[SignedNotify]>('alipayNotify');
/** The worker's poll sweeper found news at Alipay for a waiting order (what it saw is only for the
 *  history): the workflow asks Alipay itself, now, and believes only that answer, or records why
 *  it could not place it. */
export const alipayTradeChangedSignal = defineSignal<[TradeChange]>('alipayTradeChanged');

/** What the sweeper saw: a status or trade number the order has not recorded, or an answer it
 *  could not place. */
export type TradeChange = { tradeStatus: AlipayTradeStatus; tradeNo?: string } | { unplaceable: string };
export const paymentStateQuery = defineQuery<PaymentView>('paymentState');

export const searchAttributes = {
  paymentStatus: defineSearchAttributeKey('PaymentStatus', SearchAttributeType.KEYWORD),
  outTradeNo: defineSearchAttributeKey('OutTradeNo', SearchAttributeType.KEYWORD),
  amountFen: defineSearchAttributeKey('AmountFen', SearchAttributeType.INT),
  merchantId: defineSearchAttributeKey('MerchantId', SearchAttributeType.KEYWORD),
  alipayTradeNo: defineSearchAttributeKey('AlipayTradeNo', SearchAttributeType.KEYWORD),
};

/** The workflows' registered names, for callers that must not import workflow code. */
export const PAYMENT_WORKFLOW_TYPE = 'paymentWorkflow';
export const LATE_NOTIFY_WORKFLOW_TYPE = 'lateNotifyWorkflow';
