// The only writer of payment state in PostgreSQL. Each event lands once, keyed by the workflow,
// and moves the read model and appends the merchant's webhooks in the same transaction.
import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { FAILURE, type LedgerActivities, type OpenOutcome, type PaymentChange, type PaymentEventInput, type PaymentRecord } from '../lib/payments/activity-contracts.js';
import { inTransaction, isDataRefused } from '../lib/platform/database.js';
import { canMoveStatus, statusesAllowedBefore, type PaymentStatus } from '../lib/payments/payment.js';
import { webhookTypesFor } from '../lib/merchants/webhooks.js';
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
  alipayReport: 'alipay_report',
};

/** Columns that belong to a status move: written only when the move itself is allowed. */
const WITH_STATUS: ReadonlySet<keyof PaymentChange> = new Set(['status', 'reason', 'paidAmountFen', 'paidAt', 'alipaySubCode', 'alipayReport']);

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
    alipayReport: row.alipay_report ?? undefined,
    paidAmountFen: row.paid_amount_fen === null ? undefined : Number(row.paid_amount_fen),
    refundedAmountFen: Number(row.refunded_amount_fen ?? 0),
    refundsDoneFen: row.refunds_done_fen === undefined ? undefined : Number(row.refunds_done_fen),
    merchantId: row.merchant_id ?? undefined,
    merchantOrderNo: row.out_trade_no,
  };
}

/**
 * The read model's columns an event's change sets, as `column = …` from parameter `first` on, and
 * their values in the same order. The status follows STATUS_TRANSITIONS in the statement itself:
 * a move the table does not allow leaves the status, and the columns that go with it, as they
 * were. A late payment is merged (merge_late_payment), never replaced.
 */
function changeAssignments(input: Pick<PaymentEventInput, 'type' | 'change'>, first: number): { sets: string[]; values: unknown[] } {
  const { change } = input;
  const entries = Object.entries(change ?? {}).filter(([, value]) => value !== undefined) as [keyof PaymentChange, unknown][];
  const values: unknown[] = entries.map(([key, value]) => (key === 'latePayment' || key === 'alipayReport' ? JSON.stringify(value) : value));
  let allowed = '';
  if (change?.status) {
    values.push(statusesAllowedBefore(change.status, input.type === 'review_resolved'));
    allowed = `$${first + values.length - 1}::text[]`;
  }
  const sets = entries.map(([key], i) => {
    const column = CHANGE_COLUMNS[key];
    const param = `$${first + i}`;
    if (key === 'latePayment') return `${column} = merge_late_payment(${column}, ${param}::jsonb)`;
    const value = key === 'alipayReport' ? `${param}::jsonb` : param;
    return allowed && WITH_STATUS.has(key) ? `${column} = CASE WHEN status = ANY(${allowed}) THEN ${value} ELSE ${column} END` : `${column} = ${value}`;
  });
  return { sets, values };
}

/** Appends one event and moves the read model; false when an earlier attempt already wrote it. A
 *  status move the transition table refuses is recorded beside it as an anomaly. */
export async function applyEvent(db: pg.PoolClient, input: PaymentEventInput): Promise<boolean> {
  const inserted = await db.query(
    `INSERT INTO payment_events (payment_id, event_key, type, data)
     VALUES ($1, $2, $3, $4) ON CONFLICT (event_key) DO NOTHING RETURNING id`,
    [input.paymentId, input.eventKey, input.type, JSON.stringify(input.data ?? {})],
  );
  if (inserted.rowCount === 0) return false; // an earlier attempt already wrote it
  const { sets, values } = changeAssignments(input, 2);
  let applied = input;
  if (sets.length > 0) {
    // The row is locked first, so the status the move is checked against is the one it replaces.
    const { rows } = await db.query<{ before: PaymentStatus }>(
      `WITH locked AS (SELECT id, status AS before FROM payments WHERE id = $1 FOR UPDATE)
       UPDATE payments SET ${sets.join(', ')}, updated_at = now() FROM locked WHERE payments.id = locked.id RETURNING locked.before`,
      [input.paymentId, ...values],
    );
    const before = rows[0]?.before;
    const to = input.change?.status;
    if (before && to && !canMoveStatus(before, to, input.type === 'review_resolved')) {
      const reason = `status change refused: ${before} cannot become ${to} (${input.type} event)`;
      await db.query(
        `INSERT INTO payment_events (payment_id, event_key, type, data) VALUES ($1, $2, 'anomaly', $3) ON CONFLICT (event_key) DO NOTHING`,
        [input.paymentId, `${input.eventKey}:refused`, JSON.stringify({ reason, refused: { from: before, to, event: input.type, ...(input.change?.reason ? { reason: input.change.reason } : {}) } })],
      );
      // The merchant hears only of what happened: a refund did settle, but a status the order
      // never took gives no webhook.
      if (!input.type.startsWith('refund_')) return true;
      const { status: _refused, ...kept } = input.change!;
      applied = { ...input, change: kept };
    }
  }
  await appendWebhookEvents(db, applied);
  return true;
}

/** applyEvent for an event that gives no webhook, as one statement (its own transaction): one
 *  round trip instead of four on the paths every order takes (the QR code, a query's answer). */
async function applyEventAtOnce(pool: pg.Pool, input: PaymentEventInput): Promise<boolean> {
  const { sets, values } = changeAssignments(input, 5);
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

/** The claim is where an order's own values (its subject, its notifyUrl, its amount) are first
 *  stored: when PostgreSQL refuses them, no retry changes that, and the workflow decides what the
 *  order becomes. */
async function storingOrderData<T>(claim: () => Promise<T>): Promise<T> {
  try {
    return await claim();
  } catch (err) {
    if (!isDataRefused(err)) throw err;
    // A data exception's detail says what is wrong with the value; a check violation's repeats the row.
    const { message, detail, code } = err as Error & { detail?: string; code: string };
    throw ApplicationFailure.nonRetryable(detail && code.startsWith('22') ? `${message} (${detail})` : message, FAILURE.orderDataUnstorable);
  }
}

/** `wakeWebhooks` runs after each commit of an event that gives webhooks, and again when a retry
 *  finds the event already written: a crash between the two loses no wake-up. */
export function createLedgerActivities(pool: pg.Pool, wakeWebhooks?: WebhookWaker): LedgerActivities {
  /** One order's events in one transaction, in order; how many were new. */
  async function recordEvents(inputs: PaymentEventInput[]): Promise<number> {
    // A status move is checked under the row's lock, and a refused one recorded: a transaction.
    const applied =
      inputs.length === 1 && webhookTypesFor(inputs[0]!).length === 0 && !inputs[0]!.change?.status
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

  /** Claims the order number: a new row with its created event, or the decision on a taken one. */
  async function claimOrderNumber(input: Parameters<LedgerActivities['openPayment']>[0]): Promise<OpenOutcome> {
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
  }

  return {
    openPayment(input) {
      return storingOrderData(() => claimOrderNumber(input));
    },

    async recordPaymentEvent(input) {
      return { applied: (await recordEvents([input])) === 1 };
    },

    async recordPaymentEvents(inputs) {
      return { applied: await recordEvents(inputs) };
    },

    async findPaymentRecord({ paymentId }) {
      const { rows } = await pool.query(
        `SELECT p.*, (SELECT coalesce(sum(r.amount_fen), 0) FROM refunds r WHERE r.payment_id = p.id AND r.status = 'SUCCEEDED') AS refunds_done_fen
         FROM payments p WHERE p.id = $1`,
        [paymentId],
      );
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
  };
}
