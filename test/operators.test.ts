// Operator actions under /ops: query Alipay now, decide a REVIEW order, list orders by status from
// the search attributes. Each action is an update in the order's own workflow history.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let client: Client;
beforeAll(async () => {
  // The ladder is slow on purpose: only an operator's query finds a payment whose notify was lost.
  stack = await startStack({ orderTimeout: '120s', pollLadder: '60s' });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});

async function waitingOrder(label: string) {
  const outTradeNo = stack.newOrderNo(label);
  const created = await stack.createPayment({ outTradeNo, amount: '8.80', subject: `operators ${label}` });
  expect(created.status).toBe(201);
  return { outTradeNo, paymentId: stack.workflowId(outTradeNo) };
}

/** An order in REVIEW: Alipay's notify says the buyer paid another amount. */
async function reviewOrder(label: string) {
  const order = await waitingOrder(label);
  await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/scan`);
  await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/notify`, { variant: 'valid', overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' } });
  await stack.waitForStatus(order.outTradeNo, 'REVIEW');
  return order;
}

const updatesIn = async (paymentId: string) =>
  (await client.workflow.getHandle(paymentId).fetchHistory()).events!.flatMap((e) =>
    e.workflowExecutionUpdateAcceptedEventAttributes ? [e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest!.input!.name!] : [],
  );
const listed = (query: string) => stack.ops('GET', `/ops/payments?${query}`);

describe('query now', () => {
  it('finds a payment whose notify was lost without waiting for the ladder, and says who asked', async () => {
    const { outTradeNo, paymentId } = await waitingOrder('query-now');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('AWAITING_PAYMENT');

    const answer = await stack.ops('POST', `/ops/payments/${paymentId}/query-now`, { operator: 'alice', note: 'the buyer shows a receipt' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ outTradeNo, status: 'PAID', paidAmount: '8.80' });
    const events = await stack.events(outTradeNo);
    expect(events.find((e) => e.type === 'operator_action')?.data).toEqual({ action: 'query_now', operator: 'alice', note: 'the buyer shows a receipt' });
    expect(events.filter((e) => e.type === 'paid')).toHaveLength(1);
    expect(await updatesIn(paymentId)).toContain('queryNow');

    const again = await stack.ops('POST', `/ops/payments/${paymentId}/query-now`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'NOT_WAITING', details: { status: 'PAID' } });
  });

  it('answers a query that brings no news with the order still waiting', async () => {
    const { outTradeNo, paymentId } = await waitingOrder('query-now-nothing');
    const calls = async () => ((await stack.simCall('GET', '/sim/calls')).body as { outTradeNo: string; method: string }[]).filter((c) => c.outTradeNo === outTradeNo && c.method === 'alipay.trade.query');
    const answer = await stack.ops('POST', `/ops/payments/${paymentId}/query-now`);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('AWAITING_PAYMENT');
    expect(await calls()).toHaveLength(1);
  });
});

