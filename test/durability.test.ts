// Durability: orders survive a stopped worker, a run's history replays deterministically (the
// committed runs of this build: test/replay.test.ts), and the ledger writes each event once.
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerActivities } from '../activities/ledger.js';
import { paymentStateQuery, searchAttributes } from '../lib/payments/payment.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { WORKFLOWS_PATH } from '../worker/worker.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let client: Client;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '5s', pollLadder: '1s' });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});

describe('durability', () => {
  it('finishes waiting orders correctly after the worker was stopped and started again', async () => {
    const paidNo = stack.newOrderNo('restart-paid');
    const unpaidNo = stack.newOrderNo('restart-unpaid');
    for (const outTradeNo of [paidNo, unpaidNo]) {
      expect((await stack.createPayment({ outTradeNo, amount: '3.00', subject: 'restart' })).status).toBe(201);
    }
    await stack.stopWorker();

    // With no worker, Temporal still accepts the notify, so Alipay hears "success".
    await stack.simCall('POST', `/sim/trades/${paidNo}/pay`);
    await waitFor('the notify to be accepted', async () => {
      const ledger = await stack.ledger(paidNo);
      return ledger.notifies.some((n: { answer?: string }) => n.answer === 'success') ? true : undefined;
    });
    expect((await stack.getPayment(paidNo)).body.status).toBe('AWAITING_PAYMENT');

    // A create while no worker runs: a prompt 503, and the same request succeeds later.
    const lateNo = stack.newOrderNo('restart-late');
    const waiting = await stack.createPayment({ outTradeNo: lateNo, amount: '3.00', subject: 'restart' });
    expect(waiting.status).toBe(503);
    expect(waiting.body.error.code).toBe('TRY_AGAIN');

    await stack.startWorker();
    const retried = await stack.createPayment({ outTradeNo: lateNo, amount: '3.00', subject: 'restart' });
    expect(retried.status).toBe(201);
    expect(retried.body.qrCode).toMatch(/^http/);
    await stack.waitForStatus(paidNo, 'PAID');
    await stack.waitForStatus(unpaidNo, 'CLOSED', 15_000);
    expect((await stack.ledger(paidNo)).status).toBe('TRADE_SUCCESS');
    const paidEvents = await stack.events(paidNo);
    expect(paidEvents.filter((e) => e.type === 'paid')).toHaveLength(1);
    const unpaidEvents = await stack.events(unpaidNo);
    expect(unpaidEvents.filter((e) => e.type === 'closed')).toHaveLength(1);
  });

  it('replays the history of a paid order without nondeterminism', async () => {
    const outTradeNo = stack.newOrderNo('replay');
    await stack.createPayment({ outTradeNo, amount: '66.60', subject: 'replay me' });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const handle = client.workflow.getHandle(stack.workflowId(outTradeNo));
    const final = await handle.result();
    const ledger = await stack.ledger(outTradeNo);
    expect(final).toMatchObject({ status: 'PAID', amountFen: 6660, alipayTradeNo: ledger.tradeNo });
    // What an engineer filters on in the Temporal UI, kept current by the workflow.
    const { typedSearchAttributes } = await handle.describe();
    expect(typedSearchAttributes.get(searchAttributes.paymentStatus)).toBe('PAID');
    expect(typedSearchAttributes.get(searchAttributes.outTradeNo)).toBe(outTradeNo);
    expect(typedSearchAttributes.get(searchAttributes.amountFen)).toBe(6660);
    expect(typedSearchAttributes.get(searchAttributes.alipayTradeNo)).toBe(ledger.tradeNo);
    expect(typedSearchAttributes.get(searchAttributes.merchantId)).toBe(stack.merchant.id);
    expect(await handle.query(paymentStateQuery)).toEqual(final);
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, handle.workflowId);
  });
});

