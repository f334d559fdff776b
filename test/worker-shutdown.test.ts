// A deploy's SIGTERM stops the worker gracefully: it takes no new task, lets the activity in flight
// (here Alipay's refund, answering slowly) finish and report, then exits 0. The refund is made
// once: no second attempt asks Alipay again under the same number. (Alipay's activities do not
// stop on cancellation; WORKER_SHUTDOWN_GRACE is what lets those that do, the bill's download and
// staging, finish too.)
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
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
