// Daily reconciliation with Alipay's trade bill: the domain shared by the reconciliation workflows,
// their activities, the worker that schedules them and the operator API. Nothing here carries a
// key, a secret or the bill's download URL.
import { defineSignal } from '@temporalio/workflow';
import type { Finding, MismatchType } from './findings.js';
import type { LatePaymentPolicy } from './payment.js';

export type ReconciliationStatus = 'RUNNING' | 'DONE' | 'BILL_NOT_READY' | 'FAILED';

export interface ReconciliationFindings {
  findings: Finding[];
}

/** Findings of a reconciliation, for the order's own workflow (or one started for it). */
export const reconciliationFindingsSignal = defineSignal<[ReconciliationFindings]>('reconciliationFindings');

/** Every duration and count of the process is an input, so tests run it in seconds. */
export interface ReconciliationSettings {
  appId: string;
  /** How long to wait before asking again while Alipay says the bill does not exist yet. */
  billNotReadyWaitMs: number;
  /** How many times to ask in all before the run ends BILL_NOT_READY. */
  billNotReadyTries: number;
  /** What a payment found for an order already closed becomes (as for late notifies). */
  latePaymentPolicy: LatePaymentPolicy;
}

export interface ReconciliationInput {
  /** The Beijing day to reconcile, YYYY-MM-DD. */
  date: string;
  settings: ReconciliationSettings;
}

export interface ReconciliationTotals {
  payments: { gateway: { count: number; amountFen: number }; local: { count: number; amountFen: number } };
  refunds: { gateway: { count: number; amountFen: number }; local: { count: number; amountFen: number } };
}

/** What the workflow sees of a comparison: counts, and the mismatches themselves only while few. */
export interface ComparisonSummary {
  totals: ReconciliationTotals;
  mismatchCount: number;
  byType: Partial<Record<MismatchType, number>>;
  /** Present when the list is short enough for history. */
  /** Each names the order as its merchant knows it (merchantId, outTradeNo), and Alipay's number. */
  mismatches?: { type: MismatchType; merchantId: string | null; outTradeNo: string | null; alipayOutTradeNo: string; detail: string }[];
  /** Always: where the whole list lives in PostgreSQL. */
  mismatchList: { table: 'reconciliation_mismatches'; runId: string };
}

export interface ReconciliationOutcome {
  date: string;
  status: Exclude<ReconciliationStatus, 'RUNNING'>;
  reason?: string;
  comparison?: ComparisonSummary;
  feedback?: FeedbackSummary;
}

export interface FeedbackSummary {
  /** Orders whose running workflow was signalled. */
  signalled: number;
  /** Orders whose workflow had finished: a findings workflow was started (or signalled) for each. */
  started: number;
  /** Mismatches of no order at all, left for an operator. */
  unknownOrders: number;
}

export interface ReconciliationFindingsInput {
  appId: string;
  /** Alipay's out_trade_no of the order. */
  outTradeNo: string;
  paymentId: string;
  latePaymentPolicy: LatePaymentPolicy;
}

/** One per app and day: a second request for the same day finds the first. */
export function reconciliationWorkflowId(appId: string, date: string): string {
  return `reconciliation:${appId}:${date}`;
}

/** The workflow started for an order whose own workflow has finished, one per order and day. */
export function reconciliationFindingsWorkflowId(appId: string, date: string, outTradeNo: string): string {
  return `reconciliation:${appId}:${date}:${outTradeNo}`;
}

/** The Temporal Schedule of the daily run, one per app. */
export function reconciliationScheduleId(appId: string): string {
  return `daily-reconciliation:${appId}`;
}

export const RECONCILIATION_WORKFLOW_TYPE = 'reconciliationWorkflow';
export const DAILY_RECONCILIATION_WORKFLOW_TYPE = 'dailyReconciliationWorkflow';
export const RECONCILIATION_FINDINGS_WORKFLOW_TYPE = 'reconciliationFindingsWorkflow';

// Beijing days: UTC+8, no daylight saving. Pure arithmetic, so workflows may use it.
const BEIJING_OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The instant a Beijing day starts, or undefined when the text is not a real YYYY-MM-DD day. */
export function beijingDayStart(date: string): number | undefined {
  const match = DATE.exec(date);
  if (!match) return undefined;
  const [, y, m, d] = match.map(Number) as number[];
  const ms = Date.UTC(y!, m! - 1, d!) - BEIJING_OFFSET_MS;
  // Date.UTC rolls 02-30 over to 03-02: a round trip refuses such days.
  return beijingDay(ms) === date ? ms : undefined;
}

/** The Beijing day, YYYY-MM-DD, of an instant. */
export function beijingDay(epochMs: number): string {
  return new Date(epochMs + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}

/** The Beijing day before the one an instant falls on: the day a daily run reconciles. */
export function previousBeijingDay(epochMs: number): string {
  return beijingDay(epochMs - DAY_MS);
}

export function beijingDayEnd(date: string): number | undefined {
  const start = beijingDayStart(date);
  return start === undefined ? undefined : start + DAY_MS;
}
