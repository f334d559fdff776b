// The payment lifecycle end to end: the real API, a real worker on the Temporal dev server, real
// PostgreSQL, and the unmodified alipay-sdk talking HTTP to the simulator. Every scenario checks
// what the merchant sees, what PostgreSQL recorded and what "Alipay" (the simulator) holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '4s', pollLadder: '1s' });
});
afterAll(async () => {
  await stack?.stop();
});

async function createOrder(label: string, amount = '12.34', subject = `durapay test ${label}`) {
  const outTradeNo = stack.newOrderNo(label);
  const created = await stack.createPayment({ outTradeNo, amount, subject });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { outTradeNo, created: created.body };
}

const countOf = (events: { type: string }[], type: string) => events.filter((e) => e.type === type).length;

describe.concurrent('payment lifecycle', () => {
  it('is paid through the notify within moments of the buyer paying', async () => {
    const { outTradeNo, created } = await createOrder('notify');
    expect(created).toMatchObject({ status: 'AWAITING_PAYMENT', amount: '12.34' });
    expect(created.qrCode).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/qr\//);
    expect(Date.parse(created.expiresAt)).toBeGreaterThan(Date.now());

    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID', 5_000);
    expect(paid).toMatchObject({ status: 'PAID', paidAmount: '12.34', alipayStatus: 'TRADE_SUCCESS' });

    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_SUCCESS');
    expect(paid.alipayTradeNo).toBe(ledger.tradeNo);
    await waitFor('the notify to be answered success', async () => {
      const l = await stack.ledger(outTradeNo);
      return l.notifies.some((n: { answer: string }) => n.answer === 'success') ? true : undefined;
    });
    const events = await stack.events(outTradeNo);
    expect(events.map((e) => e.type)).toEqual(['created', 'qr_issued', 'notify_received', 'paid']);
    expect(events.at(-1)!.data).toMatchObject({ source: 'notify', totalAmount: '12.34' });
  });

  it('is paid when every notify is lost: polling finds it', async () => {
    const { outTradeNo } = await createOrder('dropped');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID');
    expect(paid.paidAmount).toBe('12.34');

    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_SUCCESS');
    expect(ledger.notifies.length).toBeGreaterThan(0);
    expect(ledger.notifies.every((n: { dropped?: boolean }) => n.dropped)).toBe(true);
    const events = await stack.events(outTradeNo);
    expect(countOf(events, 'notify_received')).toBe(0);
    expect(countOf(events, 'paid')).toBe(1);
    expect(events.find((e) => e.type === 'paid')!.data.source).toBe('query');
  });

  it('closes an order nobody scanned at its deadline', async () => {
    const { outTradeNo } = await createOrder('never-scanned');
    const closed = await stack.waitForStatus(outTradeNo, 'CLOSED', 10_000);
    expect(closed.paidAmount).toBeNull();
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('NOT_SCANNED');
    // A QR code past its expiry can no longer be paid.
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(409);
    const events = await stack.events(outTradeNo);
    expect(events.at(-1)!.type).toBe('closed');
    expect(countOf(events, 'paid')).toBe(0);
    // Polled while it waited and queried once more at the deadline, then voided without a close;
    // only the deadline's query is in the ledger (a poll with nothing new is not written down).
    const calls = (await stack.ledger(outTradeNo)).calls.map((c: { method: string }) => c.method);
    expect(calls.filter((m: string) => m === 'alipay.trade.query').length).toBeGreaterThanOrEqual(2);
    expect(calls.filter((m: string) => m === 'alipay.trade.close')).toHaveLength(0);
    expect(calls.filter((m: string) => m === 'alipay.trade.cancel')).toHaveLength(1);
    expect(countOf(events, 'query_result')).toBe(1);
  });

  it('closes a scanned but unpaid order at Alipay and here', async () => {
    const { outTradeNo } = await createOrder('scanned');
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'CLOSED', 10_000);
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_CLOSED');
    const payment = (await stack.getPayment(outTradeNo)).body;
    expect(payment).toMatchObject({ status: 'CLOSED', alipayTradeNo: ledger.tradeNo });
    expect(countOf(await stack.events(outTradeNo), 'closed')).toBe(1);
  });

  it('counts a payment that lands just as the deadline close happens: PAID, never CLOSED', async () => {
    const { outTradeNo } = await createOrder('race');
    // Alipay's clock runs behind ours, so the trade is still open at our deadline; the buyer's payment
    // lands just before our close, whose answer is "already paid"; the notify is lost.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { payOnClose: true, dropNotifies: true, clockSkewMs: 60_000 });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID', 10_000);
    expect(paid.paidAmount).toBe('12.34');
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_SUCCESS');
    const events = await stack.events(outTradeNo);
    expect(events.find((e) => e.type === 'close_result')!.data).toMatchObject({ outcome: 'not_open' });
    expect(countOf(events, 'closed')).toBe(0);
    expect(countOf(events, 'paid')).toBe(1);
  });

  it('gives duplicated notifies one effect', async () => {
    const { outTradeNo } = await createOrder('duplicates');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { duplicateNotifies: 3 });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    // All copies get an answer; a late copy after the workflow finished is still "success".
    await waitFor('every duplicate to be answered', async () => {
      const l = await stack.ledger(outTradeNo);
      return l.notifies.filter((n: { answer?: string }) => n.answer === 'success').length >= 3 ? l : undefined;
    });
    const replay = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, { variant: 'valid' });
    expect(replay.body.answer).toBe('success');
    const events = await stack.events(outTradeNo);
    expect(countOf(events, 'paid')).toBe(1);
  });

  it('answers failure to a forged or tampered notify and changes nothing', async () => {
    const { outTradeNo } = await createOrder('forged');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const before = await stack.events(outTradeNo);
    for (const variant of ['wrong-key', 'tampered-amount']) {
      const sent = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, {
        variant,
        overrides: { trade_status: 'TRADE_SUCCESS' },
      });
      expect(sent.body, variant).toMatchObject({ httpStatus: 200, answer: 'failure' });
    }
    const unknown = await stack.apiCall('POST', '/alipay/notify', 'out_trade_no=nope&sign=abc');
    expect(unknown.body).toBe('failure');
    expect(await stack.events(outTradeNo)).toEqual(before);
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('AWAITING_PAYMENT');
    await stack.cancelPayment(outTradeNo);
  });

  it('sends a validly signed notify with another amount to REVIEW, never PAID', async () => {
    const { outTradeNo } = await createOrder('amount-mismatch');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const sent = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, {
      variant: 'valid',
      overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' },
    });
    expect(sent.body.answer).toBe('success');
    const review = await stack.waitForStatus(outTradeNo, 'REVIEW');
    expect(review.reason).toMatch(/total_amount 0\.01 differs from the order's 12\.34/);
    expect(review.paidAmount).toBeNull();
    const events = await stack.events(outTradeNo);
    expect(countOf(events, 'paid')).toBe(0);
    expect(countOf(events, 'anomaly')).toBe(1);
  });

  it('creates idempotently and refuses a conflicting order with 409', async () => {
    const { outTradeNo, created } = await createOrder('idempotent', '8.00', 'same subject');
    const again = await stack.createPayment({ outTradeNo, amount: '8.00', subject: 'same subject' });
    expect(again.status).toBe(201);
    expect(again.body.qrCode).toBe(created.qrCode);

    const otherAmount = await stack.createPayment({ outTradeNo, amount: '8.01', subject: 'same subject' });
    expect(otherAmount.status).toBe(409);
    expect(otherAmount.body.error.code).toBe('ORDER_CONFLICT');
    const otherSubject = await stack.createPayment({ outTradeNo, amount: '8.00', subject: 'another subject' });
    expect(otherSubject.status).toBe(409);

    const precreates = (await stack.ledger(outTradeNo)).calls.filter((c: { method: string }) => c.method === 'alipay.trade.precreate');
    expect(precreates).toHaveLength(1);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ amount: '8.00', subject: 'same subject' });
    expect(countOf(await stack.events(outTradeNo), 'qr_issued')).toBe(1);
    await stack.cancelPayment(outTradeNo);
  });

  it('cancels an unpaid order: CLOSED, and the QR code can no longer be paid', async () => {
    const { outTradeNo } = await createOrder('cancel-unpaid');
    const cancelled = await stack.cancelPayment(outTradeNo);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('CLOSED');
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(409);
    const again = await stack.cancelPayment(outTradeNo);
    expect(again.status).toBe(200);
    const events = await stack.events(outTradeNo);
    expect(events.map((e) => e.type)).toEqual(['created', 'qr_issued', 'cancel_requested', 'close_result', 'close_result', 'closed']);
  });

  it('records a signed payment notify for an order it already closed, checks it with Alipay, and keeps it CLOSED', async () => {
    const { outTradeNo } = await createOrder('late-claim');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    const before = await stack.events(outTradeNo);
    // Signed by Alipay's key, but Alipay's own query says the trade is closed: recorded, nothing moves.
    const late = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, {
      variant: 'valid',
      overrides: { trade_status: 'TRADE_SUCCESS' },
    });
    expect(late.body.answer).toBe('success');
    const events = await waitFor('the late notify to be checked', async () => {
      const all = await stack.events(outTradeNo);
      return all.length >= before.length + 2 ? all : undefined;
    });
    expect(events.slice(before.length).map((e) => e.type)).toEqual(['notify_received', 'query_result']);
    expect(events.at(-2)!.data).toMatchObject({ late: true, statusThen: 'CLOSED', tradeStatus: 'TRADE_SUCCESS' });
    expect(events.at(-1)!.data).toMatchObject({ tradeStatus: 'TRADE_CLOSED' });
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('CLOSED');
  });

  it('refuses to cancel a paid order with 409', async () => {
    const { outTradeNo } = await createOrder('cancel-paid');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const cancelled = await stack.cancelPayment(outTradeNo);
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.code).toBe('NOT_CANCELLABLE');
    expect((await stack.ledger(outTradeNo)).status).toBe('TRADE_SUCCESS');
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('PAID');
    const events = await stack.events(outTradeNo);
    expect(countOf(events, 'paid')).toBe(1);
    expect(countOf(events, 'cancel_requested') + countOf(events, 'closed')).toBe(0);
  });

  it('keeps polling through HTTP 500s and code 20000 from the gateway, and ends PAID', async () => {
    const { outTradeNo } = await createOrder('gateway-down');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true, systemErrors: { count: 2, kind: 'http500', methods: ['alipay.trade.query'] } });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await waitFor('the 500s to be used up', async () => {
      const l = await stack.ledger(outTradeNo);
      return l.faults?.systemErrors?.count === 0 ? true : undefined;
    });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { systemErrors: { count: 2, kind: '20000', methods: ['alipay.trade.query'] } });
    const paid = await stack.waitForStatus(outTradeNo, 'PAID');
    expect(paid.paidAmount).toBe('12.34');
    const calls = (await stack.simCall('GET', '/sim/calls')).body.filter((c: { outTradeNo: string }) => c.outTradeNo === outTradeNo);
    expect(calls.filter((c: { httpStatus: number }) => c.httpStatus === 500).length).toBe(2);
    expect(countOf(await stack.events(outTradeNo), 'paid')).toBe(1);
  });

  it('rides out ACQ.SYSTEM_ERROR answers and still ends PAID', async () => {
    const outTradeNo = stack.newOrderNo('system-error');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      systemErrors: { count: 3, kind: 'ACQ.SYSTEM_ERROR' },
      dropNotifies: true,
    });
    const created = await stack.createPayment({ outTradeNo, amount: '0.01', subject: 'flaky gateway' });
    expect(created.status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID');
    expect(paid.paidAmount).toBe('0.01');
    const all = (await stack.simCall('GET', '/sim/calls')).body as { method: string; outTradeNo: string; subCode?: string }[];
    const calls = all.filter((c) => c.outTradeNo === outTradeNo);
    expect(calls.filter((c) => c.subCode === 'ACQ.SYSTEM_ERROR')).toHaveLength(3);
    expect(calls.filter((c) => c.method === 'alipay.trade.precreate' && !c.subCode)).toHaveLength(1);
    expect((await stack.ledger(outTradeNo)).status).toBe('TRADE_SUCCESS');
    const events = await stack.events(outTradeNo);
    expect(events.map((e) => e.type)).toEqual(['created', 'qr_issued', ...events.slice(2, -1).map(() => 'query_result'), 'paid']);
  });
});
