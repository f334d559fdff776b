// Reads of the merchant-facing record in PostgreSQL. The API reads; only activities write.
import type pg from 'pg';
import { formatYuan } from '../lib/money.js';
import type { AlipayTradeStatus, PaymentStatus } from '../lib/payment.js';

export interface PaymentRow {
  id: string;
  app_id: string;
  out_trade_no: string;
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
  created_at: Date;
  updated_at: Date;
}

export async function findPayment(pool: pg.Pool, appId: string, outTradeNo: string): Promise<PaymentRow | undefined> {
  const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE app_id = $1 AND out_trade_no = $2', [
    appId,
    outTradeNo,
  ]);
  return rows[0];
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
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
