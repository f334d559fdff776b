// The activities of the webhook delivery workflow. Secrets and payloads stay here: the workflow's
// history holds event ids and what each attempt answered, never a webhook secret.
import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { log } from '@temporalio/activity';
import type pg from 'pg';
import { Agent, fetch } from 'undici';
import { withClientSpan } from '../lib/platform/tracing.js';
import type { WebhookActivities, WebhookAttemptOutcome } from '../lib/payments/activity-contracts.js';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import { openWebhookSecret, webhookSecretColumns } from '../lib/merchants/accounts.js';
import { SIGNATURE_HEADERS, webhookSignature } from '../lib/merchants/signing.js';
import { endpointTarget } from '../lib/merchants/webhook-endpoints.js';
import { webhookBody } from '../lib/merchants/webhooks.js';
import { isPrivateAddress, literalAddress, TARGET_REFUSED, type WebhookPrivateTargets } from '../lib/merchants/webhook-targets.js';
import { inTransaction } from '../lib/platform/database.js';
import { countWebhookAttempt } from './metrics.js';

export const EVENT_ID_HEADER = 'Durapay-Event-Id';

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
    async nextPendingWebhook({ paymentId, endpointId }) {
      const { rows } = endpointId
        ? await pool.query(
            `SELECT d.event_id AS id, e.type FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE d.payment_id = $1 AND d.endpoint_id = $2 AND d.status = 'pending' ORDER BY d.sequence LIMIT 1`,
            [paymentId, endpointId],
          )
        : await pool.query(
            "SELECT id, type FROM webhook_events WHERE payment_id = $1 AND status = 'pending' ORDER BY sequence LIMIT 1",
            [paymentId],
          );
      return rows[0] && { eventId: rows[0].id, type: rows[0].type };
    },

    async deliverWebhook({ eventId, endpointId }): Promise<WebhookAttemptOutcome> {
      const attemptedAt = new Date();
      let row: { id: string; type: string; created_at: Date; payload: unknown };
      let url: string;
      // Opened in memory for this attempt only; a secret that does not open fails the activity (retried).
      let secrets: string[];
      if (endpointId) {
        const { rows } = await pool.query('SELECT id, type, created_at, payload FROM webhook_events WHERE id = $1', [eventId]);
        const target = await endpointTarget(pool, options.merchantSecrets, endpointId);
        if (!target) {
          countWebhookAttempt('cancelled');
          return { delivered: false, cancelled: true, attemptedAt: attemptedAt.toISOString(), error: 'the endpoint is disabled or deleted' };
        }
        row = rows[0];
        ({ url, secrets } = target);
      } else {
        const { rows } = await pool.query(
          `SELECT e.id, e.type, e.created_at, e.payload, p.notify_url, ${webhookSecretColumns('m')}
           FROM webhook_events e JOIN payments p ON p.id = e.payment_id JOIN merchants m ON m.id = p.merchant_id
           WHERE e.id = $1`,
          [eventId],
        );
        if (!rows[0]?.notify_url) {
          countWebhookAttempt('no_endpoint');
          return { delivered: false, attemptedAt: attemptedAt.toISOString(), error: 'the order has no notifyUrl' };
        }
        row = rows[0];
        url = rows[0].notify_url;
        secrets = [await openWebhookSecret(options.merchantSecrets, rows[0])];
      }
      const body = webhookBody(row);
      // A span per POST: which event to which target and what came of it, never the URL (it may
      // hold a token) nor the signature.
      const spanAttributes = { 'durapay.event_id': row.id, 'durapay.event_type': row.type, 'durapay.webhook_target': endpointId ?? 'notifyUrl' };
      return withClientSpan('webhook.deliver', spanAttributes, async (span) => {
        const started = performance.now();
        const latency = () => Math.round(performance.now() - started);
        try {
          const literal = literalAddress(new URL(url));
          if (options.privateTargets === 'deny' && literal !== undefined && isPrivateAddress(literal)) {
            throw new TargetRefusedError(literal, literal);
          }
          const res = await fetch(url, {
            dispatcher,
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'user-agent': 'durapay-webhooks/1',
              [EVENT_ID_HEADER]: row.id,
              [SIGNATURE_HEADERS.signature]: webhookSignature(secrets, body, Math.floor(Date.now() / 1000)),
            },
            body,
            // A redirect is not a delivery: the signed body goes only where the merchant said.
            redirect: 'manual',
            signal: AbortSignal.timeout(options.timeoutMs),
          });
          await res.body?.cancel().catch(() => {});
          const delivered = res.status >= 200 && res.status < 300;
          countWebhookAttempt(delivered ? 'delivered' : 'refused');
          span.setAttributes({ 'webhook.outcome': delivered ? 'delivered' : 'refused', 'http.status_code': res.status });
          return { delivered, attemptedAt: attemptedAt.toISOString(), statusCode: res.status, latencyMs: latency(), ...(delivered ? {} : { error: `HTTP ${res.status}` }) };
        } catch (err) {
          const { error, metric } = describeFailure(err);
          countWebhookAttempt(metric);
          span.setAttribute('webhook.outcome', metric);
          log.warn('webhook attempt failed', { eventId: row.id, result: error, detail: failureDetail(err) });
          return { delivered: false, attemptedAt: attemptedAt.toISOString(), latencyMs: latency(), error };
        }
      });
    },

    async recordWebhookAttempt({ eventId, endpointId, attemptKey, outcome, eventStatus }) {
      await inTransaction(pool, async (db) => {
        // A cancelled delivery sent nothing: no attempt to store, only its status.
        if (!outcome.cancelled) {
          const inserted = await db.query(
            `INSERT INTO webhook_attempts (event_id, endpoint_id, attempt_key, attempted_at, status_code, latency_ms, error, delivered)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (attempt_key) DO NOTHING`,
            [eventId, endpointId ?? null, attemptKey, outcome.attemptedAt, outcome.statusCode ?? null, outcome.latencyMs ?? null, outcome.error ?? null, outcome.delivered],
          );
          if (inserted.rowCount === 0) return; // an earlier attempt of this activity wrote it
        }
        const deliveredAt = [outcome.delivered, outcome.attemptedAt] as const;
        if (endpointId) {
          await db.query(
            `UPDATE webhook_deliveries SET status = $3, delivered_at = CASE WHEN $4 THEN $5::timestamptz ELSE delivered_at END
             WHERE endpoint_id = $1 AND event_id = $2 AND status <> 'cancelled'`,
            [endpointId, eventId, eventStatus, ...deliveredAt],
          );
        } else {
          await db.query(
            `UPDATE webhook_events SET status = $2, delivered_at = CASE WHEN $3 THEN $4::timestamptz ELSE delivered_at END WHERE id = $1`,
            [eventId, eventStatus, ...deliveredAt],
          );
        }
      });
    },

    async reopenWebhookEvent({ paymentId, eventId, endpointId }) {
      if (endpointId) {
        await pool.query(
          // A resend is the merchant's own ask: a cancelled delivery goes too, to the endpoint enabled again.
          "UPDATE webhook_deliveries SET status = 'pending' WHERE endpoint_id = $1 AND event_id = $2 AND payment_id = $3",
          [endpointId, eventId, paymentId],
        );
      } else {
        await pool.query("UPDATE webhook_events SET status = 'pending' WHERE id = $1 AND payment_id = $2 AND status <> 'no_endpoint'", [eventId, paymentId]);
      }
    },
  };
}
