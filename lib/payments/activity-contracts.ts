// The activity contracts the payment workflow is written against. The workflow sees only these
// types; activities/ implements them. Nothing here carries a key or a secret.
import type { NotifyVerdict } from '../alipay/notify.js';
import type { AlipayReport, AlipayTradeStatus, LatePayment, LatePaymentPolicy, PaymentMethod, PaymentStatus, PaymentView, TradeReport } from './payment.js';
import type { ComparisonSummary, FeedbackSummary, ReconciliationStatus } from './reconciliation.js';
import type { RefundRefusalCode, RefundView, RefundWorkflowInput } from './refund.js';

/** Failure types the workflows tell apart. */
export const FAILURE = {
  /** A final business or parameter error from Alipay (precreate). */
  alipayRejected: 'AlipayRejected',
  /** An answer that could not be placed (unknown code, unsigned or unverifiable body) for longer
   *  than the worker's bound: the caller decides what the order becomes. */
  alipayUnplaceable: 'AlipayUnplaceableAnswer',
  /** The same, while the bound has not run out: retried. */
  alipayUnexpected: 'AlipayUnexpectedAnswer',
  /** The bill's zip or CSV is not Alipay's trade bill as documented: reading it again changes nothing. */
  billUnreadable: 'BillUnreadable',
  /** A sealed payment code this worker cannot open: nothing was sent to Alipay. */
  paymentCodeUnreadable: 'PaymentCodeUnreadable',
  /** Our own PostgreSQL failed an order's first step: the workflow tries again, and the attempt
   *  never counts against Alipay. */
  readModelUnavailable: 'ReadModelUnavailable',
  /** The order's own data cannot be stored as it is (PostgreSQL refuses it at the claim): no retry
   *  changes that, and the order goes to REVIEW. */
  orderDataUnstorable: 'OrderDataUnstorable',
} as const;

/** The Alipay app an order belongs to (lib/alipay/apps.ts); absent (runs from before): the configured app. */
export interface OfApp {
  appId?: string;
}

export interface PrecreateInput extends OfApp {
  outTradeNo: string;
  amountFen: number;
  subject: string;
  /** Alipay-side expiry, Beijing time "yyyy-MM-dd HH:mm:ss", never later than our own deadline. */
  timeExpire: string;
  notifyUrl: string;
  sellerId?: string;
}

/** A trade Alipay does not know yet: the buyer has not scanned the QR code. */
export interface TradeNotFound {
  tradeStatus: 'NOT_EXIST';
  outTradeNo: string;
}

/** Alipay's own words for a final refusal: all a merchant is told of it. */
export interface AlipayRefusal {
  code: string;
  msg?: string;
  subCode?: string;
  subMsg?: string;
}

export type CloseOutcome =
  | { outcome: 'closed'; tradeNo?: string }
  /** Never scanned: there is nothing to close at Alipay. */
  | { outcome: 'not_exist' }
  /** Alipay refused: the trade is no longer open, paid (a payment raced the close) or closed. */
  | { outcome: 'not_open' };

export type VoidOutcome =
  /** Alipay's `action`: "close" for an unpaid order number, "refund" when the buyer had paid. */
  | { action: 'close' | 'refund'; tradeNo?: string }
  /** Alipay refused the void for good (e.g. ACQ.TRADE_CANCEL_TIME_OUT, ACQ.CANCEL_NOT_ALLOWED). */
  | { action: 'refused'; subCode: string };

export interface PaymentCodeCharge extends OfApp {
  outTradeNo: string;
  amountFen: number;
  subject: string;
  /** The buyer's payment code, sealed by the API for this order (lib/alipay/payment-code.ts). */
  sealedCode: string;
  /** The order's workflow id: the seal opens only for it. */
  orderId: string;
  notifyUrl: string;
  sellerId?: string;
}

