// Refunds end to end, and late payments given back: the real API (two of them where it matters),
// worker, Temporal, PostgreSQL and alipay-sdk against the simulator, whose ledger says what
// "Alipay" really paid back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '60s', pollLadder: '1s' });
});
afterAll(async () => {
  await stack?.stop();
});

async function paidOrder(label: string, amount = '10.00') {
  const outTradeNo = stack.newOrderNo(label);
  expect((await stack.createPayment({ outTradeNo, amount, subject: `refund ${label}` })).status).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(outTradeNo, 'PAID');
  return outTradeNo;
}

/** A refund request, repeated while the API answers 503 TRY_AGAIN (safe: the same request). */
const requestRefund = (outTradeNo: string, body: unknown) =>
  waitFor(`refund of ${outTradeNo} to be answered`, async () => {
    const answer = await stack.refund(outTradeNo, body);
    return answer.status === 503 ? undefined : answer;
  });

/** A refund's final state, whether the create answered it settled or PENDING. */
async function settled(outTradeNo: string, outRequestNo: string, answer: { status: number; body: any }) {
  expect([200, 201], JSON.stringify(answer.body)).toContain(answer.status);
  if (answer.body.status !== 'PENDING') return answer.body;
  return waitFor(`refund ${outRequestNo} to settle`, async () => {
    const refund = (await stack.getRefund(outTradeNo, outRequestNo)).body;
    return refund.status === 'PENDING' ? undefined : refund;
  });
}

const types = (events: { type: string }[]) => events.map((e) => e.type);
const gatewayCalls = async (outTradeNo: string, method: string) =>
  ((await stack.simCall('GET', '/sim/calls')).body as { outTradeNo: string; method: string }[]).filter(
    (c) => c.outTradeNo === outTradeNo && c.method === method,
  );

