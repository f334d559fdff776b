// GET /ops/payments/:paymentId/timeline: one order's story in one answer, for the engineer on call.
// The ledger's events (the order's and its refunds'), every webhook attempt (to the order's
// notifyUrl and to the merchant's endpoints), the Alipay calls as the histories of the order's
// workflows hold them, and the reconciliation findings, in time order, with the Temporal UI link
// and the trace the order was started under. Reads only: PostgreSQL and Temporal's histories; the
// API never calls Alipay. Nothing secret is answered: no keys, signatures, buyer ids, payment
// codes, webhook secrets or response bodies.
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { formatYuan } from '../lib/payments/money.js';
import { TRACE_ID_MEMO } from '../lib/platform/request-ids.js';
import { reviewWorkflowId, lateNotifyWorkflowId } from '../lib/payments/payment.js';
import { refundWorkflowId } from '../lib/payments/refund.js';
import { reconciliationFindingsWorkflowId } from '../lib/payments/reconciliation.js';
import { answerWithin } from './answer-time.js';
import { attemptResource } from './events.js';
import { HttpError, invalidRequest } from './errors.js';
import { unknownFields } from './payments.js';
import type { PaymentRow } from './read-model.js';
import { TRACE_ID_PATTERN, type OpsTimeline, type TimelineEntry, type TimelineWorkflow } from './schemas.js';

export interface OpsTimelineDeps {
  client: Client;
  pool: pg.Pool;
  answerTimeoutMs: number;
  /** TEMPORAL_UI_URL: the base of the workflow links; unset: no links. */
  temporalUiUrl?: string;
}

/** The Alipay method each Alipay activity calls. */
export const ALIPAY_ACTIVITY_METHODS: Readonly<Record<string, string>> = {
  // The order's first step: claim the number, precreate, record the QR code (one local activity).
  openOrder: 'alipay.trade.precreate',
  precreateTrade: 'alipay.trade.precreate',
  queryTrade: 'alipay.trade.query',
  closeTrade: 'alipay.trade.close',
  voidTrade: 'alipay.trade.cancel',
  chargePaymentCode: 'alipay.trade.pay',
  refundTrade: 'alipay.trade.refund',
};

const PAYMENT_ID_RULE = 'must be a payment id, payment:<appId>:<Alipay out_trade_no>, as GET /ops/payments lists it';
export const timelinePaymentId = z
  .string({ error: PAYMENT_ID_RULE })
  .regex(/^payment:[A-Za-z0-9]{1,32}:[A-Za-z0-9_]{1,64}$/, PAYMENT_ID_RULE);
export const timelineQuery = z.strictObject({}, unknownFields);

/** At most this many runs of one workflow are followed back through continue-as-new. */
const MAX_RUNS = 20;
/** Longer texts (a failure's message) are cut here. */
const MAX_TEXT = 300;

/** Same instant: the call, then what the ledger made of it, then what the merchant was told. */
const SOURCE_RANK: Record<TimelineEntry['source'], number> = { alipay: 0, ledger: 1, webhook: 2, reconciliation: 3 };

/** Keys never answered, wherever they are in a ledger event or an Alipay answer. */
const HIDDEN_KEY = /buyer|auth_?code|payment_?code|sign|secret|token|key|password|qr_?code|cert/i;

const cut = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text);

/** A ledger event's data for the operator: hidden keys dropped, fen amounts as yuan strings. */
export function publicData(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(publicData);
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (HIDDEN_KEY.test(key)) continue;
    const fen = /^(.*)Fen$/.exec(key);
    if (fen && typeof inner === 'number' && Number.isSafeInteger(inner) && inner >= 0) out[fen[1] || 'amount'] = formatYuan(inner);
    else out[key] = publicData(inner);
  }
  return out;
}

function ledgerSummary(type: string, data: Record<string, unknown>): string {
  const facts: string[] = [];
  const say = (value: unknown, label = '') => {
    if (typeof value === 'string' && value) facts.push(`${label}${cut(value)}`);
  };
  say(data.outRequestNo, 'refund ');
  say(data.amount);
  say(data.totalAmount);
  say(data.source, 'by ');
  say(data.tradeStatus);
  say(data.action);
  say(data.outcome);
  say(data.operator, 'operator ');
  say(data.reason);
  say(data.subCode);
  return facts.length ? `${type}: ${facts.join(', ')}` : type;
}

