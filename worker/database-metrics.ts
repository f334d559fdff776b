// Gauges read from PostgreSQL when the worker's /metrics is scraped: what the alerts of
// deploy/prometheus/alerts.yml watch that no counter can say (orders in REVIEW and how long the
// oldest has been there, orders waiting for payment, the webhook backlog and its oldest failing
// delivery, yesterday's reconciliation). Three queries a scrape, each one round trip on indexed
// rows (the partial and status indexes of db/migrations). A query that fails or does not answer in
// time leaves its gauges out of that scrape (and says why in a comment line); the rest is served.
// Every worker reads the same database, so with several workers each reports the same values: the
// rules take max() or min().
import type { Logger } from 'pino';
import type pg from 'pg';
import { Gauge, Registry } from 'prom-client';

/** A scrape answers within Prometheus' default timeout (10 s) even when PostgreSQL does not. */
const QUERY_TIMEOUT_MS = 3_000;

interface GaugeGroup {
  registry: Registry;
  /** Sets the group's gauges from one query. */
  read(pool: pg.Pool): Promise<void>;
}

function paymentGauges(): GaugeGroup {
  const registry = new Registry();
  const registers = [registry];
  const review = new Gauge({ name: 'durapay_payments_in_review', help: 'Orders in REVIEW now (an operator must resolve each)', registers });
  const reviewAge = new Gauge({
    name: 'durapay_payments_in_review_oldest_age_seconds',
    help: "Seconds since the row of the longest-waiting REVIEW order last changed (0 when there is none)",
    registers,
  });
  const waiting = new Gauge({ name: 'durapay_payments_awaiting_payment', help: 'Orders AWAITING_PAYMENT now (QR codes out, barcode payments confirming)', registers });
  return {
    registry,
    async read(pool) {
      const { rows } = await pool.query<{ review: number; review_age: number | null; waiting: number }>(
        `SELECT count(*) FILTER (WHERE status = 'REVIEW')::int AS review,
                extract(epoch FROM now() - min(updated_at) FILTER (WHERE status = 'REVIEW'))::float8 AS review_age,
                count(*) FILTER (WHERE status = 'AWAITING_PAYMENT')::int AS waiting
           FROM payments WHERE status IN ('REVIEW', 'AWAITING_PAYMENT')`,
      );
      const row = rows[0]!;
      review.set(row.review);
      reviewAge.set(Math.max(0, row.review_age ?? 0));
      waiting.set(row.waiting);
    },
  };
}

function webhookGauges(): GaugeGroup {
  const registry = new Registry();
  const registers = [registry];
  const pending = new Gauge({
    name: 'durapay_webhook_pending_deliveries',
    help: "Webhook deliveries not yet delivered or given up: to orders' notifyUrls and to merchants' endpoints",
    registers,
  });
  const pendingAge = new Gauge({ name: 'durapay_webhook_oldest_pending_age_seconds', help: 'Age of the oldest pending webhook delivery (0 when there is none)', registers });
  const failingAge = new Gauge({
    name: 'durapay_webhook_oldest_failing_age_seconds',
    help: 'Seconds since the first failed attempt of the longest-failing delivery still pending (0 when none is failing)',
    registers,
  });
  return {
    registry,
    async read(pool) {
      // Pending rows only (partial indexes webhook_events_pending_idx, webhook_deliveries_pending_idx);
      // each one's failed attempts by webhook_attempts_event_idx. An attempt without an endpoint
      // was at the order's notifyUrl.
      const { rows } = await pool.query<{ pending: number; pending_age: number | null; failing_age: number | null }>(
        `WITH pending AS (
           SELECT e.id AS event_id, NULL::text AS endpoint_id, e.created_at FROM webhook_events e WHERE e.status = 'pending'
           UNION ALL
           SELECT d.event_id, d.endpoint_id, d.created_at FROM webhook_deliveries d WHERE d.status = 'pending'
         )
         SELECT count(*)::int AS pending,
                extract(epoch FROM now() - min(p.created_at))::float8 AS pending_age,
                extract(epoch FROM now() - min(f.failing_since))::float8 AS failing_age
           FROM pending p
           LEFT JOIN LATERAL (
             SELECT min(a.attempted_at) AS failing_since FROM webhook_attempts a
              WHERE a.event_id = p.event_id AND a.endpoint_id IS NOT DISTINCT FROM p.endpoint_id AND NOT a.delivered
           ) f ON true`,
      );
      const row = rows[0]!;
      pending.set(row.pending);
      pendingAge.set(Math.max(0, row.pending_age ?? 0));
      failingAge.set(Math.max(0, row.failing_age ?? 0));
    },
  };
}

function reconciliationGauges(platformAppId: string): GaugeGroup {
  const registry = new Registry();
  const registers = [registry];
  const yesterdayDone = new Gauge({
    name: 'durapay_reconciliation_yesterday_done',
    help: "1 when the app's reconciliation of yesterday (Beijing date) is DONE, else 0",
    labelNames: ['app_id'] as const,
    registers,
  });
  const mismatches = new Gauge({
    name: 'durapay_reconciliation_mismatches',
    help: "Mismatches the app's latest DONE reconciliation found (its latest reconciled day)",
    labelNames: ['app_id'] as const,
    registers,
  });
  return {
    registry,
    async read(pool) {
      // Every app the worker reconciles (worker/worker.ts: the platform app and each registered
      // one); rows by the primary key (app_id, bill_date). Beijing is UTC+8 all year.
      const { rows } = await pool.query<{ app_id: string; done: boolean; mismatches: number | null }>(
        `WITH apps AS (SELECT $1::text AS app_id UNION SELECT app_id FROM alipay_apps)
         SELECT a.app_id,
                EXISTS (SELECT 1 FROM reconciliations r
                         WHERE r.app_id = a.app_id AND r.status = 'DONE'
                           AND r.bill_date = ((now() AT TIME ZONE 'UTC') + interval '8 hours')::date - 1) AS done,
                (SELECT r.mismatch_count FROM reconciliations r
                  WHERE r.app_id = a.app_id AND r.status = 'DONE' ORDER BY r.bill_date DESC LIMIT 1) AS mismatches
           FROM apps a`,
        [platformAppId],
      );
      yesterdayDone.reset();
      mismatches.reset();
      for (const row of rows) {
        yesterdayDone.set({ app_id: row.app_id }, row.done ? 1 : 0);
        // An app never reconciled has no latest day: no sample.
        if (row.mismatches !== null) mismatches.set({ app_id: row.app_id }, row.mismatches);
      }
    },
  };
}

export interface DatabaseMetrics {
  /** The gauges' text for one scrape: each group whose query answered. */
  metrics(): Promise<string>;
}

export function databaseMetrics(pool: pg.Pool, { platformAppId, logger }: { platformAppId: string; logger: Logger }): DatabaseMetrics {
  const groups = [paymentGauges(), webhookGauges(), reconciliationGauges(platformAppId)];
  return {
    async metrics() {
      const texts = await Promise.all(
        groups.map(async (group, index) => {
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([
              group.read(pool),
              new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`no answer from PostgreSQL in ${QUERY_TIMEOUT_MS} ms`)), QUERY_TIMEOUT_MS);
              }),
            ]);
            return await group.registry.metrics();
          } catch (err) {
            logger.warn({ err, gauges: index }, "the worker's database gauges could not be read; this scrape leaves them out");
            return `# the database gauges (${group.registry.getMetricsAsArray().map((m) => m.name).join(', ')}) could not be read: ${(err as Error).message.replace(/\s+/g, ' ')}\n`;
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      return texts.join('');
    },
  };
}
