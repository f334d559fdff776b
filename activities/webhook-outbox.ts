// The outbox of merchant webhooks, written in the ledger's own transactions (activities/ledger.ts
// applyEvent): a webhook exists exactly when the change that causes it was committed.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { PaymentEventInput } from '../lib/payments/activity-contracts.js';
import { paymentResource, refundResource, type PaymentRow, type RefundRow } from '../lib/payments/resources.js';
import { isRefundWebhook, wakeWebhookDelivery, webhookTypesFor, type WebhookTarget } from '../lib/merchants/webhooks.js';

/**
 * Appends the webhooks a ledger event gives, inside the transaction that appends the event itself,
 * after the read model has moved: each carries the order (and refund) as it is at that moment.
 */
export async function appendWebhookEvents(db: pg.PoolClient, input: PaymentEventInput): Promise<void> {
  const types = webhookTypesFor(input);
  if (types.length === 0) return;
  // The row lock orders concurrent writers of one order, so sequences follow commit order.
  const { rows } = await db.query<PaymentRow>('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [input.paymentId]);
  const payment = rows[0];
  if (!payment) return;
  const outRequestNo = typeof input.data?.outRequestNo === 'string' ? input.data.outRequestNo : undefined;
  const refund = outRequestNo
    ? (await db.query<RefundRow>('SELECT * FROM refunds WHERE payment_id = $1 AND out_request_no = $2', [input.paymentId, outRequestNo])).rows[0]
    : undefined;
  const { rows: last } = await db.query('SELECT coalesce(max(sequence), 0) AS n FROM webhook_events WHERE payment_id = $1', [input.paymentId]);
  let sequence: number = last[0].n;
  for (const type of types) {
    const data = { ...paymentResource(payment), ...(refund && isRefundWebhook(type) ? { refund: refundResource(refund) } : {}) };
    await db.query(
      `INSERT INTO webhook_events (id, payment_id, sequence, type, payload, status) VALUES ($1, $2, $3, $4, $5, $6)`,
      [`evt_${randomBytes(12).toString('hex')}`, input.paymentId, ++sequence, type, JSON.stringify(data), payment.notify_url ? 'pending' : 'no_endpoint'],
    );
  }
}

/** What a writer of ledger events calls after its commit (and again on every retry of it). */
export type WebhookWaker = (paymentId: string) => Promise<void>;

/** Wakes the order's delivery workflow when its outbox holds anything to send. */
export function createWebhookWaker(pool: pg.Pool, target: WebhookTarget): WebhookWaker {
  return async (paymentId) => {
    const { rowCount } = await pool.query("SELECT 1 FROM webhook_events WHERE payment_id = $1 AND status = 'pending' LIMIT 1", [paymentId]);
    if (rowCount) await wakeWebhookDelivery(target, paymentId);
  };
}
