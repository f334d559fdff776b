// The activity contracts the payment workflow is written against. The workflow sees only these
// types; activities/ implements them. Nothing here carries a key or a secret.
import type { AlipayTradeStatus, PaymentStatus, TradeReport } from './payment.js';

export interface PrecreateInput {
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

export type CloseOutcome =
  | { outcome: 'closed'; tradeNo?: string }
  /** Never scanned: there is nothing to close at Alipay. */
  | { outcome: 'not_exist' }
  /** Alipay refused: the trade is no longer open, paid (a payment raced the close) or closed. */
  | { outcome: 'not_open' };

export interface VoidOutcome {
  /** Alipay's `action`: "close" for an unpaid order number, "refund" when the buyer had paid. */
  action: string;
}

export interface AlipayActivities {
  /** Throws a non-retryable `AlipayRejected` failure on parameter and business errors. */
  precreateTrade(input: PrecreateInput): Promise<{ qrCode: string }>;
  queryTrade(input: { outTradeNo: string }): Promise<TradeReport | TradeNotFound>;
  closeTrade(input: { outTradeNo: string }): Promise<CloseOutcome>;
  /** alipay.trade.cancel: voids an order number so its QR code can no longer be paid. */
  voidTrade(input: { outTradeNo: string }): Promise<VoidOutcome>;
}

export type PaymentEventType =
  | 'created'
  | 'qr_issued'
  | 'precreate_failed'
  | 'notify_received'
  | 'query_result'
  | 'cancel_requested'
  | 'close_result'
  | 'closed'
  | 'paid'
  | 'anomaly';

/** Columns of the read model an event moves; absent fields stay as they are. */
export interface PaymentChange {
  status?: PaymentStatus;
  alipayStatus?: AlipayTradeStatus;
  alipayTradeNo?: string;
  qrCode?: string;
  paidAmountFen?: number;
  paidAt?: string;
  reason?: string;
}

export interface PaymentEventInput {
  paymentId: string;
  /** Deterministic per workflow run and event, so a retried write lands once. */
  eventKey: string;
  type: PaymentEventType;
  data?: Record<string, unknown>;
  change?: PaymentChange;
  /** Only with the first event of an order: the row of the read model to create. */
  create?: {
    appId: string;
    outTradeNo: string;
    amountFen: number;
    subject: string;
    expiresAt: string;
    merchantId?: string;
  };
}

export interface LedgerActivities {
  recordPaymentEvent(input: PaymentEventInput): Promise<{ applied: boolean }>;
}
