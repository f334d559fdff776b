// Reads of the merchant-facing record in PostgreSQL. The API reads; only activities write.
import type pg from 'pg';
import { paymentResource as recordedPayment, refundResource as recordedRefund, type PaymentRow, type RefundRow } from '../lib/payments/resources.js';
import { cashierUrl } from './cashier.js';
import type { PaymentResource, RefundResource } from './schemas.js';

// The resources live in lib/payments/, where the activities that write webhooks build them too.
export type { PaymentRow, RefundRow };

/** A refund as the merchant reads it; typed by the schema the OpenAPI document says. */
export const refundResource: (row: RefundRow) => RefundResource = recordedRefund;

/** The merchant's view of an order, with the buyer's cashier page as this API serves it. */
export function paymentResource(row: PaymentRow, publicBaseUrl: string): PaymentResource {
  return { ...recordedPayment(row), cashierUrl: row.cashier_token === null ? null : cashierUrl(publicBaseUrl, row.cashier_token) };
}

/** The merchant's order: another merchant's order with the same number is not found. */
export async function findPayment(pool: pg.Pool, merchantId: string, outTradeNo: string): Promise<PaymentRow | undefined> {
  const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [
    merchantId,
    outTradeNo,
  ]);
  return rows[0];
}

export async function findRefund(pool: pg.Pool, paymentId: string, outRequestNo: string): Promise<RefundRow | undefined> {
  const { rows } = await pool.query<RefundRow>('SELECT * FROM refunds WHERE payment_id = $1 AND out_request_no = $2', [
    paymentId,
    outRequestNo,
  ]);
  return rows[0];
}

export async function listRefunds(pool: pg.Pool, paymentId: string): Promise<RefundRow[]> {
  const { rows } = await pool.query<RefundRow>('SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, out_request_no', [
    paymentId,
  ]);
  return rows;
}