describe.concurrent('refunds', () => {
  it('refunds in part, then the rest: PARTIALLY_REFUNDED, then REFUNDED, as Alipay’s ledger says', async () => {
    const outTradeNo = await paidOrder('partial');
    const first = await requestRefund(outTradeNo, { outRequestNo: 'r1', amount: '3.50', reason: '一杯茶退款' });
    expect(first.status).toBe(201);
    expect(await settled(outTradeNo, 'r1', first)).toMatchObject({ outRequestNo: 'r1', amount: '3.50', status: 'SUCCEEDED', reason: '一杯茶退款', alipayFundChange: 'Y', failureReason: null });
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '3.50', paidAmount: '10.00' });

    const rest = await requestRefund(outTradeNo, { outRequestNo: 'r2', amount: '6.50' });
    expect(await settled(outTradeNo, 'r2', rest)).toMatchObject({ status: 'SUCCEEDED', amount: '6.50' });
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'REFUNDED', refundedAmount: '10.00' });

    const ledger = await stack.ledger(outTradeNo);
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '10.00' });
    expect(ledger.refunds.map((r: { outRequestNo: string; amount: string }) => [r.outRequestNo, r.amount])).toEqual([
      ['r1', '3.50'],
      ['r2', '6.50'],
    ]);
    const list = (await stack.apiCall('GET', `/v1/payments/${outTradeNo}/refunds`)).body.refunds;
    expect(list.map((r: { outRequestNo: string; status: string }) => [r.outRequestNo, r.status])).toEqual([
      ['r1', 'SUCCEEDED'],
      ['r2', 'SUCCEEDED'],
    ]);

    // Alipay's notifies after each refund (TRADE_SUCCESS with refund_fee, then TRADE_CLOSED) are
    // answered success and recorded, and never read as a payment or an unpaid close.
    const events = await waitFor('both refund notifies to be recorded', async () => {
      const all = await stack.events(outTradeNo);
      return all.filter((e) => e.type === 'notify_received' && e.data.late).length >= 2 ? all : undefined;
    });
    const refundNotifies = events.filter((e) => e.type === 'notify_received' && e.data.late).map((e) => e.data);
    expect(refundNotifies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ tradeStatus: 'TRADE_SUCCESS', refundFee: '3.50', outBizNo: 'r1' }),
        expect.objectContaining({ tradeStatus: 'TRADE_CLOSED', outBizNo: 'r2' }),
      ]),
    );
    expect(ledger.notifies.filter((n: { answer?: string }) => n.answer && n.answer !== 'success')).toEqual([]);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'REFUNDED', refundedAmount: '10.00' });
    expect(types(events).filter((t) => t.startsWith('refund_'))).toEqual(['refund_requested', 'refund_succeeded', 'refund_requested', 'refund_succeeded']);
    expect(types(events).filter((t) => t === 'paid' || t === 'closed' || t === 'anomaly')).toEqual(['paid']);
  });

  it('answers the same request again with 200 and the same refund, and 409 for another amount', async () => {
    const outTradeNo = await paidOrder('repeat');
    const first = await settled(outTradeNo, 'once', await requestRefund(outTradeNo, { outRequestNo: 'once', amount: '2.00' }));
    const again = await requestRefund(outTradeNo, { outRequestNo: 'once', amount: '2.00' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first);
    const conflict = await requestRefund(outTradeNo, { outRequestNo: 'once', amount: '2.01' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('REFUND_CONFLICT');
    expect((await stack.ledger(outTradeNo)).refunds).toHaveLength(1);
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.refund')).toHaveLength(1);
    expect((await stack.getPayment(outTradeNo)).body.refundedAmount).toBe('2.00');
  });

  it('never refunds more than was paid: 30 concurrent 1.00 refunds of a 10.00 payment through two APIs', async () => {
    const outTradeNo = await paidOrder('concurrent');
    const other = await stack.startAnotherApi();
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => {
          const body = { outRequestNo: `c${i}`, amount: '1.00' };
          const send = () => (i % 2 === 0 ? stack.refund(outTradeNo, body) : other.call('POST', `/v1/payments/${outTradeNo}/refunds`, body));
          // A loaded machine may answer 503 TRY_AGAIN; repeating the same request is safe, as a merchant would.
          return waitFor(`refund c${i} to be answered`, async () => {
            const answer = await send();
            return answer.status === 503 ? undefined : answer;
          });
        }),
      );
      const accepted = answers.filter((a) => a.status === 201);
      const refused = answers.filter((a) => a.status === 409);
      expect(accepted).toHaveLength(10);
      expect(refused).toHaveLength(20);
      for (const r of refused) expect(r.body.error.code).toBe('REFUND_EXCEEDS_REFUNDABLE');
      for (const a of accepted) await settled(outTradeNo, a.body.outRequestNo, a);
    } finally {
      await other.stop();
    }
    expect((await stack.ledger(outTradeNo)).refundedAmount).toBe('10.00');
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'REFUNDED', refundedAmount: '10.00' });
    const more = await requestRefund(outTradeNo, { outRequestNo: 'one-more', amount: '0.01' });
    expect(more.status).toBe(409);
    expect(more.body.error).toMatchObject({ code: 'REFUND_EXCEEDS_REFUNDABLE', details: { refundable: '0.00' } });
  });

  it('settles a refund whose answer was lost by asking Alipay: one refund, never two', async () => {
    const outTradeNo = await paidOrder('lost-answer');
    // alipay-sdk's HTTP client resends a request once after a socket error by itself, so two
    // answers are lost before the activity sees the outcome as unknown.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { loseAnswers: { count: 2, methods: ['alipay.trade.refund'] } });
    const refund = await settled(outTradeNo, 'lost', await requestRefund(outTradeNo, { outRequestNo: 'lost', amount: '4.00' }));
    expect(refund).toMatchObject({ status: 'SUCCEEDED', amount: '4.00' });
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.refunds).toHaveLength(1);
    expect(ledger.refundedAmount).toBe('4.00');
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.refund')).toHaveLength(2); // the request and the SDK's resend, both lost
    expect((await gatewayCalls(outTradeNo, 'alipay.trade.fastpay.refund.query')).length).toBeGreaterThanOrEqual(1);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '4.00' });
  });

  it('fails a refund Alipay refuses (balance not enough) and frees its amount', async () => {
    const outTradeNo = await paidOrder('balance');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.refund'], subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH' },
    });
    const failed = await settled(outTradeNo, 'poor', await requestRefund(outTradeNo, { outRequestNo: 'poor', amount: '10.00' }));
    expect(failed.status).toBe('FAILED');
    expect(failed.failureReason).toMatch(/^ACQ\.SELLER_BALANCE_NOT_ENOUGH: /);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PAID', refundedAmount: '0.00' });
    const retried = await settled(outTradeNo, 'rich', await requestRefund(outTradeNo, { outRequestNo: 'rich', amount: '10.00' }));
    expect(retried.status).toBe('SUCCEEDED');
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('REFUNDED');
    expect((await stack.ledger(outTradeNo)).refunds).toHaveLength(1);
  });

  it('refuses refunds of an unpaid order, of an unknown order, and bad input, changing nothing', async () => {
    const outTradeNo = stack.newOrderNo('unpaid');
    await stack.createPayment({ outTradeNo, amount: '5.00', subject: 'unpaid' });
    const unpaid = await requestRefund(outTradeNo, { outRequestNo: 'x', amount: '1.00' });
    expect(unpaid.status).toBe(409);
    expect(unpaid.body.error).toMatchObject({ code: 'NOT_REFUNDABLE', details: { status: 'AWAITING_PAYMENT' } });
    expect((await requestRefund('no-such-order', { outRequestNo: 'x', amount: '1.00' })).status).toBe(404);
    for (const [body, field] of [
      [{ outRequestNo: 'bad no', amount: '1.00' }, 'outRequestNo'],
      [{ outRequestNo: 'x', amount: '1' }, 'amount'],
      [{ outRequestNo: 'x', amount: '1.00', reason: 'r'.repeat(257) }, 'reason'],
      [{ outRequestNo: 'x', amount: '1.00', extra: true }, '(body)'],
    ] as const) {
      const answer = await requestRefund(outTradeNo, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    expect((await stack.apiCall('GET', `/v1/payments/${outTradeNo}/refunds`)).body.refunds).toEqual([]);
    await stack.cancelPayment(outTradeNo);
  });

  it('settles once when the worker is killed between the reservation and Alipay’s answer', async () => {
    const outTradeNo = await paidOrder('worker-killed');
    // Only a worker process of its own serves the queue, so it can be SIGKILLed mid-refund.
    await stack.stopWorker();
    const doomed = await stack.spawnWorkerProcess();
    try {
      // Alipay applies the refund at once but holds its answer back: the worker dies meanwhile.
      await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { delayMs: 5_000 });
      const pending = await requestRefund(outTradeNo, { outRequestNo: 'killed', amount: '1.00' });
      expect(pending.status).toBe(201);
      expect(pending.body.status).toBe('PENDING');
      await waitFor('Alipay to apply the refund', async () => ((await stack.ledger(outTradeNo)).refunds.length === 1 ? true : undefined));
      await doomed.kill();
    } finally {
      await doomed.kill().catch(() => {});
      await stack.simCall('DELETE', `/sim/trades/${outTradeNo}/faults`);
      await stack.startWorker();
    }
    expect((await stack.getRefund(outTradeNo, 'killed')).body.status).toBe('PENDING');
    // The lost attempt times out; the next one asks Alipay, which already has the refund.
    const refund = await stack.waitForRefund(outTradeNo, 'killed', 'SUCCEEDED', 45_000);
    expect(refund.amount).toBe('1.00');
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.refunds).toHaveLength(1);
    expect(ledger.refundedAmount).toBe('1.00');
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '1.00' });
    expect(types(await stack.events(outTradeNo)).filter((t) => t === 'refund_succeeded')).toHaveLength(1);
  }, 120_000);
});

