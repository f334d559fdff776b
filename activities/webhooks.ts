// The activities of the webhook delivery workflow. Secrets and payloads stay here: the workflow's
// history holds event ids and what each attempt answered, never a webhook secret.
import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { Agent, fetch } from 'undici';
import type { WebhookActivities, WebhookAttemptOutcome } from '../lib/payments/activity-contracts.js';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import { openWebhookSecret, webhookSecretColumns } from '../lib/merchants/accounts.js';
import { SIGNATURE_HEADERS, webhookSignature } from '../lib/merchants/signing.js';
import { isPrivateAddress, literalAddress, TARGET_REFUSED, type WebhookPrivateTargets } from '../lib/merchants/webhook-targets.js';
import { inTransaction } from '../lib/platform/database.js';
import { countWebhookAttempt } from './metrics.js';

export const EVENT_ID_HEADER = 'Durapay-Event-Id';

/** The exact bytes sent on every attempt: { id, type, created, data }. */
function webhookBody(row: { id: string; type: string; created_at: Date; payload: unknown }): string {
  return JSON.stringify({ id: row.id, type: row.type, created: Math.floor(row.created_at.getTime() / 1000), data: row.payload });
}

/** A name that resolved to an address WEBHOOK_PRIVATE_TARGETS=deny refuses. */
class TargetRefusedError extends Error {
  readonly code = 'DURAPAY_TARGET_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to ${address}, a private address (WEBHOOK_PRIVATE_TARGETS=deny)`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The socket's own lookup under deny: one resolution, every address checked, and the socket
 * connects to the addresses checked here, never to a second answer (DNS rebinding finds no gap).
 * Node skips the lookup for a literal address, so deliverWebhook checks those itself.
 */
function checkedLookup(hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const refused = addresses.find((a) => isPrivateAddress(a.address));
    if (refused) return callback(new TargetRefusedError(hostname, refused.address), []);
    if (options.all) return callback(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
}

/** Connections for webhooks: under deny, only to addresses checked as they are resolved. */
export function webhookDispatcher(targets: WebhookPrivateTargets): Agent {
  return new Agent(targets === 'deny' ? { connect: { lookup: checkedLookup as never } } : {});
}

/** What the merchant is told: coarse, never the resolver's or the socket's message (an internal
 *  address, which port is closed). The worker's log keeps the detail for the operator. */
function describeFailure(err: unknown): { error: string; metric: 'unreachable' | 'target_refused' } {
  const error = err as Error & { cause?: { code?: string } };
  if (error.name === 'TimeoutError') return { error: 'timeout', metric: 'unreachable' };
  if (error instanceof TargetRefusedError || error.cause instanceof TargetRefusedError) return { error: TARGET_REFUSED, metric: 'target_refused' };
  return { error: 'unreachable', metric: 'unreachable' };
}

/** The failure's own words for the worker's log (code and message; no URL, which may hold a token). */
function failureDetail(err: unknown): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  const cause = error.cause;
  return cause ? `${cause.code ?? ''} ${cause.message ?? ''}`.trim() : `${error.name}: ${error.message}`;
}

export function createWebhookActivities(
  pool: pg.Pool,
  options: { timeoutMs: number; privateTargets: WebhookPrivateTargets; merchantSecrets: KeyProvider },
): WebhookActivities {
  const dispatcher = webhookDispatcher(options.privateTargets);
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
        const literal = literalAddress(new URL(row.notify_url));
        if (options.privateTargets === 'deny' && literal !== undefined && isPrivateAddress(literal)) {
          throw new TargetRefusedError(literal, literal);
        }
        const res = await fetch(row.notify_url, {
          dispatcher,
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
        const { error, metric } = describeFailure(err);
        countWebhookAttempt(metric);
        log.warn('webhook attempt failed', { eventId: row.id, result: error, detail: failureDetail(err) });
        return { delivered: false, attemptedAt: attemptedAt.toISOString(), latencyMs: latency(), error };
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
