// The only writer of payment state in PostgreSQL. Each event lands once, keyed by the workflow,
// and moves the read model in the same transaction.
import type pg from 'pg';
import type { LedgerActivities, PaymentChange, PaymentEventInput } from '../lib/activities.js';
import { isDatabaseUnavailable } from '../lib/db.js';

const CHANGE_COLUMNS: Record<keyof PaymentChange, string> = {
  status: 'status',
  alipayStatus: 'alipay_status',
  alipayTradeNo: 'alipay_trade_no',
  qrCode: 'qr_code',
  paidAmountFen: 'paid_amount_fen',
  paidAt: 'paid_at',
  reason: 'reason',
};

export function createLedgerActivities(pool: pg.Pool): LedgerActivities {
  async function applyEvent(db: pg.PoolClient, input: PaymentEventInput): Promise<boolean> {
    const inserted = await db.query(
      `INSERT INTO payment_events (payment_id, event_key, type, data)
       VALUES ($1, $2, $3, $4) ON CONFLICT (event_key) DO NOTHING RETURNING id`,
      [input.paymentId, input.eventKey, input.type, JSON.stringify(input.data ?? {})],
    );
    if (inserted.rowCount === 0) return false; // an earlier attempt already wrote it

    if (input.create) {
      const c = input.create;
      await db.query(
        `INSERT INTO payments (id, app_id, out_trade_no, merchant_id, amount_fen, subject, status, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'AWAITING_PAYMENT', $7)
         ON CONFLICT (id) DO NOTHING`, // a reset workflow run records its first event again
        [input.paymentId, c.appId, c.outTradeNo, c.merchantId ?? null, c.amountFen, c.subject, c.expiresAt],
      );
    }
    const entries = Object.entries(input.change ?? {}).filter(([, value]) => value !== undefined);
    if (entries.length > 0) {
      const sets = entries.map(([key], i) => `${CHANGE_COLUMNS[key as keyof PaymentChange]} = $${i + 2}`);
      await db.query(`UPDATE payments SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`, [
        input.paymentId,
        ...entries.map(([, value]) => value),
      ]);
    }
    return true;
  }

  return {
    // Bounded by the pool's timeouts: when PostgreSQL is down or stops answering, the attempt fails
    // within seconds and Temporal retries it; the event key makes the retry land once.
    async recordPaymentEvent(input) {
      const db = await pool.connect();
      let discard: Error | undefined;
      try {
        await db.query('BEGIN');
        const applied = await applyEvent(db, input);
        await db.query('COMMIT');
        return { applied };
      } catch (err) {
        if (isDatabaseUnavailable(err)) {
          // Not rolled back: a ROLLBACK would queue behind the statement that never answered. The
          // connection is closed instead, and the server rolls back what it held.
          discard = err as Error;
        } else {
          await db.query('ROLLBACK').catch((rollbackErr: Error) => (discard = rollbackErr));
        }
        throw err;
      } finally {
        // A connection in doubt is closed, never handed to the next activity.
        db.release(discard);
      }
    },
  };
}
