// Money Alipay holds for a buyer is kept on a PAID order, refunded, or on a REVIEW order an operator
// can list and resolve: never kept on a CLOSED order, never in a REVIEW nobody can reach. The
// scenarios of the second money-safety review, against the real API, worker, Temporal, PostgreSQL
// and alipay-sdk talking to the simulator.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerActivities } from '../activities/ledger.js';
import { createRefundActivities } from '../activities/refunds.js';
import { reviewWorkflowId } from '../lib/payments/payment.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let reviewing: Stack;
let client: Client;
beforeAll(async () => {
  // A late payment's refund refused for balance is sent again after 200 ms, 400 ms, 800 ms, …, for 4 s.
  const retry = { LATE_REFUND_RETRY_FIRST: '200ms', LATE_REFUND_RETRY_WINDOW: '4s' };
  [stack, reviewing] = await Promise.all([
    startStack({ orderTimeout: '60s', pollLadder: '1s', env: retry }),
    startStack({ orderTimeout: '60s', pollLadder: '1s', env: { ...retry, LATE_PAYMENT_POLICY: 'review' } }),
  ]);
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await Promise.all([stack?.stop(), reviewing?.stop()]);
});

/** Alipay's clock runs a minute behind and it refuses to void the order number, so the QR code
 *  is still payable after our cancel: the buyer pays an order we closed. */
async function payAfterClose(s: Stack, label: string, faults: Record<string, unknown> = {}) {
  const outTradeNo = s.newOrderNo(label);
  await s.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
    clockSkewMs: 60_000,
    refusals: { count: 1, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
    ...faults,
  });
  expect((await s.createPayment({ outTradeNo, amount: '8.80', subject: `held money ${label}` })).status).toBe(201);
  expect((await s.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  expect((await s.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  return outTradeNo;
}

const listedInReview = (s: Stack, outTradeNo: string) =>
  waitFor(`${outTradeNo} to be listed in REVIEW`, async () => {
    const answer = await s.ops('GET', `/ops/payments?status=REVIEW&merchantId=${s.merchant.id}`);
    return answer.body.orders?.find((o: { outTradeNo: string }) => o.outTradeNo === outTradeNo);
  });

describe('1. a late payment whose refund Alipay refuses', () => {
  it('is sent again under the same number while the balance is short, and given back once it is topped up', async () => {
    const outTradeNo = await payAfterClose(stack, 'late-balance', { sellerBalanceNotEnough: true });
    const waiting = await waitFor('the refusal to show on the order', async () => {
      const order = (await stack.getPayment(outTradeNo)).body;
      return order.latePayment?.lastRefusal?.attempts >= 2 ? order : undefined;
    });
    expect(waiting).toMatchObject({
      status: 'CLOSED',
      latePayment: { refundStatus: 'PENDING', lastRefusal: { subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH' } },
    });
    // The merchant tops its balance up: the next try goes through.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { sellerBalanceNotEnough: false });
    const given = await waitFor('the late payment to be given back', async () => {
      const order = (await stack.getPayment(outTradeNo)).body;
      return order.latePayment?.refundStatus === 'SUCCEEDED' ? order : undefined;
    });
    const ledger = await stack.ledger(outTradeNo);
    expect(given).toMatchObject({ status: 'CLOSED', latePayment: { refundOutRequestNo: `late-${ledger.tradeNo}`, amount: '8.80' } });
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '8.80' });
    // One refund at Alipay, under the one number, however often it was sent.
    expect(ledger.refunds.map((r: { outRequestNo: string }) => r.outRequestNo)).toEqual([`late-${ledger.tradeNo}`]);
  });

  it('goes to REVIEW, listed with the refusal and the amount, once the window runs out; resolved as CLOSED it is refunded', async () => {
    const outTradeNo = await payAfterClose(stack, 'late-window', { sellerBalanceNotEnough: true });
    const review = await stack.waitForStatus(outTradeNo, 'REVIEW', 30_000);
    expect(review.reason).toMatch(/late payment of 8\.80 .* held at Alipay: its refund late-\d+ was refused \(ACQ\.SELLER_BALANCE_NOT_ENOUGH/);
    const listed = await listedInReview(stack, outTradeNo);
    expect(listed).toMatchObject({ paymentId: stack.workflowId(outTradeNo), status: 'REVIEW', amount: '8.80', reason: review.reason });

    // Still short: the resolution's refund is refused too, and the order stays in REVIEW.
    const refused = await stack.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'give it back', operator: 'carol' });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'RESOLUTION_REFUSED', details: { status: 'REVIEW' } });
    expect((await stack.getPayment(outTradeNo)).body.reason).toMatch(/resolution as CLOSED by carol failed: .*ACQ\.SELLER_BALANCE_NOT_ENOUGH/);

    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { sellerBalanceNotEnough: false });
    const closed = await stack.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'balance topped up', operator: 'carol' });
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    const ledger = await stack.ledger(outTradeNo);
    expect(closed.body).toMatchObject({ status: 'CLOSED', reason: expect.stringMatching(/^resolved as CLOSED by carol after review: balance topped up; 8\.80 refunded/) });
    expect(closed.body.latePayment).toMatchObject({ refundStatus: 'SUCCEEDED', refundOutRequestNo: `late-${ledger.tradeNo}` });
    // The same number as the refused refund: never a second one for the same money.
    expect(ledger.refunds.map((r: { outRequestNo: string }) => r.outRequestNo)).toEqual([`late-${ledger.tradeNo}`]);
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '8.80' });
    // Decided in a review workflow of its own, whose PaymentStatus agrees.
    const described = await client.workflow.getHandle(reviewWorkflowId(listed.paymentId)).describe();
    expect(described.searchAttributes.PaymentStatus).toEqual(['CLOSED']);
  });
});