/** What an Alipay activity's result says, in a word, and its sub_code: never the rest of it. */
export function alipayResult(result: unknown): { result: string | null; subCode: string | null } {
  if (!result || typeof result !== 'object') return { result: null, subCode: null };
  const r = result as Record<string, any>;
  // openOrder: the number was already claimed, so it called nothing; else the QR code was issued.
  if (r.opened === false) return { result: 'order number taken: not sent', subCode: null };
  if (r.opened === true) return { result: 'qr_code_issued', subCode: null };
  const said = r.outcome ?? r.action ?? r.tradeStatus ?? (typeof r.qrCode === 'string' ? 'qr_code_issued' : undefined);
  const status = r.report?.tradeStatus;
  const subCode = r.subCode ?? r.refusal?.subCode ?? r.refusal?.code ?? null;
  return {
    result: typeof said === 'string' ? (typeof status === 'string' ? `${said} ${status}` : said) : null,
    subCode: typeof subCode === 'string' ? subCode : null,
  };
}

function failureText(failure: temporal.api.failure.v1.IFailure | null | undefined): string | null {
  if (!failure) return null;
  const parts: string[] = [];
  for (let f: temporal.api.failure.v1.IFailure | null | undefined = failure, depth = 0; f && depth < 3; f = f.cause, depth++) {
    const type = f.applicationFailureInfo?.type;
    if (f.message) parts.push(type ? `${type}: ${f.message}` : f.message);
  }
  return parts.length ? cut(parts.join(' ← ')) : 'failed';
}

/** What the SDK's core writes in a local activity's marker (the fields read here). */
interface LocalActivityMarkerData {
  activity_type?: string;
  attempt?: number;
  original_schedule_time?: unknown;
  complete_time?: unknown;
}

/** A marker's protobuf timestamp ({seconds, nanos}) in ms; undefined when it is not one. */
function markerTime(value: unknown): number | undefined {
  const ts = value as { seconds?: unknown; nanos?: unknown } | null | undefined;
  const seconds = Number(ts?.seconds);
  if (!ts || !Number.isFinite(seconds) || seconds <= 0) return undefined;
  return seconds * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6);
}

const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || (err as { code?: number }).code === 5;

