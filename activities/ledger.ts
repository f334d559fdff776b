// The only writer of payment state in PostgreSQL. Each event lands once, keyed by the workflow,
// and moves the read model and appends the merchant's webhooks in the same transaction.
import type pg from 'pg';
import type { LedgerActivities, OpenOutcome, PaymentChange, PaymentEventInput, PaymentRecord } from '../lib/activities.js';
import { isDatabaseUnavailable } from '../lib/db.js';
import { webhookTypesFor } from '../lib/webhooks.js';
import { countPaymentEvents } from './metrics.js';
import { appendWebhookEvents, type WebhookWaker } from './webhook-outbox.js';

const CHANGE_COLUMNS: Record<keyof PaymentChange, string> = {
  status: 'status',
  alipayStatus: 'alipay_status',
  alipayTradeNo: 'alipay_trade_no',
  qrCode: 'qr_code',
  paidAmountFen: 'paid_amount_fen',
  paidAt: 'paid_at',
  reason: 'reason',
  alipaySubCode: 'alipay_sub_code',
  latePayment: 'late_payment',
};

function toRecord(row: Record<string, any>): PaymentRecord {
  return {
    status: row.status,
    amountFen: row.amount_fen,
    subject: row.subject,
    qrCode: row.qr_code ?? undefined,
    expiresAt: row.expires_at.toISOString(),
    alipayStatus: row.alipay_status ?? undefined,
    alipayTradeNo: row.alipay_trade_no ?? undefined,
    paidAt: row.paid_at?.toISOString(),
    reason: row.reason ?? undefined,
    alipaySubCode: row.alipay_sub_code ?? undefined,
    latePayment: row.late_payment ?? undefined,
  };
}

/** Bounded by the pool's timeouts: when PostgreSQL is down or stops answering, the attempt fails
 *  within seconds and Temporal retries it; event keys make the retry land once. */
export async function inTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  let discard: Error | undefined;
  try {
    await db.query('BEGIN');
    const result = await work(db);
    await db.query('COMMIT');
    return result;
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
}

/** The read model's columns an event's change sets, as `column = $n` from parameter `first` on,
 *  and their values in the same order. */
function changeAssignments(change: PaymentChange | undefined, first: number): { sets: string[]; values: unknown[] } {
  const entries = Object.entries(change ?? {}).filter(([, value]) => value !== undefined);
  return {
    sets: entries.map(([key], i) => `${CHANGE_COLUMNS[key as keyof PaymentChange]} = $${first + i}`),
    values: entries.map(([, value]) => value),
  };
}

/** Appends one event and moves the read model; false when an earlier attempt already wrote it. */
export async function applyEvent(db: pg.PoolClient, input: PaymentEventInput): Promise<boolean> {
  const inserted = await db.query(
    `INSERT INTO payment_events (payment_id, event_key, type, data)
     VALUES ($1, $2, $3, $4) ON CONFLICT (event_key) DO NOTHING RETURNING id`,
    [input.paymentId, input.eventKey, input.type, JSON.stringify(input.data ?? {})],
  );
  if (inserted.rowCount === 0) return false; // an earlier attempt already wrote it
  const { sets, values } = changeAssignments(input.change, 2);
  if (sets.length > 0) await db.query(`UPDATE payments SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`, [input.paymentId, ...values]);
  await appendWebhookEvents(db, input);
  return true;
}

/** applyEvent for an event that gives no webhook, as one statement (its own transaction): one
 *  round trip instead of four on the paths every order takes (the QR code, a query's answer). */
async function applyEventAtOnce(pool: pg.Pool, input: PaymentEventInput): Promise<boolean> {
  const { sets, values } = changeAssignments(input.change, 5);
  const { rows } = await pool.query<{ applied: number }>(
    `WITH event AS (
       INSERT INTO payment_events (payment_id, event_key, type, data)
       VALUES ($1, $2, $3, $4) ON CONFLICT (event_key) DO NOTHING RETURNING payment_id
     )${
       sets.length > 0
         ? `, moved AS (UPDATE payments SET ${sets.join(', ')}, updated_at = now() WHERE id = (SELECT payment_id FROM event) RETURNING id)`
         : ''
     }
     SELECT count(*)::int AS applied FROM event`,
    [input.paymentId, input.eventKey, input.type, JSON.stringify(input.data ?? {}), ...values],
  );
  return rows[0]!.applied === 1;
}

/** `wakeWebhooks` runs after each commit of an event that gives webhooks, and again when a retry
 *  finds the event already written: a crash between the two loses no wake-up. */