describe('resolve review', () => {
  it('waits for an operator; PAID after checking ends the workflow and tells the merchant', async () => {
    const { outTradeNo, paymentId } = await reviewOrder('resolve-paid');
    expect((await client.workflow.getHandle(paymentId).describe()).status.name).toBe('RUNNING');
    const answer = await stack.ops('POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'PAID', note: 'the difference was paid in cash', operator: 'bob' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    // Alipay's amount, as its notify reported it when the order went to REVIEW: what its bill will list.
    expect(answer.body).toMatchObject({ status: 'PAID', paidAmount: '0.01', reason: 'resolved as PAID by bob after review: the difference was paid in cash' });
    const resolved = (await stack.events(outTradeNo)).find((e) => e.type === 'review_resolved');
    expect(resolved?.data).toMatchObject({ outcome: 'PAID', note: 'the difference was paid in cash', operator: 'bob', reviewReason: expect.stringMatching(/total_amount 0\.01/) });
    const { rows } = await stack.pool.query(`SELECT type FROM webhook_events WHERE payment_id = $1 ORDER BY sequence`, [paymentId]);
    expect(rows.map((r) => r.type)).toEqual(['payment.review', 'payment.paid']);
    await waitFor('the workflow to complete', async () => ((await client.workflow.getHandle(paymentId).describe()).status.name === 'COMPLETED' ? true : undefined));
    expect(await updatesIn(paymentId)).toContain('resolveReview');

    const again = await stack.ops('POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'NOT_IN_REVIEW', details: { status: 'PAID' } });
  });

  it('closes a REVIEW order, and refuses to resolve an order that is not in REVIEW', async () => {
    const { paymentId } = await reviewOrder('resolve-closed');
    const closed = await stack.ops('POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'refunded by hand' });
    expect(closed.body).toMatchObject({ status: 'CLOSED', reason: 'resolved as CLOSED after review: refunded by hand' });
    const waiting = await waitingOrder('not-in-review');
    const refused = await stack.ops('POST', `/ops/payments/${waiting.paymentId}/resolve-review`, { outcome: 'PAID', note: 'x' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'NOT_IN_REVIEW', details: { status: 'AWAITING_PAYMENT' } });
  });
});

describe('list orders by status', () => {
  it('lists REVIEW orders and old waiting ones from the record', async () => {
    const review = await reviewOrder('listed-review');
    const waiting = await waitingOrder('listed-waiting');
    const merchantId = stack.merchant.id;
    const reviews = await waitFor('the REVIEW order to be listed', async () => {
      const answer = await listed(`status=REVIEW&merchantId=${merchantId}`);
      return answer.body.orders?.some((o: { paymentId: string }) => o.paymentId === review.paymentId) ? answer.body : undefined;
    });
    expect(reviews.orders.find((o: { paymentId: string }) => o.paymentId === review.paymentId)).toMatchObject({
      outTradeNo: review.outTradeNo,
      merchantId,
      status: 'REVIEW',
      amount: '8.80',
      workflowStatus: 'RUNNING',
    });
    expect(reviews.orders.every((o: { status: string }) => o.status === 'REVIEW')).toBe(true);
    await waitFor('the waiting order to be listed', async () => {
      const answer = await listed(`status=AWAITING_PAYMENT&olderThanMinutes=0&merchantId=${merchantId}`);
      return answer.body.orders?.some((o: { paymentId: string }) => o.paymentId === waiting.paymentId) ? true : undefined;
    });
    // Not older than a day: it was created a moment ago.
    const old = await listed(`status=AWAITING_PAYMENT&olderThanMinutes=1440&merchantId=${merchantId}`);
    expect(old.body.orders.some((o: { paymentId: string }) => o.paymentId === waiting.paymentId)).toBe(false);
    expect((await listed(`status=REVIEW&limit=1`)).body.orders).toHaveLength(1);
  });
});

describe('bad requests', () => {
  it('names the field and the rule, and changes nothing', async () => {
    const { outTradeNo, paymentId } = await waitingOrder('ops-bad');
    const cases: [string, string, unknown, string][] = [
      ['GET', '/ops/payments?status=LOST', undefined, 'status'],
      ['GET', '/ops/payments?status=REVIEW&olderThanMinutes=-5', undefined, 'olderThanMinutes'],
      ['GET', "/ops/payments?status=REVIEW&merchantId=x'OR'1", undefined, 'merchantId'],
      ['GET', '/ops/payments?status=REVIEW&limit=0', undefined, 'limit'],
      ['POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'MAYBE', note: 'x' }, 'outcome'],
      ['POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'PAID', note: '  ' }, 'note'],
      ['POST', `/ops/payments/${paymentId}/query-now`, { note: 'x', who: 'me' }, '(body)'],
    ];
    for (const [method, path, body, field] of cases) {
      const answer = await stack.ops(method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(400);
      expect(answer.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    expect((await stack.ops('POST', '/ops/payments/payment:nope/query-now', {})).status).toBe(404);
    expect((await stack.ops('POST', `/ops/payments/${paymentId}/query-now`, {}, 'not-the-token-not-the-token-not-the-token')).status).toBe(401);
    expect((await stack.ops('GET', '/ops/payments?status=REVIEW', undefined, null)).status).toBe(401);
    expect((await stack.events(outTradeNo)).map((e) => e.type)).toEqual(['created', 'qr_issued']);
  });
});
