// The outbox of merchant webhooks, written in the ledger's own transactions (activities/ledger.ts
// applyEvent): a webhook exists exactly when the change that causes it was committed, and so does
// its delivery to each of the merchant's endpoints that listens to its type.
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
    // One round trip: the event, and a delivery to every enabled endpoint that listens to its type.
    await db.query(
      `WITH event AS (
         INSERT INTO webhook_events (id, payment_id, merchant_id, sequence, type, payload, status) VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id
       )
       INSERT INTO webhook_deliveries (endpoint_id, event_id, payment_id, sequence, status)
       SELECT w.id, event.id, $2, $4, 'pending' FROM event, webhook_endpoints w
       WHERE w.merchant_id = $3 AND w.enabled AND w.deleted_at IS NULL AND ('*' = ANY (w.events) OR $5 = ANY (w.events))`,
      [`evt_${randomBytes(12).toString('hex')}`, input.paymentId, payment.merchant_id, ++sequence, type, JSON.stringify(data), payment.notify_url ? 'pending' : 'no_endpoint'],
    );
  }
}

/** What a writer of ledger events calls after its commit (and again on every retry of it). */
export type WebhookWaker = (paymentId: string) => Promise<void>;

/** Wakes the order's delivery workflow of each target that has anything to send: the notifyUrl's
 *  (endpoint null) and each endpoint's. */
export function createWebhookWaker(pool: pg.Pool, target: WebhookTarget): WebhookWaker {
  return async (paymentId) => {
    const { rows } = await pool.query<{ endpoint_id: string | null }>(
      `SELECT NULL AS endpoint_id WHERE EXISTS (SELECT 1 FROM webhook_events WHERE payment_id = $1 AND status = 'pending')
       UNION ALL
       SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE payment_id = $1 AND status = 'pending'`,
      [paymentId],
    );
    await Promise.all(rows.map((row) => wakeWebhookDelivery(target, paymentId, undefined, row.endpoint_id ?? undefined)));
  };
}