describe('2. a REVIEW written after the payment workflow ended', () => {
  it('under LATE_PAYMENT_POLICY=review is listed, and resolved as CLOSED refunds what Alipay holds', async () => {
    const outTradeNo = await payAfterClose(reviewing, 'late-review');
    await reviewing.waitForStatus(outTradeNo, 'REVIEW');
    const listed = await listedInReview(reviewing, outTradeNo);
    expect(listed).toMatchObject({ paymentId: reviewing.workflowId(outTradeNo), workflowStatus: 'COMPLETED', reason: expect.stringMatching(/^late payment/) });
    const resolved = await reviewing.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'not ours to keep' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const ledger = await reviewing.ledger(outTradeNo);
    expect(resolved.body).toMatchObject({ status: 'CLOSED', reason: expect.stringMatching(new RegExp(`8\\.80 refunded to the buyer \\(review-${ledger.tradeNo}\\)`)) });
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '8.80' });
    expect(ledger.refunds.map((r: { outRequestNo: string }) => r.outRequestNo)).toEqual([`review-${ledger.tradeNo}`]);
    expect((await reviewing.getRefund(outTradeNo, `review-${ledger.tradeNo}`)).body).toMatchObject({ status: 'SUCCEEDED', amount: '8.80' });
    const again = await reviewing.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'PAID', note: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'NOT_IN_REVIEW', details: { status: 'CLOSED' } });
  });

  it('resolved as PAID keeps the money with Alipay\'s payment time and amount, and the merchant can refund it', async () => {
    const outTradeNo = await payAfterClose(reviewing, 'late-keep');
    await reviewing.waitForStatus(outTradeNo, 'REVIEW');
    const listed = await listedInReview(reviewing, outTradeNo);
    const resolved = await reviewing.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'PAID', note: 'the buyer wants the tea after all' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const ledger = await reviewing.ledger(outTradeNo);
    // Alipay reports its payment time to the second.
    expect(resolved.body).toMatchObject({ status: 'PAID', paidAmount: '8.80', alipayTradeNo: ledger.tradeNo, paidAt: ledger.paidAt.replace(/\.\d{3}Z$/, '.000Z') });
    const refund = await reviewing.refund(outTradeNo, { outRequestNo: 'after-review', amount: '3.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    await reviewing.waitForStatus(outTradeNo, 'PARTIALLY_REFUNDED');
    expect((await reviewing.ledger(outTradeNo)).refundedAmount).toBe('3.00');
  });
});

