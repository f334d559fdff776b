// A deploy's SIGTERM stops the worker gracefully: it takes no new task, lets the activity in flight
// (Alipay's refund, answering slowly) finish and report, then exits 0. The refund is made once: no
// second attempt asks Alipay again under the same number. Alipay's calls do not stop on
// cancellation; the bill's download does, and WORKER_SHUTDOWN_GRACE is what lets it finish rather
// than be cut and made again by another worker.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { beijingDay, reconciliationWorkflowId } from '../lib/payments/reconciliation.js';
import { refundWorkflowId } from '../lib/payments/refund.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '120s', pollLadder: '60s' });
});
afterAll(async () => {
  await stack?.stop();
});

describe('the worker on SIGTERM', () => {
  it('lets a refund in flight at Alipay finish and report before it exits, so Alipay hears it once', async () => {
    // The worker in a process of its own, as a deploy stops it.
    await stack.stopWorker();
    const worker = await stack.spawnWorkerProcess({ WORKER_SHUTDOWN_GRACE: '30s' });
    const outTradeNo = stack.newOrderNo('sigterm');
    expect((await stack.createPayment({ outTradeNo, amount: '10.00', subject: 'graceful' })).status).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'PAID');

    // Alipay answers this trade's calls 3 s late; the refund is sent, and SIGTERM comes meanwhile.
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { delayMs: 3_000 })).status).toBeLessThan(300);
    const refund = stack.refund(outTradeNo, { outRequestNo: 'graceful-1', amount: '4.00' });
    await waitFor('the refund to reach Alipay', async () => {
      const ledger = await stack.ledger(outTradeNo);
      return ledger.calls.some((c: { method: string }) => c.method === 'alipay.trade.refund') || undefined;
    });
    process.kill(worker.pid, 'SIGTERM');
    const exit = await worker.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    await refund;

    // The refund's Alipay call finished on that worker and was reported before it exited.
    const connection = await Connection.connect(temporalConnectionOptions(stack.config.temporal));
    try {
      const handle = new Client({ connection, namespace: stack.config.temporal.namespace }).workflow.getHandle(
        refundWorkflowId(stack.appId, toAlipayOutTradeNo(stack.merchant.id, outTradeNo), 'graceful-1'),
      );
      const events = (await handle.fetchHistory()).events ?? [];
      const completed = events.filter((e) => e.activityTaskCompletedEventAttributes);
      const failed = events.filter((e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes || e.activityTaskCanceledEventAttributes);
      const refundTrade = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'refundTrade');
      expect(refundTrade, 'refundTrade scheduled').toBeDefined();
      expect(completed.some((e) => String(e.activityTaskCompletedEventAttributes!.scheduledEventId) === String(refundTrade!.eventId))).toBe(true);
      expect(failed).toEqual([]);
    } finally {
      await connection.close();
    }

    // Another worker settles it; Alipay heard one refund and no query for an unknown outcome.
    await stack.startWorker();
    expect(await stack.waitForRefund(outTradeNo, 'graceful-1', 'SUCCEEDED', 30_000)).toMatchObject({ amount: '4.00' });
    const methods = (await stack.ledger(outTradeNo)).calls.map((c: { method: string }) => c.method);
    expect(methods.filter((m: string) => m === 'alipay.trade.refund')).toHaveLength(1);
    expect(methods).not.toContain('alipay.trade.fastpay.refund.query');
  });
});

describe('the worker on SIGTERM during a bill download', () => {
  const DAY_MS = 86_400_000;
  it.each([
    { grace: '30s', daysAgo: 5, cut: false },
    { grace: '1ms', daysAgo: 6, cut: true },
  ])('WORKER_SHUTDOWN_GRACE=$grace: the download in flight is cut: $cut', async ({ grace, daysAgo, cut }) => {
    await stack.stopWorker();
    const worker = await stack.spawnWorkerProcess({ WORKER_SHUTDOWN_GRACE: grace });
    // Alipay's bill file answers 3 s after it is asked for; SIGTERM comes meanwhile.
    expect((await stack.simCall('POST', '/sim/faults', { billDownloadDelayMs: 3_000 })).status).toBe(200);
    const askedBefore = (await stack.simCall('GET', '/sim/bills/downloads')).body.asked as number;
    const date = beijingDay(Date.now() - daysAgo * DAY_MS);
    expect((await stack.ops('POST', '/ops/reconciliations', { date })).status).toBe(202);
    await waitFor('the bill download to be asked for', async () => ((await stack.simCall('GET', '/sim/bills/downloads')).body.asked > askedBefore) || undefined);
    process.kill(worker.pid, 'SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect((await stack.simCall('POST', '/sim/faults', { billDownloadDelayMs: 0 })).status).toBe(200);

    // Another worker ends the day; the history says which attempt of the bill's step finished.
    await stack.startWorker();
    const day = await waitFor(
      `the reconciliation of ${date} to end`,
      async () => {
        const answer = await stack.ops('GET', `/ops/reconciliations/${date}`);
        return answer.body?.status === 'RUNNING' ? undefined : answer.body;
      },
      { timeoutMs: 30_000 },
    );
    expect(day.status).toBe('DONE');
    const connection = await Connection.connect(temporalConnectionOptions(stack.config.temporal));
    try {
      const handle = new Client({ connection, namespace: stack.config.temporal.namespace }).workflow.getHandle(reconciliationWorkflowId(stack.appId, date));
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'fetchAndStageBill');
      const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled?.eventId));
      const attempt = started?.activityTaskStartedEventAttributes?.attempt;
      if (cut) expect(attempt).toBeGreaterThan(1);
      else expect(attempt).toBe(1);
    } finally {
      await connection.close();
    }
  });
});
