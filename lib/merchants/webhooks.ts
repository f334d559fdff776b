// Merchant webhooks: which ledger changes a merchant hears of, the delivery workflow's messages
// and input, and how a writer of events wakes that workflow. Shared by the activities, the
// delivery workflow and the API; nothing here carries a secret.
import { defineSignal } from '@temporalio/workflow';
import type { Client } from '@temporalio/client';
import type { PaymentChange, PaymentEventType } from '../payments/activity-contracts.js';
import type { WebhookSettings } from './webhook-settings.js';

/** Every event an order gives a merchant, as the merchant subscribes to them (an endpoint's events). */
export const WEBHOOK_EVENT_TYPES = [
  'payment.paid',
  'payment.closed',
  'payment.review',
  'payment.precreate_failed',
  'payment.failed',
  'payment.partially_refunded',
  'payment.refunded',
  'refund.succeeded',
  'refund.failed',
  'payment.late_payment',
  'payment.late_payment_refunded',
  'payment.late_payment_refund_failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The test event POST /v1/webhook-endpoints/{id}/test sends: to that endpoint only, no order. */
export const PING_EVENT_TYPE = 'ping';

/**
 * The version of the event body (`apiVersion` in each): the fields of `data` for a type are only
 * ever added to under it. A change that removes or renames one comes with a new version, and the
 * CHANGELOG says what changed.
 */
export const WEBHOOK_API_VERSION = '2026-12-07';

/** The exact bytes an event is sent as, on every attempt to every target, and listed in the feed. */
export function webhookBody(event: { id: string; type: string; created_at: Date; payload: unknown }): string {
  return JSON.stringify(webhookEventResource(event));
}

/** An event as its receivers get it: { id, type, apiVersion, created, data }, in that order. */
export function webhookEventResource(event: { id: string; type: string; created_at: Date; payload: unknown }) {
  return { id: event.id, type: event.type, apiVersion: WEBHOOK_API_VERSION, created: Math.floor(event.created_at.getTime() / 1000), data: event.payload };
}

/** The webhooks one ledger event gives, in the order the merchant receives them. Final and
 *  money-moving changes only: queries, notifies and requests are the engine's own business. */
export function webhookTypesFor(event: { type: PaymentEventType; change?: PaymentChange }): WebhookEventType[] {
  const change = event.change ?? {};
  switch (event.type) {
    case 'paid':
      return ['payment.paid'];
    case 'closed':
      return ['payment.closed'];
    case 'precreate_failed':
      return ['payment.precreate_failed'];
    case 'failed':
      return ['payment.failed'];
    case 'anomaly':
      // An anomaly that changes nothing (a forged notify, say) is not news for the merchant.
      return change.status === 'REVIEW' ? ['payment.review'] : [];
    case 'late_payment':
      return ['payment.late_payment'];
    case 'review_resolved':
      return change.status === 'PAID' ? ['payment.paid'] : change.status === 'CLOSED' ? ['payment.closed'] : [];
    case 'refund_succeeded':
      if (change.latePayment) return ['payment.late_payment_refunded'];
      // A review refund, or a refund that settled while the order is in REVIEW: the order's status
      // did not move, only the refund did.
      if (!change.status) return ['refund.succeeded'];
      return ['refund.succeeded', change.status === 'REFUNDED' ? 'payment.refunded' : 'payment.partially_refunded'];
    case 'refund_failed':
      return change.latePayment ? ['payment.late_payment_refund_failed'] : ['refund.failed'];
    default:
      return [];
  }
}

/** Whether an event of this type carries the refund it is about. */
export const isRefundWebhook = (type: WebhookEventType) =>
  type.startsWith('refund.') || type === 'payment.partially_refunded' || type === 'payment.refunded' || type.startsWith('payment.late_payment_refund');

export interface WebhookDeliveryInput {
  paymentId: string;
  /** The merchant's webhook endpoint this run delivers to; absent: the order's notifyUrl. */
  endpointId?: string;
  settings: WebhookSettings;
  /** A run continues as new past this many history events. */
  historyLimit: number;
  /** Set when a run continued as new: where the previous one left off. */
  resume?: { eventId: string; attempt: number; resends: string[] };
}

/** A test event's one attempt at one endpoint. */
export interface WebhookPingInput {
  eventId: string;
  endpointId: string;
}

/** The task queue of the webhook POSTs, beside the payment task queue it is named after: a
 *  receiver that is slow to answer holds one of its own bounded slots (WEBHOOK_CONCURRENCY), never
 *  one the payments and refunds need. */
export function webhookTaskQueue(paymentTaskQueue: string): string {
  return `${paymentTaskQueue}-webhooks`;
}

/** One delivery workflow per order and target, so each target gets the order's events one after
 *  the other, whatever any other target does. */
export function webhookWorkflowId(paymentId: string, endpointId?: string): string {
  return endpointId ? `webhooks:${paymentId}:${endpointId}` : `webhooks:${paymentId}`;
}

export const webhookPingWorkflowId = (eventId: string) => `webhook-ping:${eventId}`;

/** New events are in the outbox: read it. */
export const webhooksPendingSignal = defineSignal('webhooksPending');
/** The merchant asked for this event again. */
export const resendWebhookSignal = defineSignal<[string]>('resendWebhook');

export const WEBHOOK_WORKFLOW_TYPE = 'webhookDeliveryWorkflow';
export const WEBHOOK_PING_WORKFLOW_TYPE = 'webhookPingWorkflow';
type WebhookDeliveryWorkflow = (input: WebhookDeliveryInput) => Promise<void>;
type WebhookPingWorkflow = (input: WebhookPingInput) => Promise<void>;

export interface WebhookTarget {
  client: Client;
  taskQueue: string;
  settings: WebhookSettings;
  historyLimit: number;
}

/** Signal-with-start: wakes the delivery workflow of the order and target, or starts it when none
 *  runs. A repeat costs one look at the outbox, so writers call this after every commit that may
 *  have added events. */
export async function wakeWebhookDelivery(target: WebhookTarget, paymentId: string, resendEventId?: string, endpointId?: string): Promise<void> {
  const input: WebhookDeliveryInput = { paymentId, ...(endpointId ? { endpointId } : {}), settings: target.settings, historyLimit: target.historyLimit };
  const options = { workflowId: webhookWorkflowId(paymentId, endpointId), taskQueue: target.taskQueue, args: [input] as [WebhookDeliveryInput] };
  if (resendEventId === undefined) {
    await target.client.workflow.signalWithStart<WebhookDeliveryWorkflow, []>(WEBHOOK_WORKFLOW_TYPE, {
      ...options,
      signal: webhooksPendingSignal,
      signalArgs: [],
    });
  } else {
    await target.client.workflow.signalWithStart<WebhookDeliveryWorkflow, [string]>(WEBHOOK_WORKFLOW_TYPE, {
      ...options,
      signal: resendWebhookSignal,
      signalArgs: [resendEventId],
    });
  }
}

/** Sends a test event to its endpoint once; a second call while the first runs changes nothing. */
export async function startWebhookPing(target: Pick<WebhookTarget, 'client' | 'taskQueue'>, input: WebhookPingInput): Promise<void> {
  try {
    await target.client.workflow.start<WebhookPingWorkflow>(WEBHOOK_PING_WORKFLOW_TYPE, {
      workflowId: webhookPingWorkflowId(input.eventId),
      taskQueue: target.taskQueue,
      args: [input],
    });
  } catch (err) {
    if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
  }
}