/** Alipay's clock runs a minute behind and it refuses to void the order number, so the QR code
 *  is still payable after our cancel: the buyer pays an order we closed. */
async function payAfterClose(s: Stack, label: string) {
  const outTradeNo = s.newOrderNo(label);
  await s.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
    clockSkewMs: 60_000,
    refusals: { count: 1, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
  });
  expect((await s.createPayment({ outTradeNo, amount: '8.80', subject: `late ${label}` })).status).toBe(201);
  expect((await s.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  expect((await s.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  return outTradeNo;
}

describe('late payments', () => {
  it('refunds a payment made after the close in full, and the order reads CLOSED with latePayment', async () => {
    const outTradeNo = await payAfterClose(stack, 'late-refund');
    const order = await waitFor('the late payment to be refunded', async () => {
      const payment = (await stack.getPayment(outTradeNo)).body;
      return payment.latePayment?.refundStatus === 'SUCCEEDED' ? payment : undefined;
    });
    const ledger = await stack.ledger(outTradeNo);
    expect(order).toMatchObject({
      status: 'CLOSED',
      paidAmount: null,
      refundedAmount: '0.00',
      latePayment: { alipayTradeNo: ledger.tradeNo, amount: '8.80', refundOutRequestNo: `late-${ledger.tradeNo}`, refundStatus: 'SUCCEEDED' },
    });
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '8.80' });
    expect(ledger.refunds).toHaveLength(1);
    expect(ledger.notifies.some((n: { answer?: string }) => n.answer === 'success')).toBe(true);
    const refund = (await stack.getRefund(outTradeNo, `late-${ledger.tradeNo}`)).body;
    expect(refund).toMatchObject({ status: 'SUCCEEDED', amount: '8.80' });
    const events = types(await stack.events(outTradeNo));
    expect(events).toEqual(expect.arrayContaining(['late_payment', 'refund_requested', 'refund_succeeded']));
    expect(events.filter((t) => t === 'paid')).toEqual([]);

    // The same notify again (Alipay retries) or the refund's own notify: nothing is refunded twice.
    const again = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, { variant: 'valid', overrides: { trade_status: 'TRADE_SUCCESS' } });
    expect(again.body.answer).toBe('success');
    await waitFor('the repeat to be recorded', async () => {
      const all = await stack.events(outTradeNo);
      return all.filter((e) => e.type === 'notify_received').length >= 3 ? true : undefined;
    });
    expect((await stack.ledger(outTradeNo)).refunds).toHaveLength(1);
  });

  describe('with LATE_PAYMENT_POLICY=review', () => {
    let reviewing: Stack;
    beforeAll(async () => {
      reviewing = await startStack({ orderTimeout: '60s', pollLadder: '1s', env: { LATE_PAYMENT_POLICY: 'review' } });
    });
    afterAll(async () => {
      await reviewing?.stop();
    });

    it('sends the order to REVIEW and refunds nothing', async () => {
      const outTradeNo = await payAfterClose(reviewing, 'late-review');
      const review = await reviewing.waitForStatus(outTradeNo, 'REVIEW');
      expect(review.reason).toMatch(/^late payment: Alipay reports trade \d+ paid 8\.80 after the order became CLOSED/);
      expect(review.latePayment).toBeNull();
      const ledger = await reviewing.ledger(outTradeNo);
      expect(ledger).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: '0.00' });
      expect(ledger.refunds).toEqual([]);
    });
  });
});