describe('the ledger in PostgreSQL', () => {
  it('writes an event once however often an activity retries it, and keeps payment_events append-only', async () => {
    const ledger = createLedgerActivities(stack.pool);
    const outTradeNo = stack.newOrderNo('ledger');
    const paymentId = stack.workflowId(outTradeNo);
    const create = { appId: stack.appId, outTradeNo, alipayOutTradeNo: stack.alipayNo(outTradeNo), merchantId: stack.merchant.id, amountFen: 100, subject: 'ledger', expiresAt: new Date().toISOString() };
    const opening = { paymentId, eventKey: 'run-1:1', type: 'created' as const, data: {}, create };
    expect(await ledger.openPayment(opening)).toEqual({ opened: true });
    expect(await ledger.openPayment(opening)).toEqual({ opened: true }); // a retried claim
    const issued = { paymentId, eventKey: 'run-1:2', type: 'qr_issued' as const, change: { qrCode: 'https://qr.example/1' } };
    expect(await ledger.recordPaymentEvent(issued)).toEqual({ applied: true });
    expect(await ledger.recordPaymentEvent(issued)).toEqual({ applied: false });
    const paid = { paymentId, eventKey: 'run-1:3', type: 'paid' as const, change: { status: 'PAID' as const, paidAmountFen: 100 } };
    await Promise.all([ledger.recordPaymentEvent(paid), ledger.recordPaymentEvent(paid)]);
    expect((await stack.events(outTradeNo)).map((e) => e.type)).toEqual(['created', 'qr_issued', 'paid']);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PAID', paidAmount: '1.00', amount: '1.00' });

    await expect(stack.pool.query('UPDATE payment_events SET type = $1 WHERE payment_id = $2', ['x', paymentId])).rejects.toThrow(/append-only/);
    await expect(stack.pool.query('DELETE FROM payment_events WHERE payment_id = $1', [paymentId])).rejects.toThrow(/append-only/);
  });

  it('never reopens a finished order number, whatever run claims it', async () => {
    const ledger = createLedgerActivities(stack.pool);
    const outTradeNo = stack.newOrderNo('ledger-reuse');
    const paymentId = stack.workflowId(outTradeNo);
    const create = { appId: stack.appId, outTradeNo, alipayOutTradeNo: stack.alipayNo(outTradeNo), merchantId: stack.merchant.id, amountFen: 500, subject: 'reuse', expiresAt: new Date().toISOString() };
    await ledger.openPayment({ paymentId, eventKey: `${outTradeNo}:run-1:1`, type: 'created', data: {}, create });
    await ledger.recordPaymentEvent({ paymentId, eventKey: `${outTradeNo}:run-1:2`, type: 'paid', change: { status: 'PAID', paidAmountFen: 500 } });
    const before = (await stack.getPayment(outTradeNo)).body;

    // A new run (as after Temporal's retention) with the same or other terms is refused.
    for (const terms of [create, { ...create, amountFen: 1 }]) {
      const again = await ledger.openPayment({ paymentId, eventKey: `${outTradeNo}:run-2:1`, type: 'created', data: {}, create: terms });
      expect(again).toMatchObject({ opened: false, record: { status: 'PAID', amountFen: 500 } });
    }
    // A never-settled order with other terms is not taken over either.
    const openNo = stack.newOrderNo('ledger-open');
    const openId = stack.workflowId(openNo);
    await ledger.openPayment({ paymentId: openId, eventKey: `${outTradeNo}:run-3:1`, type: 'created', data: {}, create: { ...create, outTradeNo: openNo, alipayOutTradeNo: stack.alipayNo(openNo) } });
    const other = await ledger.openPayment({ paymentId: openId, eventKey: `${outTradeNo}:run-4:1`, type: 'created', data: {}, create: { ...create, outTradeNo: openNo, alipayOutTradeNo: stack.alipayNo(openNo), subject: 'other' } });
    expect(other).toMatchObject({ opened: false, record: { status: 'AWAITING_PAYMENT', subject: 'reuse' } });

    expect((await stack.getPayment(outTradeNo)).body).toEqual(before);
    expect((await stack.events(outTradeNo)).map((e) => e.type)).toEqual(['created', 'paid']);
  });
});
