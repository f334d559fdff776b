// The activities of the webhook delivery workflow. Secrets and payloads stay here: the workflow's
// history holds event ids and what each attempt answered, never a webhook secret.
import type pg from 'pg';
import type { WebhookActivities, WebhookAttemptOutcome } from '../lib/activities.js';
import type { KeyProvider } from '../lib/key-vault.js';
import { openWebhookSecret, webhookSecretColumns } from '../lib/merchants.js';
import { SIGNATURE_HEADERS, webhookSignature } from '../lib/merchant-signing.js';
import { inTransaction } from './ledger.js';
import { countWebhookAttempt } from './metrics.js';

export const EVENT_ID_HEADER = 'Durapay-Event-Id';

/** The exact bytes sent on every attempt: { id, type, created, data }. */
function webhookBody(row: { id: string; type: string; created_at: Date; payload: unknown }): string {
  return JSON.stringify({ id: row.id, type: row.type, created: Math.floor(row.created_at.getTime() / 1000), data: row.payload });
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = error.cause;
  return cause ? `${cause.code ?? ''} ${cause.message ?? ''}`.trim() : error.message;
}

export function createWebhookActivities(pool: pg.Pool, options: { timeoutMs: number; merchantSecrets: KeyProvider }): WebhookActivities {
  return {
    async nextPendingWebhook({ paymentId }) {
      const { rows } = await pool.query(
        "SELECT id, type FROM webhook_events WHERE payment_id = $1 AND status = 'pending' ORDER BY sequence LIMIT 1",
        [paymentId],
      );
      return rows[0] && { eventId: rows[0].id, type: rows[0].type };
    },

    async deliverWebhook({ eventId }): Promise<WebhookAttemptOutcome> {
      const { rows } = await pool.query(
        `SELECT e.id, e.type, e.created_at, e.payload, p.notify_url, ${webhookSecretColumns('m')}
         FROM webhook_events e JOIN payments p ON p.id = e.payment_id JOIN merchants m ON m.id = p.merchant_id
         WHERE e.id = $1`,
        [eventId],
      );
      const row = rows[0];
      const attemptedAt = new Date();
      if (!row?.notify_url) {
        countWebhookAttempt('no_endpoint');
        return { delivered: false, attemptedAt: attemptedAt.toISOString(), error: 'the order has no notifyUrl' };
      }
      // Opened in memory for this attempt only; a secret that does not open fails the activity (retried).
      const webhookSecret = await openWebhookSecret(options.merchantSecrets, row);
      const body = webhookBody(row);
      const started = performance.now();
      const latency = () => Math.round(performance.now() - started);
      try {
        const res = await fetch(row.notify_url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'durapay-webhooks/1',
            [EVENT_ID_HEADER]: row.id,
            [SIGNATURE_HEADERS.signature]: webhookSignature(webhookSecret, body, Math.floor(Date.now() / 1000)),
          },
          body,
          // A redirect is not a delivery: the signed body goes only where the merchant said.
          redirect: 'manual',
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        await res.body?.cancel().catch(() => {});
        const delivered = res.status >= 200 && res.status < 300;
        countWebhookAttempt(delivered ? 'delivered' : 'refused');
        return { delivered, attemptedAt: attemptedAt.toISOString(), statusCode: res.status, latencyMs: latency(), ...(delivered ? {} : { error: `HTTP ${res.status}` }) };
      } catch (err) {
        countWebhookAttempt('unreachable');
        return { delivered: false, attemptedAt: attemptedAt.toISOString(), latencyMs: latency(), error: describeFailure(err, options.timeoutMs) };
      }
    },

    async recordWebhookAttempt({ eventId, attemptKey, outcome, eventStatus }) {
      await inTransaction(pool, async (db) => {
        const inserted = await db.query(
          `INSERT INTO webhook_attempts (event_id, attempt_key, attempted_at, status_code, latency_ms, error, delivered)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (attempt_key) DO NOTHING`,
          [eventId, attemptKey, outcome.attemptedAt, outcome.statusCode ?? null, outcome.latencyMs ?? null, outcome.error ?? null, outcome.delivered],
        );
        if (inserted.rowCount === 0) return; // an earlier attempt of this activity wrote it
        await db.query(
          `UPDATE webhook_events SET status = $2, delivered_at = CASE WHEN $3 THEN $4::timestamptz ELSE delivered_at END WHERE id = $1`,
          [eventId, eventStatus, outcome.delivered, outcome.attemptedAt],
        );
      });
    },

    async reopenWebhookEvent({ paymentId, eventId }) {
      await pool.query("UPDATE webhook_events SET status = 'pending' WHERE id = $1 AND payment_id = $2 AND status <> 'no_endpoint'", [eventId, paymentId]);
    },
  };
}
