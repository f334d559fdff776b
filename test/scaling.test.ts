// Scaling out on one Temporal: two worker processes and two API processes share the task queue,
// the database and the Alipay app. A worker killed while orders wait loses none of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '20s', pollLadder: '2s' });
});
afterAll(async () => {
  await stack?.stop();
});

describe('two workers and two API processes on one dev server', () => {
  it('ends every order correctly after one worker is killed while they wait', async () => {
    // Only worker processes serve the queue, so killing one takes away half of the engine.
    await stack.stopWorker();
    const [survivor, doomed] = [await stack.spawnWorkerProcess(), await stack.spawnWorkerProcess()];
    const apis = [await stack.spawnApiProcess(), await stack.spawnApiProcess()];

    const orders = Array.from({ length: 16 }, (_, i) => ({ outTradeNo: stack.newOrderNo(`scale-${i}`), pays: i % 2 === 0, api: apis[i % 2]! }));
    for (const { outTradeNo, api } of orders) {
      const created = await api.client.createPayment({ outTradeNo, amount: '2.00', subject: 'scaling' });
      expect(created.status).toBe(201);
    }
    // Half the buyers pay before the kill, the other paying half after it.
    const paying = orders.filter((o) => o.pays);
    const [early, late] = [paying.slice(0, 4), paying.slice(4)];
    for (const { outTradeNo } of early) await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    for (const { outTradeNo } of early) await stack.waitForStatus(outTradeNo, 'PAID');

    await doomed.kill();
    for (const { outTradeNo } of late) await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);

    // The orders the killed worker had cached move to the survivor once their sticky queue times out.
    for (const { outTradeNo, pays, api } of orders) {
      const final = await waitFor(
        `${outTradeNo} to settle`,
        async () => {
          const answer = await api.client.getPayment(outTradeNo);
          return ['PAID', 'CLOSED'].includes(answer.body.status) ? answer.body : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(final.status).toBe(pays ? 'PAID' : 'CLOSED');
      const events = await stack.events(outTradeNo);
      expect(events.filter((e) => e.type === (pays ? 'paid' : 'closed'))).toHaveLength(1);
      expect(events.filter((e) => e.type === (pays ? 'closed' : 'paid'))).toHaveLength(0);
      expect((await stack.ledger(outTradeNo)).status).toBe(pays ? 'TRADE_SUCCESS' : 'NOT_SCANNED');
    }
    expect(survivor.pid).not.toBe(doomed.pid);
    await Promise.all([...apis, survivor].map((part) => part.stop()));
  }, 120_000);
});