/** What one alipay.trade.pay told us. Only `refused` is final without a look at the trade. */
export type ChargeOutcome =
  /** 10000: the buyer's money moved. */
  | { outcome: 'paid'; report: TradeReport }
  /** 10003: the buyer must confirm on the phone (a password, a large amount). */
  | { outcome: 'confirming'; tradeNo?: string }
  /** 40004 and the like: refused for good, no money moved (ACQ.PAYMENT_AUTH_CODE_INVALID, …). */
  | { outcome: 'refused'; refusal: AlipayRefusal }
  /** 20000, ACQ.SYSTEM_ERROR, no answer, an answer we cannot place: only a query can tell. */
  | { outcome: 'unknown'; detail: string };

export interface AlipayActivities {
  /** Throws a non-retryable `AlipayRejected` failure on parameter and business errors. */
  precreateTrade(input: PrecreateInput): Promise<{ qrCode: string }>;
  queryTrade(input: { outTradeNo: string } & OfApp): Promise<TradeReport | TradeNotFound>;
  closeTrade(input: { outTradeNo: string } & OfApp): Promise<CloseOutcome>;
  /** alipay.trade.cancel: voids an order number so its QR code can no longer be paid, or cancels
   *  a barcode payment (Alipay refunds it if the buyer had paid). Retried while retry_flag is Y. */
  voidTrade(input: { outTradeNo: string } & OfApp): Promise<VoidOutcome>;
  /** alipay.trade.pay with scene bar_code, once: a second try could charge a code twice. Throws
   *  a non-retryable `PaymentCodeUnreadable` when the seal does not open (no money moved). */
  chargePaymentCode(input: PaymentCodeCharge): Promise<ChargeOutcome>;
  /** alipay.trade.refund under the merchant's out_request_no; an unknown outcome is retried
   *  (after asking alipay.trade.fastpay.refund.query), never sent under another number. */
  refundTrade(input: { outTradeNo: string; outRequestNo: string; amountFen: number; reason?: string } & OfApp): Promise<RefundOutcome>;
}

export type RefundOutcome =
  /** refundedAt: when Alipay made the refund (gmt_refund_pay), ISO; the day its bill lists it. */
  | { outcome: 'succeeded'; fundChange?: string; confirmedBy: 'refund' | 'query'; refundedAt?: string }
  /** Alipay's definitive refusal, in its own words. */
  | { outcome: 'refused'; subCode: string; message: string };

export interface NotifyActivities {
  /** Checks a notify's RSA2 signature with Alipay's public key, and that it is for this order. */
  verifyAlipayNotify(input: { appId: string; outTradeNo: string; params: Record<string, string> }): Promise<NotifyVerdict>;
}

export type PaymentEventType =
  | 'created'
  | 'qr_issued'
  | 'precreate_failed'
  /** Barcode: what alipay.trade.pay answered. */
  | 'pay_result'
  /** Barcode: refused for good by Alipay. */
  | 'failed'
  | 'notify_received'
  | 'query_result'
  | 'cancel_requested'
  | 'close_result'
  | 'closed'
  | 'paid'
  | 'anomaly'
  | 'late_payment'
  | 'refund_requested'
  | 'refund_succeeded'
  | 'refund_failed'
  /** Alipay refused a refund with a refusal that can pass (a seller balance too low): sent again later. */
  | 'refund_refused'
  /** A daily reconciliation found this order differs from Alipay's bill (recorded as found). */
  | 'reconciliation_mismatch'
  /** An operator asked for something (query_now), with their note. */
  | 'operator_action'
  /** An operator decided a REVIEW order: PAID or CLOSED. */
  | 'review_resolved';

/** Columns of the read model an event moves; absent fields stay as they are. */
export interface PaymentChange {
  status?: PaymentStatus;
  alipayStatus?: AlipayTradeStatus;
  alipayTradeNo?: string;
  qrCode?: string;
  paidAmountFen?: number;
  paidAt?: string;
  reason?: string;
  alipaySubCode?: string;
  /** Merged into what the order holds (never replaced by an older state): see activities/ledger.ts. */
  latePayment?: Partial<LatePayment> & { tradeNo: string };
  alipayReport?: AlipayReport;
}

