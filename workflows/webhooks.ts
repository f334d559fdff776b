// One order's webhooks to one target (the order's notifyUrl, or one of the merchant's endpoints),
// delivered one after the other, in the order they happened. Started or woken (signal-with-start)
// by whoever wrote new events to the outbox; reads the outbox, delivers the target's first pending
// event with the retry schedule as durable timers, and ends when nothing is pending. A webhook that
// never gets through only delays the order's later webhooks to that target: the payment, its
// refunds and every other target never wait for it.
import { ActivityFailure, continueAsNew, log, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { WebhookActivities, WebhookAttemptOutcome } from '../lib/payments/activity-contracts.js';
import {
  resendWebhookSignal,
  webhookTaskQueue,
  webhooksPendingSignal,
  type WebhookDeliveryInput,
  type WebhookPingInput,
} from '../lib/merchants/webhooks.js';
import { errorMessage } from './failures.js';

const outbox = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});

export async function webhookDeliveryWorkflow({ paymentId, endpointId, settings, historyLimit, resume }: WebhookDeliveryInput): Promise<void> {
  // The notifyUrl's activities take what they always took; an endpoint's also name it.
  const target = endpointId ? { endpointId } : {};
  // One POST per attempt: the schedule below is the only retry, so no SDK retry of its own. The
  // POSTs have a task queue of their own, so slow receivers never take the payments' slots. (A
  // history that scheduled them on this queue still replays: Temporal matches an activity by its
  // id and type, not its task queue.)
  const { deliverWebhook } = proxyActivities<WebhookActivities>({
    taskQueue: webhookTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: settings.timeoutMs + 5_000,
    retry: { maximumAttempts: 1 },
  });
  const schedule = settings.retryScheduleMs;
  let news = false;
  const resends = [...(resume?.resends ?? [])];
  let attemptSeq = 0;
  setHandler(webhooksPendingSignal, () => {
    news = true;
  });
  setHandler(resendWebhookSignal, (eventId) => {
    resends.push(eventId);
  });

  let carriedOver = resume;
  for (;;) {
    news = false;
    for (let eventId = resends.shift(); eventId; eventId = resends.shift()) await outbox.reopenWebhookEvent({ paymentId, eventId, ...target });
    const next = await outbox.nextPendingWebhook({ paymentId, ...target });
    if (!next) {
      // Events written while we looked: look again rather than end with them unsent.
      if (news || resends.length > 0) continue;
      return;
    }
    const firstAttempt = carriedOver?.eventId === next.eventId ? carriedOver.attempt : 1;
    carriedOver = undefined;
    await deliver(next.eventId, firstAttempt);
  }

  /** Attempts until a 2xx, waiting the schedule's steps between attempts; failed after the last. */
  async function deliver(eventId: string, firstAttempt: number): Promise<void> {
    for (let attempt = firstAttempt; ; attempt++) {
      if (historyIsLong()) {
        await continueAsNew<typeof webhookDeliveryWorkflow>({ paymentId, ...target, settings, historyLimit, resume: { eventId, attempt, resends } });
      }
      const outcome = await post(eventId);
      const lastChance = attempt > schedule.length;
      await outbox.recordWebhookAttempt({
        eventId,
        ...target,
        attemptKey: `${workflowInfo().runId}:${++attemptSeq}`,
        outcome,
        eventStatus: outcome.delivered ? 'delivered' : outcome.cancelled ? 'cancelled' : lastChance ? 'failed' : 'pending',
      });
      if (outcome.delivered || outcome.cancelled || lastChance) return;
      await sleep(schedule[attempt - 1]!);
    }
  }

  /** An attempt whose activity never finished (a worker lost mid-POST) is a failed attempt too. */
  async function post(eventId: string): Promise<WebhookAttemptOutcome> {
    try {
      return await deliverWebhook({ eventId, ...target });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      // The merchant gets only our own words: the failure's message may name the worker's network.
      log.warn('webhook attempt did not finish', { eventId, error: errorMessage(err) });
      return { delivered: false, attemptedAt: new Date().toISOString(), error: 'the attempt did not finish' };
    }
  }

  function historyIsLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= historyLimit;
  }
}

/** A test event (POST /v1/webhook-endpoints/{id}/test): one attempt at its endpoint, recorded as
 *  any delivery is; the merchant sends another test to try again. */
export async function webhookPingWorkflow({ eventId, endpointId }: WebhookPingInput): Promise<void> {
  const { deliverWebhook } = proxyActivities<WebhookActivities>({
    taskQueue: webhookTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '20s',
    retry: { maximumAttempts: 1 },
  });
  let outcome: WebhookAttemptOutcome;
  try {
    outcome = await deliverWebhook({ eventId, endpointId });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    outcome = { delivered: false, attemptedAt: new Date().toISOString(), error: 'the attempt did not finish' };
  }
  await outbox.recordWebhookAttempt({
    eventId,
    endpointId,
    attemptKey: `${workflowInfo().runId}:1`,
    outcome,
    eventStatus: outcome.delivered ? 'delivered' : outcome.cancelled ? 'cancelled' : 'failed',
  });
}
