// Refunds in the read model. Every reservation and settlement locks its payment row first, so
// concurrent refunds of one payment, from any number of API and worker processes, are decided one
// at a time: the sum of PENDING and SUCCEEDED refunds never exceeds what was paid.
import type pg from 'pg';
import { DEFAULT_LATE_REFUND_RETRY, type PaymentChange, type RefundLedgerActivities } from '../lib/payments/activity-contracts.js';
import { formatYuan } from '../lib/payments/money.js';
import { PAID_STATUSES, type LatePayment, type PaymentStatus } from '../lib/payments/payment.js';
import type { RefundKind, RefundView } from '../lib/payments/refund.js';
import { inTransaction } from '../lib/platform/database.js';
import { applyEvent } from './ledger.js';
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

/** Money still free to refund under a ceiling: reserved (PENDING) and done refunds of these kinds count. */
async function refundableFen(db: pg.PoolClient, paymentId: string, kinds: string[], ceilingFen: number): Promise<number> {
  const { rows } = await db.query(
    `SELECT coalesce(sum(amount_fen), 0)::bigint AS taken FROM refunds
     WHERE payment_id = $1 AND kind = ANY($2) AND status IN ('PENDING', 'SUCCEEDED')`,
    [paymentId, kinds],
  );
  return ceilingFen - Number(rows[0].taken);
}

export function createRefundActivities(pool: pg.Pool, wakeWebhooks?: WebhookWaker, lateRefundRetry = DEFAULT_LATE_REFUND_RETRY): RefundLedgerActivities {
  return {
    async lateRefundRetryPolicy() {
      return lateRefundRetry;
    },

    async reserveRefund(input) {
      return inTransaction(pool, async (db) => {
        const { rows: payments } = await db.query('SELECT * FROM payments WHERE id = $1 FOR UPDATE', [input.paymentId]);
        const payment = payments[0];
        if (!payment) return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `no order ${input.outTradeNo}` };
        const { rows: existing } = await db.query('SELECT * FROM refunds WHERE payment_id = $1 AND out_request_no = $2', [
          input.paymentId,
          input.outRequestNo,
        ]);
        const known = existing[0];
        if (known && known.amount_fen !== input.amountFen) {
          return {
            outcome: 'refused',
            code: 'REFUND_CONFLICT',
            message: `refund ${input.outRequestNo} exists with amount ${formatYuan(known.amount_fen)}`,
          };
        }
        // A resolution sends again the refund Alipay refused before, under its own number.
        const reopening = input.kind === 'review' && known?.status === 'FAILED';
        if (known && !reopening) return { outcome: 'existing', refund: toRefundView(known) };

        let free: number;
        if (input.kind === 'late_payment') {
          const late = payment.late_payment as LatePayment | null;
          if (payment.status !== 'CLOSED' || !late || late.tradeNo !== input.tradeNo) {
            return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `no late payment ${input.tradeNo ?? ''} on order ${input.outTradeNo}` };
          }
          free = await refundableFen(db, input.paymentId, ['late_payment', 'review'], late.amountFen);
        } else if (input.kind === 'review') {
          // What Alipay holds now, as the resolution read it: no other pending refund may take from it.
          if (payment.status !== 'REVIEW' || input.heldFen === undefined) {
            return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `order ${input.outTradeNo} is ${payment.status}, not REVIEW` };
          }
          const { rows: pending } = await db.query(
            `SELECT coalesce(sum(amount_fen), 0)::bigint AS n FROM refunds WHERE payment_id = $1 AND status = 'PENDING' AND out_request_no <> $2`,
            [input.paymentId, input.outRequestNo],
          );
          free = input.heldFen - Number(pending[0].n);
        } else {
          if (!PAID_STATUSES.includes(payment.status as PaymentStatus) || payment.paid_amount_fen === null) {
            return { outcome: 'refused', code: 'NOT_REFUNDABLE', message: `order ${input.outTradeNo} is ${payment.status}` };
          }
          free = await refundableFen(db, input.paymentId, ['merchant', 'review'], Number(payment.paid_amount_fen));
        }
        if (input.amountFen > free) {
          return {
            outcome: 'refused',
            code: 'REFUND_EXCEEDS_REFUNDABLE',
            message: `refund of ${formatYuan(input.amountFen)} exceeds the refundable ${formatYuan(Math.max(free, 0))}`,
            refundableFen: Math.max(free, 0),
          };
        }
        if (reopening) {
          const { rows: reopened } = await db.query(
            `UPDATE refunds SET status = 'PENDING', failure_reason = NULL, settled_at = NULL
             WHERE payment_id = $1 AND out_request_no = $2 RETURNING *`,
            [input.paymentId, input.outRequestNo],
          );
          const late = payment.late_payment as LatePayment | null;
          await applyEvent(db, {
            paymentId: input.paymentId,
            eventKey: input.eventKey,
            type: 'refund_requested',
            data: { outRequestNo: input.outRequestNo, amountFen: input.amountFen, kind: input.kind, reason: input.reason ?? null, sentAgain: true },
            ...(known.kind === 'late_payment' && late ? { change: { latePayment: { tradeNo: late.tradeNo, refundStatus: 'PENDING' as const } } } : {}),
          });
          return { outcome: 'reserved', refund: toRefundView(reopened[0]) };
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
        const change: PaymentChange = {};
        const late = payment.late_payment as LatePayment | null;
        const paidFen = payment.paid_amount_fen === null ? null : Number(payment.paid_amount_fen);
        if (refund.kind === 'late_payment' && late) {
          change.latePayment = { tradeNo: late.tradeNo, refundStatus: settlement.status };
        } else if (settlement.status === 'SUCCEEDED' && paidFen !== null) {
          // A review refund of a confirmed order counts as refunded too; the resolution, not the
          // refund, decides its status.
          const refunded = Number(payment.refunded_amount_fen) + Number(refund.amount_fen);
          await db.query('UPDATE payments SET refunded_amount_fen = $2 WHERE id = $1', [paymentId, Math.min(refunded, paidFen)]);
          if (refund.kind === 'merchant') change.status = refunded >= paidFen ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
        }
        await applyEvent(db, {
          paymentId,
          eventKey,
          type: settlement.status === 'SUCCEEDED' ? 'refund_succeeded' : 'refund_failed',
          data: { outRequestNo, amountFen: refund.amount_fen, kind: refund.kind, ...settlement },
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
