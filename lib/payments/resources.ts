// The merchant-facing resources, built from rows of the read model: what a webhook carries as its
// data, and what GET /v1/payments answers (with the cashier page's URL, which only the API knows).
// Shared by the API and the activities that write webhooks.
import { formatYuan } from './money.js';
import type { AlipayTradeStatus, LatePayment, PaymentMethod, PaymentStatus } from './payment.js';
import type { RefundStatus } from './refund.js';

export interface PaymentRow {
  id: string;
  app_id: string;
  out_trade_no: string;
  alipay_out_trade_no: string;
  merchant_id: string;
  notify_url: string | null;
  amount_fen: number;
  subject: string;
  status: PaymentStatus;
  alipay_status: AlipayTradeStatus | null;
  alipay_trade_no: string | null;
  qr_code: string | null;
  expires_at: Date;
  paid_amount_fen: number | null;
  paid_at: Date | null;
  reason: string | null;
  alipay_sub_code: string | null;
  method: PaymentMethod;
  auth_code_masked: string | null;
  auth_code_fingerprint: string | null;
  refunded_amount_fen: number;
  late_payment: LatePayment | null;
  /** The buyer's cashier page (api/cashier.ts); null for orders claimed before cashier pages. */
  cashier_token: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface RefundRow {
  payment_id: string;
  out_request_no: string;
  amount_fen: number;
  status: RefundStatus;
  reason: string | null;
  failure_reason: string | null;
  alipay_fund_change: string | null;
  created_at: Date;
  settled_at: Date | null;
}

/** The merchant's view: amounts as two-decimal yuan strings, times as ISO 8601. */
export function paymentResource(row: PaymentRow) {
  return {
    outTradeNo: row.out_trade_no,
    status: row.status,
    amount: formatYuan(row.amount_fen),
    subject: row.subject,
    qrCode: row.qr_code,
    expiresAt: row.expires_at.toISOString(),
    alipayStatus: row.alipay_status,
    alipayTradeNo: row.alipay_trade_no,
    paidAmount: row.paid_amount_fen === null ? null : formatYuan(row.paid_amount_fen),
    paidAt: row.paid_at?.toISOString() ?? null,
    reason: row.reason,
    alipaySubCode: row.alipay_sub_code,
    refundedAmount: formatYuan(row.refunded_amount_fen),
    latePayment: row.late_payment && {
      alipayTradeNo: row.late_payment.tradeNo,
      amount: formatYuan(row.late_payment.amountFen),
      detectedAt: row.late_payment.detectedAt,
      refundOutRequestNo: row.late_payment.outRequestNo ?? null,
      refundStatus: row.late_payment.refundStatus ?? null,
      refundedBy: row.late_payment.refundedBy ?? null,
      // While the refund is sent again after a refusal that can pass: Alipay's last word.
      lastRefusal: row.late_payment.lastRefusal ?? null,
    },
    method: row.method,
    authCode: row.auth_code_masked,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function refundResource(row: RefundRow) {
  return {
    outRequestNo: row.out_request_no,
    amount: formatYuan(row.amount_fen),
    status: row.status,
    reason: row.reason,
    failureReason: row.failure_reason,
    alipayFundChange: row.alipay_fund_change,
    createdAt: row.created_at.toISOString(),
    settledAt: row.settled_at?.toISOString() ?? null,
  };
}