describe('2. a resolution sent twice at once (a retried request) to a payment workflow waiting in REVIEW', () => {
  it('is carried out once, the order CLOSED and refunded once, and the workflow ends', async () => {
    const outTradeNo = stack.newOrderNo('resolve-twice');
    expect((await stack.createPayment({ outTradeNo, amount: '8.80', subject: 'held money resolved twice' })).status).toBe(201);
    await stack.inReviewThenPaid(outTradeNo);
    // Alipay answers slowly, so the second request meets the first one's refund under way.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { delayMs: 1_500 });
    const paymentId = stack.workflowId(outTradeNo);
    const resolve = () => stack.ops('POST', `/ops/payments/${paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'give it back', operator: 'dan' });
    // Both reach the waiting workflow; each answers in time, or 503 TRY_AGAIN past the answer time.
    const answers = await Promise.all([resolve(), resolve()]);
    for (const answer of answers) expect([200, 409, 503], JSON.stringify(answer.body)).toContain(answer.status);
    expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(1);
    // Sent again, as a 503 says it may be: the order is decided.
    const again = await waitFor('a final answer', async () => {
      const answer = await resolve();
      return answer.status === 503 ? undefined : answer;
    });
    expect([again.status, again.body.error?.code, again.body.error?.details?.status]).toEqual([409, 'NOT_IN_REVIEW', 'CLOSED']);
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '8.80' });
    expect(ledger.refunds).toHaveLength(1);
    // The payment workflow does not wait for ever on the second resolution.
    const handle = client.workflow.getHandle(paymentId);
    await waitFor('the payment workflow to end', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined));
    expect(await handle.result()).toMatchObject({ status: 'CLOSED' });
  });
});

describe('5. the same refund number sent at once with two amounts', () => {
  it('answers 2xx only for the amount refunded; the other is 409 REFUND_CONFLICT', async () => {
    const outTradeNo = stack.newOrderNo('refund-race');
    expect((await stack.createPayment({ outTradeNo, amount: '10.00', subject: 'held money refund race' })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    // Alipay answers slowly, so the second request meets the first one's running refund.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { delayMs: 1_500 });
    const [one, two] = await Promise.all([
      stack.refund(outTradeNo, { outRequestNo: 'r-race', amount: '1.00' }),
      stack.refund(outTradeNo, { outRequestNo: 'r-race', amount: '2.00' }),
    ]);
    const answers = [one, two].sort((a, b) => a.status - b.status);
    expect(answers.map((a) => a.status)).toEqual([201, 409]);
    expect(answers[1]!.body.error.code).toBe('REFUND_CONFLICT');
    const refunded = (await stack.ledger(outTradeNo)).refunds;
    expect(refunded).toHaveLength(1);
    expect(answers[0]!.body.amount).toBe(refunded[0].amount);
  });
});

describe('6. a cancel that can move money', () => {
  it('runs alipay.trade.cancel as a regular activity, its answer in the history', async () => {
    const outTradeNo = stack.newOrderNo('cancel-activity');
    expect((await stack.createPayment({ outTradeNo, amount: '3.00', subject: 'held money cancel' })).status).toBe(201);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    const history = await client.workflow.getHandle(stack.workflowId(outTradeNo)).fetchHistory();
    const scheduled = history.events!.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name] : []));
    expect(scheduled).toContain('voidTrade');
    const markers = JSON.stringify(history.events!.filter((e) => e.markerRecordedEventAttributes));
    expect(markers).not.toContain('voidTrade');
  });
});

describe('7. one transition table for statuses', () => {
  async function paidOrder(label: string) {
    const outTradeNo = stack.newOrderNo(label);
    expect((await stack.createPayment({ outTradeNo, amount: '6.00', subject: `held money ${label}` })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    return { outTradeNo, paymentId: stack.workflowId(outTradeNo) };
  }
  const ledger = () => createLedgerActivities(stack.pool);
  const refunds = () => createRefundActivities(stack.pool);

  it('a refund settling does not clear a REVIEW; the refused move is an anomaly event', async () => {
    const { outTradeNo, paymentId } = await paidOrder('settle-on-review');
    const reserved = await refunds().reserveRefund({ paymentId, eventKey: `t7:${paymentId}:1`, appId: stack.appId, outTradeNo: stack.alipayNo(outTradeNo), outRequestNo: 'r7', amountFen: 600, kind: 'merchant' });
    expect(reserved.outcome).toBe('reserved');
    await ledger().recordPaymentEvent({ paymentId, eventKey: `t7:${paymentId}:2`, type: 'anomaly', data: {}, change: { status: 'REVIEW', reason: 'a finding' } });
    await refunds().settleRefund({ paymentId, outRequestNo: 'r7', eventKey: `t7:${paymentId}:3`, settlement: { status: 'SUCCEEDED', fundChange: 'Y' } });
    const order = (await stack.getPayment(outTradeNo)).body;
    expect(order).toMatchObject({ status: 'REVIEW', reason: 'a finding', refundedAmount: '6.00' });
    const anomaly = (await stack.events(outTradeNo)).filter((e) => e.type === 'anomaly').at(-1);
    expect(anomaly?.data).toMatchObject({ reason: 'status change refused: REVIEW cannot become REFUNDED (refund_succeeded event)' });
  });

  it('a CLOSED order is not reopened, and a late payment is merged, never replaced by an older state', async () => {
    const outTradeNo = stack.newOrderNo('merge');
    expect((await stack.createPayment({ outTradeNo, amount: '2.00', subject: 'held money merge' })).status).toBe(201);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    const paymentId = stack.workflowId(outTradeNo);
    const late = { tradeNo: '2026120722001400000000000001', amountFen: 200, detectedAt: '2026-12-07T00:00:00.000Z', outRequestNo: 'late-1', refundStatus: 'SUCCEEDED' as const };
    await ledger().recordPaymentEvent({ paymentId, eventKey: `t7m:${paymentId}:1`, type: 'late_payment', data: {}, change: { latePayment: late } });
    // A second detector of the same trade, which has not seen the refund.
    await ledger().recordPaymentEvent({ paymentId, eventKey: `t7m:${paymentId}:2`, type: 'late_payment', data: {}, change: { latePayment: { ...late, detectedAt: '2026-12-07T01:00:00.000Z', refundStatus: 'PENDING' } } });
    await ledger().recordPaymentEvent({ paymentId, eventKey: `t7m:${paymentId}:3`, type: 'paid', data: {}, change: { status: 'PAID', paidAmountFen: 200 } });
    const order = (await stack.getPayment(outTradeNo)).body;
    expect(order).toMatchObject({ status: 'CLOSED', paidAmount: null, latePayment: { refundStatus: 'SUCCEEDED', detectedAt: late.detectedAt } });
    expect((await stack.events(outTradeNo)).at(-1)?.data.reason).toBe('status change refused: CLOSED cannot become PAID (paid event)');
  });
});
