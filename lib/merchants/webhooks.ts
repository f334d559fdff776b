// Merchant webhooks: which ledger changes a merchant hears of, the delivery workflow's messages
// and input, and how a writer of events wakes that workflow. Shared by the activities, the
// delivery workflow and the API; nothing here carries a secret.
import { defineSignal } from '@temporalio/workflow';
import type { Client } from '@temporalio/client';
import type { PaymentChange, PaymentEventType } from '../payments/activity-contracts.js';
import type { WebhookSettings } from './webhook-settings.js';

export type WebhookEventType =
  | 'payment.paid'
  | 'payment.closed'
  | 'payment.review'
  | 'payment.precreate_failed'
  | 'payment.failed'
  | 'payment.partially_refunded'
  | 'payment.refunded'
  | 'refund.succeeded'
  | 'refund.failed'
  | 'payment.late_payment'
  | 'payment.late_payment_refunded'
  | 'payment.late_payment_refund_failed';

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
  settings: WebhookSettings;
  /** A run continues as new past this many history events. */
  historyLimit: number;
  /** Set when a run continued as new: where the previous one left off. */
  resume?: { eventId: string; attempt: number; resends: string[] };
}

/** The task queue of the webhook POSTs, beside the payment task queue it is named after: a
 *  receiver that is slow to answer holds one of its own bounded slots (WEBHOOK_CONCURRENCY), never
 *  one the payments and refunds need. */
export function webhookTaskQueue(paymentTaskQueue: string): string {
  return `${paymentTaskQueue}-webhooks`;
}

/** One delivery workflow per order, so the order's events go out one after the other. */
export function webhookWorkflowId(paymentId: string): string {
  return `webhooks:${paymentId}`;
}

/** New events are in the outbox: read it. */
export const webhooksPendingSignal = defineSignal('webhooksPending');
/** The merchant asked for this event again. */
export const resendWebhookSignal = defineSignal<[string]>('resendWebhook');

export const WEBHOOK_WORKFLOW_TYPE = 'webhookDeliveryWorkflow';
type WebhookDeliveryWorkflow = (input: WebhookDeliveryInput) => Promise<void>;

export interface WebhookTarget {
  client: Client;
  taskQueue: string;
  settings: WebhookSettings;
  historyLimit: number;
}

/** Signal-with-start: wakes the order's delivery workflow, or starts it when none runs. A repeat
 *  costs one look at the outbox, so writers call this after every commit that may have added events. */
export async function wakeWebhookDelivery(target: WebhookTarget, paymentId: string, resendEventId?: string): Promise<void> {
  const options = {
    workflowId: webhookWorkflowId(paymentId),
    taskQueue: target.taskQueue,
    args: [{ paymentId, settings: target.settings, historyLimit: target.historyLimit }] as [WebhookDeliveryInput],
  };
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