/** notify: from the API receiving Alipay's verified notify; barcode: from the start of the
 *  alipay.trade.pay call. */
export type PaidLatencyVia = 'notify' | 'barcode';

export interface PaymentEventInput {
  paymentId: string;
  /** Deterministic per workflow run and event, so a retried write lands once. */
  eventKey: string;
  type: PaymentEventType;
  data?: Record<string, unknown>;
  change?: PaymentChange;
  /** With the event that makes an order PAID: where its pay→PAID latency began (ms since the epoch),
   *  measured once the event is written (durapay_payment_paid_latency_seconds). Not stored. */
  paidLatency?: { via: PaidLatencyVia; sinceMs: number };
  /** Only with openPayment: the row of the read model to create. */
  create?: {
    appId: string;
    outTradeNo: string;
    alipayOutTradeNo: string;
    notifyUrl?: string;
    amountFen: number;
    subject: string;
    expiresAt: string;
    merchantId?: string;
    /** Absent: qr. */
    method?: PaymentMethod;
    /** Barcode: the masked code and the code's fingerprint, never the code. */
    paymentCode?: { masked: string; fingerprint: string };
    /** QR orders polled by the worker's sweeper: the ladder, from the order's creation. */
    pollLadderMs?: number[];
  };
}

/** What the read model holds for an order number already in use. */
export type PaymentRecord = Pick<
  PaymentView,
  'status' | 'amountFen' | 'subject' | 'qrCode' | 'expiresAt' | 'alipayStatus' | 'alipayTradeNo' | 'paidAt' | 'reason' | 'alipaySubCode' | 'alipayReport'
> & {
  latePayment?: LatePayment;
  paidAmountFen?: number;
  /** Merchant and review refunds of a confirmed order. */
  refundedAmountFen?: number;
  /** Every refund Alipay has made of the trade, of any kind. */
  refundsDoneFen?: number;
  merchantId?: string;
  /** The merchant's own order number. */
  merchantOrderNo?: string;
};

export type OpenOutcome =
  | { opened: true }
  /** The order number belongs to a finished order, or to another order: it is never reopened. */
  | { opened: false; record: PaymentRecord };

/** The first step of an order: claim its number, precreate at Alipay, record the QR code. */
export interface OrderOpeningActivities {
  /** Throws what openPayment and precreateTrade throw: precreate's failures made final once it has
   *  been retried long enough, a PostgreSQL outage as `ReadModelUnavailable`. */
  openOrder(input: {
    claim: PaymentEventInput & { create: NonNullable<PaymentEventInput['create']> };
    precreate: PrecreateInput;
    /** The qr_issued event, without the QR code it will carry. */
    issued: PaymentEventInput;
  }): Promise<OpenOrderOutcome>;
}

export type OpenOrderOutcome = { opened: true; qrCode: string } | Extract<OpenOutcome, { opened: false }>;

export interface LedgerActivities {
  /** Claims the order number in the read model before anything reaches Alipay. Throws a
   *  non-retryable `OrderDataUnstorable` failure when PostgreSQL refuses the order's own values. */
  openPayment(input: PaymentEventInput & { create: NonNullable<PaymentEventInput['create']> }): Promise<OpenOutcome>;
  recordPaymentEvent(input: PaymentEventInput): Promise<{ applied: boolean }>;
  /** Several events of one order in one transaction, in order: what a workflow step found and
   *  what it decided land together. */
  recordPaymentEvents(inputs: PaymentEventInput[]): Promise<{ applied: number }>;
  findPaymentRecord(input: { paymentId: string }): Promise<PaymentRecord | undefined>;
}

export type RefundReservation =
  | { outcome: 'reserved' | 'existing'; refund: RefundView }
  | { outcome: 'refused'; code: RefundRefusalCode; message: string; refundableFen?: number };

