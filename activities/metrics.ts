// What the activities count, for the worker's /metrics (worker/metrics.ts): orders as their events
// are first written, Alipay gateway calls, refunds and webhook attempts. Per process.
import { Counter, Histogram, Registry } from 'prom-client';
import type { PaymentEventInput } from '../lib/payments/activity-contracts.js';
import type { RefundKind } from '../lib/payments/refund.js';

export const activityMetrics = new Registry();

const registers = [activityMetrics];
const paymentsCreated = new Counter({ name: 'durapay_payments_created_total', help: 'Orders whose number was claimed', registers });
const paymentsPaid = new Counter({ name: 'durapay_payments_paid_total', help: 'Orders that became PAID', registers });
const paymentsClosed = new Counter({ name: 'durapay_payments_closed_total', help: 'Orders that became CLOSED', registers });
const paymentsFailed = new Counter({
  name: 'durapay_payments_failed_total',
  help: 'Orders that became FAILED (Alipay refused a barcode payment) or PRECREATE_FAILED (no QR code)',
  labelNames: ['status'] as const,
  registers,
});
const paymentsSentToReview = new Counter({
  name: 'durapay_payments_sent_to_review_total',
  help: 'Times an order was sent to REVIEW (each reason counts)',
  registers,
});

const paidLatency = new Histogram({
  name: 'durapay_payment_paid_latency_seconds',
  help: "Seconds from the API receiving Alipay's verified notify (via=notify), or from the start of the barcode pay call (via=barcode), to the order's PAID record being written",
  labelNames: ['via'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60],
  registers,
});

/** The start comes from the API's clock (or the workflow's) and this process's: a start in the
 *  future by clock skew counts as 0; a missing or nonsensical one is not observed. */
function observePaidLatency(latency: PaymentEventInput['paidLatency'], now: number): void {
  if (!latency || (latency.via !== 'notify' && latency.via !== 'barcode')) return;
  const { sinceMs } = latency;
  if (typeof sinceMs !== 'number' || !Number.isFinite(sinceMs) || sinceMs <= 0) return;
  paidLatency.observe({ via: latency.via }, Math.max(0, now - sinceMs) / 1000);
}

/** Counts events as they are first written: called after their transaction commits, never for
 *  a retry that found an event already there. */
export function countPaymentEvents(applied: readonly PaymentEventInput[], now = Date.now()): void {
  for (const event of applied) {
    if (event.type === 'created') paymentsCreated.inc();
    switch (event.change?.status) {
      case 'PAID':
        paymentsPaid.inc();
        observePaidLatency(event.paidLatency, now);
        break;
      case 'CLOSED':
        paymentsClosed.inc();
        break;
      case 'FAILED':
      case 'PRECREATE_FAILED':
        paymentsFailed.inc({ status: event.change.status });
        break;
      case 'REVIEW':
        paymentsSentToReview.inc();
        break;
    }
  }
}

/**
 * success: code 10000; waiting: 10003 (a barcode buyer confirming); business_failure: any other
 * answer, with its sub_code; unavailable: 20000 or a system error sub_code (retried); transport_error:
 * no answer; unverifiable: an answer that does not parse or whose signature does not verify.
 */
export type GatewayResult = 'success' | 'waiting' | 'business_failure' | 'unavailable' | 'transport_error' | 'unverifiable';

const gatewayCalls = new Counter({
  name: 'durapay_alipay_gateway_calls_total',
  help: 'Alipay gateway calls by method and result; sub_code for business failures',
  labelNames: ['method', 'result', 'sub_code'] as const,
  registers,
});
const gatewayCallDuration = new Histogram({
  name: 'durapay_alipay_gateway_call_duration_seconds',
  help: 'Time of an Alipay gateway call, answer checked, by method and result',
  labelNames: ['method', 'result'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

/** Alipay's sub_codes are a documented set (ACQ.TRADE_NOT_EXIST, isv.invalid-signature); anything else is one label. */
const SUB_CODE = /^[A-Za-z0-9._-]{1,64}$/;

export function countGatewayCall(method: string, result: GatewayResult, seconds: number, subCode = ''): void {
  gatewayCalls.inc({ method, result, sub_code: subCode === '' || SUB_CODE.test(subCode) ? subCode : 'other' });
  gatewayCallDuration.observe({ method, result }, seconds);
}

const refunds = new Counter({
  name: 'durapay_refunds_total',
  help: "Refunds settled, by outcome and kind (a merchant's, or one giving a late payment back)",
  labelNames: ['outcome', 'kind'] as const,
  registers,
});

export function countRefund(outcome: 'succeeded' | 'failed', kind: RefundKind): void {
  refunds.inc({ outcome, kind });
}

/** delivered: a 2xx; refused: another status; unreachable: no answer in time or no connection;
 *  target_refused: a private address under WEBHOOK_PRIVATE_TARGETS=deny; no_endpoint: the order has
 *  no notifyUrl; cancelled: the merchant's endpoint was disabled or deleted, nothing was sent. */
export type WebhookAttemptOutcome = 'delivered' | 'refused' | 'unreachable' | 'target_refused' | 'no_endpoint' | 'cancelled';

const webhookAttempts = new Counter({
  name: 'durapay_webhook_attempts_total',
  help: "Webhook delivery attempts to merchants' endpoints, by outcome",
  labelNames: ['outcome'] as const,
  registers,
});

export function countWebhookAttempt(outcome: WebhookAttemptOutcome): void {
  webhookAttempts.inc({ outcome });
}

/** news: Alipay's answer told the order something it had not recorded (its workflow was signalled);
 *  no_news: nothing new; failed: no usable answer (the next step, or the deadline, asks again). */
export type SweptPollResult = 'news' | 'no_news' | 'failed';

const sweptPolls = new Counter({
  name: 'durapay_swept_polls_total',
  help: "Polls of waiting QR orders made by the worker's poll sweeper, by result",
  labelNames: ['result'] as const,
  registers,
});

export function countSweptPoll(result: SweptPollResult): void {
  sweptPolls.inc({ result });
}
