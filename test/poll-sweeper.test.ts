// The poll ladder of waiting QR orders runs beside Temporal (worker/poll-sweeper.ts): a poll that
// finds nothing new never wakes the order's workflow, news does, and the workflow believes only
// its own query. Two workers sweep the same orders without polling one twice at a step.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let connection: Connection;
let client: Client;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '12s', pollLadder: '1s' });
  connection = await Connection.connect(temporalConnectionOptions(stack.config.temporal));
  client = new Client({ connection, namespace: stack.config.temporal.namespace });
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

type Call = { method: string; at?: string };
const queriesOf = async (outTradeNo: string) =>
  ((await stack.ledger(outTradeNo)).calls as Call[]).filter((call) => call.method === 'alipay.trade.query').length;

async function historyOf(outTradeNo: string) {
  const { events } = await client.workflow.getHandle(stack.workflowId(outTradeNo)).fetchHistory();
  const count = (type: string) => events!.filter((e) => e[type as keyof typeof e] != null).length;
  return {
    timers: count('timerStartedEventAttributes'),
    workflowTasks: count('workflowTaskCompletedEventAttributes'),
    signals: count('workflowExecutionSignaledEventAttributes'),
  };
}

describe('the poll sweeper', () => {
  it("polls a waiting order on its ladder without waking its workflow, and wakes it for a payment whose notify was lost", async () => {
    const outTradeNo = stack.newOrderNo('swept');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    expect((await stack.createPayment({ outTradeNo, amount: '3.00', subject: 'swept' })).status).toBe(201);
    // Not scanned: Alipay answers TRADE_NOT_EXIST at each step, which is no news.
    await waitFor('three swept polls', async () => ((await queriesOf(outTradeNo)) >= 3 ? true : undefined), { timeoutMs: 10_000 });
    const quiet = await historyOf(outTradeNo);
    expect(quiet.timers).toBe(1); // the deadline's, and no poll timer
    expect(quiet.workflowTasks).toBe(1); // the create's task; no poll woke it
    expect(quiet.signals).toBe(0);

    // Paid, its notify lost: the next step sees TRADE_SUCCESS and wakes the workflow, which asks itself.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    const before = await queriesOf(outTradeNo);
    await stack.waitForStatus(outTradeNo, 'PAID', 10_000);
    const woken = await historyOf(outTradeNo);
    expect(woken.signals).toBe(1);
    const events = await stack.events(outTradeNo);
    expect(events.filter((e) => e.type === 'paid')).toHaveLength(1);
    // The sweeper's query that found it, and the workflow's own.
    expect((await queriesOf(outTradeNo)) - before).toBe(2);

    // A settled order is swept no more.
    const settled = await queriesOf(outTradeNo);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await queriesOf(outTradeNo)).toBe(settled);
  }, 30_000);

  it('asks nothing past the deadline: an abandoned order is voided by its workflow after its last step', async () => {
    const outTradeNo = stack.newOrderNo('abandoned');
    expect((await stack.createPayment({ outTradeNo, amount: '1.00', subject: 'abandoned' })).status).toBe(201);
    await stack.waitForStatus(outTradeNo, 'CLOSED', 25_000);
    const calls = (await stack.ledger(outTradeNo)).calls as Call[];
    const methods = calls.map((call) => call.method);
    // precreate, a query at each 1 s step before the 12 s deadline (11 at most), the deadline's
    // query and the void: never a poll after it.
    expect(methods[0]).toBe('alipay.trade.precreate');
    expect(methods.slice(-2)).toEqual(['alipay.trade.query', 'alipay.trade.cancel']);
    expect(methods.filter((m) => m === 'alipay.trade.query').length).toBeLessThanOrEqual(12);
    const history = await historyOf(outTradeNo);
    expect(history.signals).toBe(0);
  }, 40_000);

  it('with two workers sweeping, polls each waiting order once per step', async () => {
    // The stack's own worker and a second process sweep the same table.
    const second = await stack.spawnWorkerProcess();
    try {
      const orders = Array.from({ length: 12 }, (_, i) => stack.newOrderNo(`two-sweepers-${i}`));
      for (const outTradeNo of orders) expect((await stack.createPayment({ outTradeNo, amount: '1.00', subject: 'two sweepers' })).status).toBe(201);
      for (const outTradeNo of orders) await stack.waitForStatus(outTradeNo, 'CLOSED', 30_000);
      for (const outTradeNo of orders) {
        const queries = ((await stack.ledger(outTradeNo)).calls as Call[]).filter((call) => call.method === 'alipay.trade.query').length;
        // 11 steps of 1 s fit before the 12 s deadline, plus the deadline's own query; two sweepers
        // polling one order at one step would push it past that.
        expect(queries).toBeLessThanOrEqual(12);
        expect(queries).toBeGreaterThanOrEqual(2);
      }
    } finally {
      await second.stop();
    }
  }, 60_000);
});
