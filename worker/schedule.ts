// The daily reconciliation's Temporal Schedule, created when a worker starts. There is one per app
// (its id names the app): a worker that finds it already there brings its time, task queue and
// settings up to date and leaves its state (paused or not, its note) as an operator set it.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptionsAction, type ScheduleSpec } from '@temporalio/client';
import { reconciliationSettings, type Config } from '../lib/platform/config.js';
import { DAILY_RECONCILIATION_WORKFLOW_TYPE, reconciliationScheduleId } from '../lib/payments/reconciliation.js';

/** Creates the Schedule, or updates the one that exists: never a second one. */
/** One Schedule per Alipay app (its bill is its own); `appId` defaults to the configured app. */
export async function ensureReconciliationSchedule(client: Client, config: Config, appId = config.alipay.appId): Promise<'created' | 'updated'> {
  const { hour, minute } = config.reconciliation.timeOfDay;
  // Beijing is UTC+8 all year: the calendar is kept in UTC, so no time-zone database is needed.
  const utcMinutes = ((hour - 8) * 60 + minute + 24 * 60) % (24 * 60);
  const beijing = `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
  const spec: ScheduleSpec = {
    calendars: [{ hour: Math.floor(utcMinutes / 60), minute: utcMinutes % 60, comment: `every day at ${beijing} Beijing time` }],
  };
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: DAILY_RECONCILIATION_WORKFLOW_TYPE,
    workflowId: `daily-reconciliation:${appId}`,
    taskQueue: config.temporal.taskQueue,
    args: [{ ...reconciliationSettings(config), appId }],
  };
  // A day missed while Temporal was down is caught up within a day; one run at a time.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1d' };
  const scheduleId = reconciliationScheduleId(appId);
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies,
      state: { note: `durapay: reconcile the previous Beijing day with Alipay's trade bill, every day at ${beijing} Beijing time` },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(scheduleId).update((previous) => ({
    spec,
    action,
    policies: { ...previous.policies, ...policies },
    state: { paused: previous.state.paused, note: previous.state.note },
  }));
  return 'updated';
}