/** How a late payment's refund is sent again after a refusal that can pass. */
export interface LateRefundRetryPolicy {
  firstMs: number;
  maxMs: number;
  windowMs: number;
}
/** LATE_REFUND_RETRY_*: first after a minute, doubling up to hourly, for a day. */
export const DEFAULT_LATE_REFUND_RETRY: LateRefundRetryPolicy = { firstMs: 60_000, maxMs: 3_600_000, windowMs: 86_400_000 };

export interface RefundLedgerActivities {
  /** The worker's LATE_REFUND_RETRY_* settings. */
  lateRefundRetryPolicy(): Promise<LateRefundRetryPolicy>;
  /** Reserves the amount under a lock on the payment: the sum of refunds never exceeds what was paid. */
  reserveRefund(input: RefundWorkflowInput & { paymentId: string; eventKey: string }): Promise<RefundReservation>;
  /** Settles a PENDING refund once; a FAILED one releases its amount. */
  settleRefund(input: {
    paymentId: string;
    outRequestNo: string;
    eventKey: string;
    settlement: { status: 'SUCCEEDED'; fundChange?: string; refundedAt?: string } | { status: 'FAILED'; failureReason: string };
  }): Promise<RefundView>;
}

/** One POST of a webhook, as the merchant's endpoint answered it (or did not). */
export interface WebhookAttemptOutcome {
  delivered: boolean;
  attemptedAt: string;
  statusCode?: number;
  latencyMs?: number;
  error?: string;
  /** Nothing was sent: the endpoint was disabled or deleted meanwhile. */
  cancelled?: boolean;
}

/** Where a delivery goes: an endpoint of the merchant's, or (no endpointId) the order's notifyUrl. */
interface WebhookTargetRef {
  endpointId?: string;
}

export interface WebhookActivities {
  /** The order's first event by sequence still pending for the target, or none. */
  nextPendingWebhook(input: { paymentId: string } & WebhookTargetRef): Promise<{ eventId: string; type: string } | undefined>;
  /** One signed POST to the target; never throws for what the endpoint did. */
  deliverWebhook(input: { eventId: string } & WebhookTargetRef): Promise<WebhookAttemptOutcome>;
  /** Stores the attempt (once per key) and moves the event's delivery to the target to its status. */
  recordWebhookAttempt(
    input: {
      eventId: string;
      attemptKey: string;
      outcome: WebhookAttemptOutcome;
      eventStatus: 'pending' | 'delivered' | 'failed' | 'cancelled';
    } & WebhookTargetRef,
  ): Promise<void>;
  /** A resend: the event is pending again for the target (an order without notifyUrl has nothing to resend there). */
  reopenWebhookEvent(input: { paymentId: string; eventId: string } & WebhookTargetRef): Promise<void>;
}

/** One reconciliation run: the app, the Beijing day of the bill, and the Temporal run doing it. */
export interface ReconciliationRun {
  appId: string;
  date: string;
  runId: string;
}

export type BillStaging =
  /** Alipay says the bill does not exist yet (isp.bill_not_exist): ask again later. */
  | { ready: false; subCode: string; message: string }
  | { ready: true; payments: number; refunds: number; ignored: number };

export interface ReconciliationActivities {
  /** Marks the day RUNNING under this run. */
  beginReconciliation(run: ReconciliationRun): Promise<void>;
  /** Asks Alipay for the bill's download URL and downloads, parses and stages it in one go: the
   *  short-lived URL never leaves the activity. Heartbeats while it reads. */
  fetchAndStageBill(run: ReconciliationRun): Promise<BillStaging>;
  /** Compares the staged bill with the read model in SQL and stores the totals and mismatches. */
  compareBill(run: ReconciliationRun): Promise<ComparisonSummary>;
  finishReconciliation(input: ReconciliationRun & { status: Exclude<ReconciliationStatus, 'RUNNING'>; reason?: string }): Promise<void>;
  /** Signals each order's findings to its running workflow, or to a workflow started for it. */
  feedBackMismatches(input: ReconciliationRun & { latePaymentPolicy: LatePaymentPolicy }): Promise<FeedbackSummary>;
}