export function opsTimelineRouter(deps: OpsTimelineDeps): Router {
  const router = Router();
  const { client, pool } = deps;
  const namespace = client.options.namespace;
  const converter = client.options.loadedDataConverter;

  function uiLink(workflowId: string, runId: string | null): string | null {
    if (!deps.temporalUiUrl) return null;
    const base = `${deps.temporalUiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows`;
    return runId
      ? `${base}/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`
      : `${base}?query=${encodeURIComponent(`WorkflowId="${workflowId}"`)}`;
  }

  /** The workflow as Temporal has it (undefined when it does not), and its trace id. */
  async function describe(workflowId: string) {
    try {
      const description = await client.workflow.getHandle(workflowId).describe();
      const traceId = description.memo?.[TRACE_ID_MEMO];
      return {
        runId: description.runId,
        status: description.status.name as string,
        traceId: typeof traceId === 'string' && TRACE_ID_PATTERN.test(traceId) ? traceId : null,
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Every run's events, oldest run first, following continue-as-new back from the latest. */
  async function histories(workflowId: string, latestRunId: string): Promise<temporal.api.history.v1.IHistoryEvent[][] | undefined> {
    const runs: temporal.api.history.v1.IHistoryEvent[][] = [];
    let runId: string | null | undefined = latestRunId;
    for (let n = 0; runId && n < MAX_RUNS; n++) {
      let events: temporal.api.history.v1.IHistoryEvent[];
      try {
        events = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
      } catch (err) {
        if (isNotFound(err)) break;
        throw err;
      }
      runs.unshift(events);
      runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    }
    return runs.length ? runs : undefined;
  }

  const decode = async (payloads: temporal.api.common.v1.IPayloads | null | undefined): Promise<unknown> => {
    try {
      return payloads?.payloads?.length ? await decodeFromPayloadsAtIndex(converter, 0, payloads.payloads) : undefined;
    } catch {
      return undefined; // a payload this API cannot read says nothing here
    }
  };

  /** The Alipay calls in one run's history: activities, and local-activity markers. */
  async function alipayCalls(workflowId: string, events: temporal.api.history.v1.IHistoryEvent[]): Promise<TimelineEntry[]> {
    const calls = new Map<string, TimelineEntry & { activity: string }>();
    const entries: TimelineEntry[] = [];
    const at = (event: temporal.api.history.v1.IHistoryEvent) => new Date(optionalTsToMs(event.eventTime) ?? 0).toISOString();
    const close = (scheduledId: unknown, event: temporal.api.history.v1.IHistoryEvent, outcome: string, fields: Partial<TimelineEntry>) => {
      const call = calls.get(String(scheduledId));
      if (!call) return;
      Object.assign(call, { outcome, finishedAt: at(event), ...fields });
      call.summary = `${call.type}: ${outcome}${call.result ? ` (${call.result}${call.subCode ? `, ${call.subCode}` : ''})` : call.subCode ? ` (${call.subCode})` : ''}${call.failure ? `: ${call.failure}` : ''}`;
    };
    for (const event of events) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled) {
        const activity = scheduled.activityType?.name ?? '';
        const method = ALIPAY_ACTIVITY_METHODS[activity];
        if (!method) continue;
        const entry = {
          at: at(event),
          source: 'alipay' as const,
          type: method,
          summary: `${method}: pending`,
          workflowId,
          activity,
          outcome: 'pending',
          attempt: 1,
          finishedAt: null,
          result: null,
          subCode: null,
          failure: null,
        };
        calls.set(String(event.eventId), entry);
        entries.push(entry);
        continue;
      }
      const started = event.activityTaskStartedEventAttributes;
      if (started) {
        const call = calls.get(String(started.scheduledEventId));
        if (call && started.attempt) call.attempt = started.attempt;
        continue;
      }
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed) {
        if (calls.has(String(completed.scheduledEventId))) close(completed.scheduledEventId, event, 'completed', alipayResult(await decode(completed.result)));
        continue;
      }
      const failed = event.activityTaskFailedEventAttributes;
      if (failed) {
        close(failed.scheduledEventId, event, 'failed', { failure: failureText(failed.failure) });
        continue;
      }
      const timedOut = event.activityTaskTimedOutEventAttributes;
      if (timedOut) {
        close(timedOut.scheduledEventId, event, 'timed_out', { failure: failureText(timedOut.failure) });
        continue;
      }
      const canceled = event.activityTaskCanceledEventAttributes;
      if (canceled) {
        close(canceled.scheduledEventId, event, 'canceled', {});
        continue;
      }
      const marker = event.markerRecordedEventAttributes;
      if (marker?.markerName === 'core_local_activity') {
        const data = (await decode(marker.details?.data)) as LocalActivityMarkerData | undefined;
        const activity = data?.activity_type ?? '';
        const method = ALIPAY_ACTIVITY_METHODS[activity];
        if (!method) continue;
        // The worker's own times of the call: its first scheduling and its end; the marker is
        // written only when the workflow task that ran it completes.
        const recorded = optionalTsToMs(event.eventTime) ?? 0;
        const scheduledMs = markerTime(data?.original_schedule_time);
        const completedMs = markerTime(data?.complete_time);
        const startMs = Math.min(scheduledMs ?? recorded, completedMs ?? recorded, recorded);
        const entry = {
          at: new Date(startMs).toISOString(),
          source: 'alipay' as const,
          type: method,
          summary: method,
          workflowId,
          activity,
          outcome: marker.failure ? 'failed' : 'completed',
          attempt: typeof data?.attempt === 'number' && data.attempt >= 1 ? data.attempt : 1,
          finishedAt: new Date(Math.max(startMs, completedMs ?? recorded)).toISOString(),
          ...(marker.failure ? { result: null, subCode: null } : alipayResult(await decode(marker.details?.result))),
          failure: failureText(marker.failure),
        };
        entry.summary = `${method}: ${entry.outcome}${entry.result ? ` (${entry.result})` : ''}${entry.failure ? `: ${entry.failure}` : ''}`;
        entries.push(entry);
      }
    }
    return entries;
  }

  router.get('/payments/:paymentId/timeline', async (req, res) => {
    const id = timelinePaymentId.safeParse(req.params.paymentId);
    if (!id.success) throw invalidRequest(new z.ZodError(id.error.issues.map((issue) => ({ ...issue, path: ['paymentId'] }))));
    const query = timelineQuery.safeParse(req.query);
    if (!query.success) throw invalidRequest(query.error);
    const paymentId = id.data;
    const { rows } = await pool.query<PaymentRow>('SELECT * FROM payments WHERE id = $1', [paymentId]);
    const row = rows[0];
    if (!row) throw new HttpError('NOT_FOUND', `no payment ${paymentId}`);
    const appId = row.app_id;
    const alipayOutTradeNo = row.alipay_out_trade_no ?? paymentId.slice(`payment:${appId}:`.length);

    const [ledger, attempts, refunds, findings] = await Promise.all([
      pool.query<{ id: string; type: string; data: Record<string, unknown>; occurred_at: Date }>(
        'SELECT id, type, data, occurred_at FROM payment_events WHERE payment_id = $1 ORDER BY id',
        [paymentId],
      ),
      pool.query<{
        event_id: string;
        type: string;
        endpoint_id: string | null;
        attempt: number;
        attempted_at: Date;
        status_code: number | null;
        latency_ms: number | null;
        error: string | null;
        delivered: boolean;
      }>(
        `SELECT a.event_id, e.type, a.endpoint_id, a.attempted_at, a.status_code, a.latency_ms, a.error, a.delivered,
                row_number() OVER (PARTITION BY a.event_id, a.endpoint_id ORDER BY a.id)::int AS attempt
         FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id
         WHERE e.payment_id = $1 ORDER BY a.id`,
        [paymentId],
      ),
      pool.query<{ out_request_no: string }>('SELECT out_request_no FROM refunds WHERE payment_id = $1 ORDER BY created_at, out_request_no', [paymentId]),
      pool.query<{
        id: string;
        type: string;
        bill_date: string;
        run_id: string;
        out_request_no: string | null;
        local_amount_fen: string | null;
        gateway_amount_fen: string | null;
        detail: string;
        at: Date;
      }>(
        `SELECT m.id, m.type, to_char(m.bill_date, 'YYYY-MM-DD') AS bill_date, m.run_id, m.out_request_no,
                m.local_amount_fen, m.gateway_amount_fen, m.detail,
                coalesce(m.dispatched_at, r.finished_at, r.started_at, m.bill_date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '1 day') AS at
         FROM reconciliation_mismatches m LEFT JOIN reconciliations r ON r.run_id = m.run_id
         WHERE m.payment_id = $1 ORDER BY m.id`,
        [paymentId],
      ),
    ]);

    // The order's workflows: the payment workflow, each refund's, and those that may have run after
    // it ended (a review, a late notify, a reconciliation finding), read only where Temporal has them.
    const candidates: { workflowId: string; kind: TimelineWorkflow['kind']; known: boolean }[] = [
      { workflowId: paymentId, kind: 'payment', known: true },
      ...refunds.rows.map((r) => ({ workflowId: refundWorkflowId(appId, alipayOutTradeNo, r.out_request_no), kind: 'refund' as const, known: true })),
      { workflowId: reviewWorkflowId(paymentId), kind: 'review', known: false },
      ...[...new Set(ledger.rows.flatMap((e) => (e.type === 'notify_received' && e.data?.late === true && typeof e.data.notifyId === 'string' ? [e.data.notifyId] : [])))].map(
        (notifyId) => ({ workflowId: lateNotifyWorkflowId(appId, alipayOutTradeNo, notifyId), kind: 'late-notify' as const, known: true }),
      ),
      ...[...new Set(findings.rows.map((f) => f.bill_date))].map((date) => ({
        workflowId: reconciliationFindingsWorkflowId(appId, date, alipayOutTradeNo),
        kind: 'reconciliation' as const,
        known: false,
      })),
    ];

    const read = await answerWithin(client, Math.max(deps.answerTimeoutMs, 5_000), 'timeline', () =>
      Promise.all(
        candidates.map(async (candidate) => {
          const description = await describe(candidate.workflowId);
          const runs = description ? await histories(candidate.workflowId, description.runId) : undefined;
          const calls = runs ? (await Promise.all(runs.map((events) => alipayCalls(candidate.workflowId, events)))).flat() : [];
          return { candidate, description, historyAvailable: runs !== undefined, calls };
        }),
      ),
    );

    const workflows: TimelineWorkflow[] = read
      .filter((w) => w.candidate.known || w.description)
      .map((w) => ({
        workflowId: w.candidate.workflowId,
        kind: w.candidate.kind,
        runId: w.description?.runId ?? null,
        status: w.description?.status ?? null,
        historyAvailable: w.historyAvailable,
        temporalUiUrl: uiLink(w.candidate.workflowId, w.description?.runId ?? null),
      }));

    const entries: TimelineEntry[] = [
      ...ledger.rows.map((e): TimelineEntry => {
        const data = publicData(e.data ?? {}) as Record<string, unknown>;
        return { at: e.occurred_at.toISOString(), source: 'ledger', type: e.type, summary: ledgerSummary(e.type, data), data };
      }),
      ...read.flatMap((w) => w.calls),
      ...attempts.rows.map((a): TimelineEntry => {
        const attempt = attemptResource({
          attemptedAt: a.attempted_at.toISOString(),
          statusCode: a.status_code,
          latencyMs: a.latency_ms,
          error: a.error,
          delivered: a.delivered,
        });
        const target = a.endpoint_id ? `endpoint ${a.endpoint_id}` : 'notifyUrl';
        return {
          at: attempt.attemptedAt,
          source: 'webhook',
          type: a.type,
          summary: `${a.type} to ${target}, attempt ${a.attempt}: ${attempt.result}`,
          eventId: a.event_id,
          endpointId: a.endpoint_id,
          attempt: a.attempt,
          outcome: attempt.result,
          httpStatus: a.status_code,
          latencyMs: a.latency_ms,
        };
      }),
      ...findings.rows.map((f): TimelineEntry => {
        const yuan = (fen: string | null) => (fen === null ? null : formatYuan(Number(fen)));
        return {
          at: f.at.toISOString(),
          source: 'reconciliation',
          type: f.type,
          summary: `${f.type} in the bill of ${f.bill_date}: ${cut(f.detail)}`,
          billDate: f.bill_date,
          runId: f.run_id,
          localAmount: yuan(f.local_amount_fen),
          gatewayAmount: yuan(f.gateway_amount_fen),
          outRequestNo: f.out_request_no,
          detail: f.detail,
        };
      }),
    ];
    // A stable sort: same instant, same source, as the source keeps them.
    const order = entries.map((entry, index) => ({ entry, index, ms: Date.parse(entry.at) }));
    order.sort((a, b) => a.ms - b.ms || SOURCE_RANK[a.entry.source] - SOURCE_RANK[b.entry.source] || a.index - b.index);

    const payment = read[0]!;
    const timeline: OpsTimeline = {
      paymentId,
      outTradeNo: row.out_trade_no,
      merchantId: row.merchant_id ?? null,
      status: row.status,
      amount: formatYuan(Number(row.amount_fen)),
      workflowId: paymentId,
      temporalUiUrl: uiLink(paymentId, payment.description?.runId ?? null),
      traceId: payment.description?.traceId ?? null,
      historyAvailable: payment.historyAvailable,
      workflows,
      entries: order.map((o) => o.entry),
    };
    res.json(timeline);
  });

  return router;
}
