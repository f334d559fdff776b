// Refunds in the read model. Every reservation and settlement locks its payment row first, so
// concurrent refunds of one payment, from any number of API and worker processes, are decided one
// at a time: the sum of PENDING and SUCCEEDED refunds never exceeds what was paid.
import type pg from 'pg';
import type { RefundLedgerActivities } from '../lib/activities.js';
import { formatYuan } from '../lib/money.js';
import { PAID_STATUSES, type LatePayment, type PaymentStatus } from '../lib/payment.js';
import type { RefundKind, RefundView } from '../lib/refund.js';
import { applyEvent, inTransaction } from './ledger.js';
import { countRefund } from './metrics.js';
import type { WebhookWaker } from './webhook-outbox.js';

export function toRefundView(row: Record<string, any>): RefundView {
  return {
    outRequestNo: row.out_request_no,
    amountFen: row.amount_fen,
    status: row.status,
    reason: row.reason ?? undefined,
    failureReason: row.failure_reason ?? undefined,
    alipayFundChange: row.alipay_fund_change ?? undefined,
    createdAt: row.created_at.toISOString(),
    settledAt: row.settled_at?.toISOString(),
  };
}

/** Money of this kind still free to refund: reserved (PENDING) and done refunds count. */
async function refundableFen(db: pg.PoolClient, paymentId: string, kind: string, ceilingFen: number): Promise<number> {
  const { rows } = await db.query(
    `SELECT coalesce(sum(amount_fen), 0)::bigint AS taken FROM refunds
     WHERE payment_id = $1 AND kind = $2 AND status IN ('PENDING', 'SUCCEEDED')`,
    [paymentId, kind],
  );
  return ceilingFen - rows[0].taken;
}

export function createRefundActivities(pool: pg.Pool, wakeWebhooks?: WebhookWaker): RefundLedgerActivities {
  return {
    async reserveRefund(input) {
      return inTransaction(pool, async (db) => {
        const { rows: payments } = await db.query('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [input.paymentId]);
        const payment = payments[0];
        if (!payment) return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `no order ${input.outTradeNo}` };
        const { rows: existing } = await db.query('SELECT * FROM refunds WHERE payment_id = $1 AND out_request_no = $2', [
          input.paymentId,
          input.outRequestNo,
        ]);
        if (existing[0]) {
          if (existing[0].amount_fen !== input.amountFen) {
            return {
              outcome: 'refused',
              code: 'REFUND_CONFLICT',
              message: `refund ${input.outRequestNo} exists with amount ${formatYuan(existing[0].amount_fen)}`,
            };
          }
          return { outcome: 'existing', refund: toRefundView(existing[0]) };
        }

        let ceilingFen: number;
        if (input.kind === 'late_payment') {
          const late = payment.late_payment as LatePayment | null;
          if (payment.status !== 'CLOSED' || !late || late.tradeNo !== input.tradeNo) {
            return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `no late payment ${input.tradeNo ?? ''} on order ${input.outTradeNo}` };
          }
          ceilingFen = late.amountFen;
        } else {
          if (!PAID_STATUSES.includes(payment.status as PaymentStatus) || payment.paid_amount_fen === null) {
            return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `order ${input.outTradeNo} is ${payment.status}` };
          }
          ceilingFen = payment.paid_amount_fen;
        }
        const free = await refundableFen(db, input.paymentId, input.kind, ceilingFen);
        if (input.amountFen > free) {
          return {
            outcome: 'refused',
            code: 'REFUND_EXCEEDS_REFUNDABLE',
            message: `refund of ${formatYuan(input.amountFen)} exceeds the refundable ${formatYuan(free)}`,
            refundableFen: free,
          };
        }
        const { rows: inserted } = await db.query(
          `INSERT INTO refunds (payment_id, out_request_no, kind, amount_fen, status, reason)
           VALUES ($1, $2, $3, $4, 'PENDING', $5) RETURNING *`,
          [input.paymentId, input.outRequestNo, input.kind, input.amountFen, input.reason ?? null],
        );
        await applyEvent(db, {
          paymentId: input.paymentId,
          eventKey: input.eventKey,
          type: 'refund_requested',
          data: { outRequestNo: input.outRequestNo, amountFen: input.amountFen, kind: input.kind, reason: input.reason ?? null },
        });
        return { outcome: 'reserved', refund: toRefundView(inserted[0]) };
      });
    },

    async settleRefund({ paymentId, outRequestNo, eventKey, settlement }) {
      const { refund: settled, kindSettledNow } = await inTransaction(pool, async (db) => {
        const { rows: payments } = await db.query('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [paymentId]);
        const payment = payments[0];
        const { rows } = await db.query(
          `UPDATE refunds SET status = $3, failure_reason = $4, alipay_fund_change = $5, alipay_refunded_at = $6, settled_at = now()
           WHERE payment_id = $1 AND out_request_no = $2 AND status = 'PENDING' RETURNING *`,
          [
            paymentId,
            outRequestNo,
            settlement.status,
            settlement.status === 'FAILED' ? settlement.failureReason : null,
            settlement.status === 'SUCCEEDED' ? (settlement.fundChange ?? null) : null,
            settlement.status === 'SUCCEEDED' ? (settlement.refundedAt ?? null) : null,
          ],
        );
        if (!rows[0]) {
          // Settled by an earlier attempt of this activity.
          const { rows: done } = await db.query('SELECT * FROM refunds WHERE payment_id = $1 AND out_request_no = $2', [paymentId, outRequestNo]);
          return { refund: toRefundView(done[0]), kindSettledNow: undefined };
        }
        const refund = rows[0];
        const change: Record<string, unknown> = {};
        if (refund.kind === 'late_payment') {
          change.latePayment = { ...(payment.late_payment as LatePayment), refundStatus: settlement.status };
        } else if (settlement.status === 'SUCCEEDED') {
          const refunded = payment.refunded_amount_fen + refund.amount_fen;
          await db.query('UPDATE payments SET refunded_amount_fen = $2 WHERE id = $1', [paymentId, refunded]);
          change.status = refunded >= payment.paid_amount_fen ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
        }
        await applyEvent(db, {
          paymentId,
          eventKey,
          type: settlement.status === 'SUCCEEDED' ? 'refund_succeeded' : 'refund_failed',
          data: { outRequestNo, amountFen: refund.amount_fen, ...settlement },
          change,
        });
        return { refund: toRefundView(refund), kindSettledNow: refund.kind as RefundKind };
      });
      if (kindSettledNow) countRefund(settlement.status === 'SUCCEEDED' ? 'succeeded' : 'failed', kindSettledNow);
      // Every settlement gives webhooks; a retry that finds it settled wakes the delivery again.
      await wakeWebhooks?.(paymentId);
      return settled;
    },
  };
}