export function createLedgerActivities(pool: pg.Pool, wakeWebhooks?: WebhookWaker): LedgerActivities {
  /** One order's events in one transaction, in order; how many were new. */
  async function recordEvents(inputs: PaymentEventInput[]): Promise<number> {
    const applied =
      inputs.length === 1 && webhookTypesFor(inputs[0]!).length === 0
        ? (await applyEventAtOnce(pool, inputs[0]!)) ? inputs : []
        : await inTransaction(pool, async (db) => {
            const fresh: PaymentEventInput[] = [];
            for (const input of inputs) if (await applyEvent(db, input)) fresh.push(input);
            return fresh;
          });
    countPaymentEvents(applied);
    const paymentId = inputs.find((input) => webhookTypesFor(input).length > 0)?.paymentId;
    if (paymentId) await wakeWebhooks?.(paymentId);
    return applied.length;
  }

  return {
    async openPayment(input) {
      const c = input.create;
      const method = c.method ?? 'qr';
      const fingerprint = c.paymentCode?.fingerprint ?? null;
      const row = [
        input.paymentId, c.appId, c.outTradeNo, c.alipayOutTradeNo, c.merchantId ?? null, c.amountFen, c.subject, c.expiresAt, c.notifyUrl ?? null,
        // cashier_token: the API writes it (api/payments.ts), so it never enters history.
        method, c.paymentCode?.masked ?? null, fingerprint, null, c.pollLadderMs ?? null,
      ];
      // The first poll is due one ladder step after the claim (worker/poll-sweeper.ts).
      const insertPayment = `INSERT INTO payments (id, app_id, out_trade_no, alipay_out_trade_no, merchant_id, amount_fen, subject, status, expires_at, notify_url,
                                 method, auth_code_masked, auth_code_fingerprint, cashier_token, poll_ladder_ms, next_poll_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'AWAITING_PAYMENT', $8, $9, $10, $11, $12, $13, $14::integer[],
                   now() + ($14::integer[])[1] * interval '1 millisecond')
           ON CONFLICT DO NOTHING RETURNING id`;
      if (!input.change && webhookTypesFor(input).length === 0) {
        // The common case, a new number, in one statement: the row and its event land together.
        const { rows } = await pool.query<{ claimed: number; applied: number }>(
          `WITH claimed AS (${insertPayment}),
                event AS (
                  INSERT INTO payment_events (payment_id, event_key, type, data)
                  SELECT id, $15, $16, $17 FROM claimed ON CONFLICT (event_key) DO NOTHING RETURNING id
                )
           SELECT (SELECT count(*) FROM claimed)::int AS claimed, (SELECT count(*) FROM event)::int AS applied`,
          [...row, input.eventKey, input.type, JSON.stringify(input.data ?? {})],
        );
        if (rows[0]!.claimed === 1) {
          if (rows[0]!.applied === 1) countPaymentEvents([input]);
          return { opened: true };
        }
      }
      // The number is taken (a retried claim, a repeat, a moved merchant): decided under the row's lock.
      const { outcome, claimed } = await inTransaction(pool, async (db): Promise<{ outcome: OpenOutcome; claimed: boolean }> => {
        const inserted = await db.query(insertPayment, row);
        if (inserted.rowCount === 0) {
          // The same workflow's row, or the merchant's order under this number made under another
          // Alipay app (the merchant has moved apps since): that order keeps the number.
          const { rows } = await db.query('SELECT * FROM payments WHERE id = $1 OR (merchant_id = $2 AND out_trade_no = $3) FOR UPDATE', [
            input.paymentId,
            c.merchantId ?? null,
            c.outTradeNo,
          ]);
          const existing = rows.find((row) => row.id === input.paymentId) ?? rows[0];
          const record = toRecord(existing);
          // Only an order that never settled, with the same terms, is taken over: a retried claim,
          // a reset run, or a run Temporal no longer has. A finished order is never reopened.
          const sameTerms =
            record.amountFen === c.amountFen && record.subject === c.subject && existing.method === method && existing.auth_code_fingerprint === fingerprint;
          const resumable = existing.id === input.paymentId && record.status === 'AWAITING_PAYMENT' && sameTerms;
          if (!resumable) return { outcome: { opened: false, record }, claimed: false };
        }
        return { outcome: { opened: true }, claimed: await applyEvent(db, input) };
      });
      if (claimed) countPaymentEvents([input]);
      return outcome;
    },

    async recordPaymentEvent(input) {
      return { applied: (await recordEvents([input])) === 1 };
    },

    async recordPaymentEvents(inputs) {
      return { applied: await recordEvents(inputs) };
    },

    async findPaymentRecord({ paymentId }) {
      const { rows } = await pool.query('SELECT * FROM payments WHERE id = $1', [paymentId]);
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
  };
}
