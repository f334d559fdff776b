// One day's reconciliation with Alipay's trade bill, top to bottom: ask for the bill (again and
// again while Alipay has not published it), download and stage it, compare it with the read model,
// store the result, then feed what it found back into the orders. The bill's rows never pass
// through history: activities do the bulk work, and this workflow sees counts and the mismatch
// list (or, when it is long, the list's reference in PostgreSQL).
import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  log,
  ParentClosePolicy,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { FAILURE, type BillStaging, type ReconciliationActivities, type ReconciliationRun } from '../lib/payments/activity-contracts.js';
import {
  beijingDayStart,
  previousBeijingDay,
  reconciliationWorkflowId,
  type ReconciliationInput,
  type ReconciliationOutcome,
  type ReconciliationSettings,
} from '../lib/payments/reconciliation.js';
import { errorMessage } from './failures.js';

// Asking for the bill, downloading and staging it: a few attempts, then the day is FAILED. A bill
// that is not Alipay's documented format, or a refusal (no permission, a bad date), fails at once.
const bill = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '1m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 6,
    nonRetryableErrorTypes: [FAILURE.billUnreadable, FAILURE.alipayRejected],
  },
});
// The comparison runs in PostgreSQL; a statement that fails again and again is a fault to see.
const { compareBill } = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
});
// The run's record must be written, whatever it takes.
const record = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '500ms', maximumInterval: '30s' },
});
const { feedBackMismatches } = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

export async function reconciliationWorkflow({ date, settings }: ReconciliationInput): Promise<ReconciliationOutcome> {
  if (beijingDayStart(date) === undefined) throw ApplicationFailure.nonRetryable(`not a day: ${date}`, 'InvalidDate');
  const run: ReconciliationRun = { appId: settings.appId, date, runId: workflowInfo().runId };
  await record.beginReconciliation(run);

  // 1-3. Ask Alipay for the bill, download, parse and stage it; while it does not exist yet, wait and ask again.
  let staged: Extract<BillStaging, { ready: true }>;
  try {
    const answer = await askForBill();
    if (!answer.ready) {
      const reason = `Alipay has no bill for ${date} after ${settings.billNotReadyTries} tries: ${answer.subCode} ${answer.message}`.trim();
      await record.finishReconciliation({ ...run, status: 'BILL_NOT_READY', reason });
      return { date, status: 'BILL_NOT_READY', reason };
    }
    staged = answer;
  } catch (err) {
    return fail(err);
  }
  log.info('bill staged', { date, payments: staged.payments, refunds: staged.refunds });

  // 4. Compare it with the read model, payments and refunds alike (in PostgreSQL).
  let comparison;
  try {
    comparison = await compareBill(run);
  } catch (err) {
    return fail(err);
  }

  // 5. Store the result.
  await record.finishReconciliation({ ...run, status: 'DONE' });

  // 6. Feed what it found back into the orders: each order's workflow hears of its mismatches.
  const feedback = comparison.mismatchCount > 0 ? await feedBackMismatches({ ...run, latePaymentPolicy: settings.latePaymentPolicy }) : undefined;
  return { date, status: 'DONE', comparison, ...(feedback ? { feedback } : {}) };

  async function askForBill(): Promise<BillStaging> {
    for (let attempt = 1; ; attempt++) {
      const answer = await bill.fetchAndStageBill(run);
      if (answer.ready || attempt >= settings.billNotReadyTries) return answer;
      log.info('bill not ready; asking again later', { date, attempt, subCode: answer.subCode });
      await sleep(settings.billNotReadyWaitMs);
    }
  }

  /** The day is FAILED, with the reason, and the run fails so the UI shows it red. */
  async function fail(err: unknown): Promise<never> {
    if (!(err instanceof ActivityFailure)) throw err; // a cancelled run, say: not the bill's fault
    const reason = errorMessage(err);
    await record.finishReconciliation({ ...run, status: 'FAILED', reason });
    throw ApplicationFailure.nonRetryable(`reconciliation of ${date} failed: ${reason}`, 'ReconciliationFailed');
  }
}

/** Set by Temporal on every workflow a Schedule starts: the time the action was due. */
const scheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/**
 * What the daily Schedule starts: the reconciliation of the Beijing day before the one it was due
 * on, as a child with the day's own workflow id. A day already reconciled (by hand, or by an
 * earlier action) is left as it is.
 */
export async function dailyReconciliationWorkflow(settings: ReconciliationSettings): Promise<ReconciliationOutcome | { date: string; status: 'ALREADY_RECONCILED' }> {
  const due = workflowInfo().typedSearchAttributes.get(scheduledStartTime)?.getTime() ?? Date.now();
  const date = previousBeijingDay(due);
  try {
    return await executeChild(reconciliationWorkflow, {
      workflowId: reconciliationWorkflowId(settings.appId, date),
      args: [{ date, settings }],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      log.info('day already reconciled', { date });
      return { date, status: 'ALREADY_RECONCILED' };
    }
    throw err;
  }
}
