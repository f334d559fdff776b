// Daily reconciliation with Alipay's trade bill, end to end: the real API, worker, Temporal,
// PostgreSQL and alipay-sdk against the simulator, whose bill is built from its own ledger.
//
// Alipay only has bills of days that are over, and tests run today. Each test takes a past day of
// its own and has Alipay's clock run behind for its orders (the simulator's clockSkewMs): Alipay
// reports their payments and refunds on that day, durapay records the times Alipay reports, and
// so both sides agree the traffic belongs to that day, as they would for real traffic of yesterday.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beijingDay, beijingDayStart, reconciliationFindingsWorkflowId, reconciliationScheduleId, reconciliationWorkflowId } from '../lib/payments/reconciliation.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const DAY_MS = 86_400_000;
const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';

let stack: Stack;
let client: Client;
beforeAll(async () => {
  // Polls are rare here, so a payment durapay was not told of stays unknown to it until a
  // reconciliation says so; notifies carry the news of every other payment at once.
  stack = await startStack({ orderTimeout: '60s', pollLadder: '30s', reconciliationBillWait: '300ms', reconciliationBillTries: 3 });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});

/** A past Beijing day of the test's own, and the skew that puts Alipay's clock at its noon. */
function pastDay(daysAgo: number) {
  const date = beijingDay(Date.now() - daysAgo * DAY_MS);
  return { date, clockSkewMs: Date.now() - (beijingDayStart(date)! + 12 * 3_600_000) };
}

/** An order whose Alipay trade lives on `day`, with more faults if given. */
async function order(label: string, amount: string, day: { clockSkewMs: number }, faults: Record<string, unknown> = {}) {
  const outTradeNo = stack.newOrderNo(label);
  await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { clockSkewMs: day.clockSkewMs, ...faults });
  const created = await stack.createPayment({ outTradeNo, amount, subject: `reconciliation ${label}` });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return outTradeNo;
}

async function paidOrder(label: string, amount: string, day: { clockSkewMs: number }, faults: Record<string, unknown> = {}) {
  const outTradeNo = await order(label, amount, day, faults);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(outTradeNo, 'PAID');
  return outTradeNo;
}

async function refund(outTradeNo: string, outRequestNo: string, amount: string) {
  await waitFor(`refund ${outRequestNo} to be taken`, async () => {
    const answer = await stack.refund(outTradeNo, { outRequestNo, amount });
    return answer.status === 503 ? undefined : answer;
  });
  return stack.waitForRefund(outTradeNo, outRequestNo, 'SUCCEEDED');
}

async function closedOrder(label: string, amount: string, day: { clockSkewMs: number }) {
  const outTradeNo = await order(label, amount, day);
  expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  return outTradeNo;
}

/** Starts (or finds) the day's reconciliation, then waits until it is no longer RUNNING. */
async function reconcile(date: string, body: Record<string, unknown> = {}) {
  const started = await stack.ops('POST', '/ops/reconciliations', { date, ...body });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  expect(started.body.date).toBe(date);
  return waitFor(
    `the reconciliation of ${date} to end`,
    async () => {
      const answer = await stack.ops('GET', `/ops/reconciliations/${date}`);
      expect(answer.status).toBe(200);
      return answer.body.status === 'RUNNING' ? undefined : answer.body;
    },
    { timeoutMs: 30_000 },
  );
}

const types = (events: { type: string }[]) => events.map((e) => e.type);
const billCalls = async () =>
  ((await stack.simCall('GET', '/sim/calls')).body as { method: string; code: string | null; subCode: string | null }[]).filter((c) => c.method === BILL_METHOD);

describe('reconciliation', () => {
  it('a day of clean payments, refunds and closes reconciles to zero mismatches, with totals equal', async () => {
    const day = pastDay(3);
    const tea = await paidOrder('clean-tea', '10.00', day);
    const cake = await paidOrder('clean-cake', '20.00', day);
    const lunch = await paidOrder('clean-lunch', '30.50', day);
    await closedOrder('clean-closed', '8.00', day);
    await refund(tea, 'r1', '3.00'); // in part
    await refund(cake, 'r1', '5.00'); // in two parts, the whole
    await refund(cake, 'r2', '15.00');
    expect((await stack.getPayment(cake)).body.status).toBe('REFUNDED');

    const result = await reconcile(day.date);
    expect(result).toMatchObject({ date: day.date, status: 'DONE', mismatchCount: 0, mismatches: [] });
    expect(result.totals).toEqual({
      payments: { gateway: { count: 3, amount: '60.50' }, local: { count: 3, amount: '60.50' } },
      refunds: { gateway: { count: 3, amount: '23.00' }, local: { count: 3, amount: '23.00' } },
    });
    // Nothing changed on the orders.
    expect((await stack.getPayment(lunch)).body.status).toBe('PAID');
    expect((await stack.getPayment(tea)).body.status).toBe('PARTIALLY_REFUNDED');
    expect(types(await stack.events(tea))).not.toContain('reconciliation_mismatch');

    // The bill's rows and its short-lived download link never reach workflow history.
    const history = JSON.stringify(await client.workflow.getHandle(reconciliationWorkflowId(stack.appId, day.date)).fetchHistory(), (key, value) =>
      // Payload data comes as base64: read it as the text it holds.
      key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
    );
    expect(history).not.toMatch(/downloadBillFile|token=|clean_1tea/);
    expect(history).toContain('\\"mismatchCount\\":0');

    // Idempotent per day: asking again answers the same run, and Alipay is not asked again.
    const calls = (await billCalls()).length;
    const again = await stack.ops('POST', '/ops/reconciliations', { date: day.date });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(result);
    expect((await billCalls()).length).toBe(calls);
  });

  it('barcode payments reconcile to zero mismatches, one of them refunded by Alipay within its cancel', async () => {
    const day = pastDay(8);
    const barcode = async (label: string, behaviour: Record<string, unknown>, faults: Record<string, unknown> = {}) => {
      const outTradeNo = stack.newOrderNo(label);
      const authCode = `28${String(Date.now()).slice(-8)}${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
      await stack.simCall('PUT', `/sim/payment-codes/${authCode}`, behaviour);
      await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { clockSkewMs: day.clockSkewMs, ...faults });
      const created = await stack.createPayment({ outTradeNo, amount: '16.00', subject: `reconciliation ${label}`, method: 'barcode', authCode });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return outTradeNo;
    };
    const paid = await barcode('barcode-paid', { kind: 'pays' });
    // The buyer confirms just as the cancel lands: Alipay takes the money and gives it back.
    const refunded = await barcode('barcode-cancel-refund', { kind: 'never_confirms' }, { payOnClose: true, dropNotifies: true });
    await stack.waitForStatus(paid, 'PAID');
    expect((await stack.waitForStatus(refunded, 'CLOSED')).latePayment).toMatchObject({ refundStatus: 'SUCCEEDED', refundedBy: 'cancel' });

    const result = await reconcile(day.date);
    expect(result).toMatchObject({ status: 'DONE', mismatchCount: 0, mismatches: [] });
    expect(result.totals).toEqual({
      payments: { gateway: { count: 2, amount: '32.00' }, local: { count: 2, amount: '32.00' } },
      refunds: { gateway: { count: 1, amount: '16.00' }, local: { count: 1, amount: '16.00' } },
    });
    expect((await stack.getPayment(refunded)).body.status).toBe('CLOSED');
  });

  it('a day with an unseen payment and a tampered amount reports exactly those two; the unseen payment is refunded as a late payment', async () => {
    const day = pastDay(4);
    const tampered = await paidOrder('tampered', '10.00', day, { billAmount: '9.90' });
    await paidOrder('fine', '12.00', day);
    // The engine closed this order; Alipay took the buyer's money anyway and told nobody.
    const unseen = await closedOrder('unseen', '5.00', day);
    const injected = await stack.simCall('POST', `/sim/trades/${unseen}/unseen-payment`, {});
    expect(injected.body).toMatchObject({ status: 'TRADE_SUCCESS', notifies: [] });
    const unseenTradeNo = injected.body.tradeNo as string;

    const result = await reconcile(day.date);
    expect(result.status).toBe('DONE');
    expect(result.totals).toEqual({
      payments: { gateway: { count: 3, amount: '26.90' }, local: { count: 2, amount: '22.00' } },
      refunds: { gateway: { count: 0, amount: '0.00' }, local: { count: 0, amount: '0.00' } },
    });
    const tamperedRow = await stack.getPayment(tampered);
    expect(result.mismatches).toEqual(
      expect.arrayContaining([
        {
          type: 'amount_mismatch',
          merchantId: stack.merchant.id,
          outTradeNo: tampered,
          alipayOutTradeNo: stack.alipayNo(tampered),
          alipayTradeNo: tamperedRow.body.alipayTradeNo,
          localAmount: '10.00',
          gatewayAmount: '9.90',
          detail: expect.stringContaining('9.90'),
          outRequestNo: null,
        },
        {
          type: 'missing_local',
          merchantId: stack.merchant.id,
          outTradeNo: unseen,
          alipayOutTradeNo: stack.alipayNo(unseen),
          alipayTradeNo: unseenTradeNo,
          localAmount: null,
          gatewayAmount: '5.00',
          detail: expect.stringContaining('CLOSED'),
          outRequestNo: null,
        },
      ]),
    );
    expect(result.mismatches).toHaveLength(2);
    expect(result.mismatchCount).toBe(2);

    // The unseen payment goes into the late-payment path: refunded in full, the order stays CLOSED.
    const late = await waitFor('the unseen payment to be refunded', async () => {
      const body = (await stack.getPayment(unseen)).body;
      return body.latePayment?.refundStatus === 'SUCCEEDED' ? body : undefined;
    });
    expect(late).toMatchObject({ status: 'CLOSED', paidAmount: null, latePayment: { alipayTradeNo: unseenTradeNo, amount: '5.00' } });
    expect(await stack.ledger(unseen)).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '5.00' });
    expect(types(await stack.events(unseen))).toEqual(expect.arrayContaining(['reconciliation_mismatch', 'query_result', 'late_payment', 'refund_succeeded']));
    // Its workflow had ended, so one was started for it: its history shows the finding.
    const findings = client.workflow.getHandle(reconciliationFindingsWorkflowId(stack.appId, day.date, stack.alipayNo(unseen)));
    await findings.result();
    const history = await findings.fetchHistory();
    const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'reconciliationFindings');
    expect(signals).toHaveLength(1);

    // The tampered amount sends its order to REVIEW, with the reason.
    const review = await stack.waitForStatus(tampered, 'REVIEW');
    expect(review.reason).toMatch(/^reconciliation of \d{4}-\d{2}-\d{2}: amount_mismatch: /);
    expect(review.paidAmount).toBe('10.00');

    // A rerun of the day: the late payment is now known (and refunded that day), the tampered
    // amount is still there, and the order already in REVIEW stays so.
    const rerun = await reconcile(day.date, { rerun: true });
    expect(rerun.status).toBe('DONE');
    expect(rerun.startedAt > result.startedAt).toBe(true);
    // Named as the merchant knows the order, with Alipay's number beside it.
    expect(rerun.mismatches.map((m: { type: string; merchantId: string; outTradeNo: string; alipayOutTradeNo: string }) => [m.type, m.merchantId, m.outTradeNo, m.alipayOutTradeNo])).toEqual([
      ['amount_mismatch', stack.merchant.id, tampered, stack.alipayNo(tampered)],
    ]);
    expect(rerun.totals).toEqual({
      payments: { gateway: { count: 3, amount: '26.90' }, local: { count: 3, amount: '27.00' } },
      refunds: { gateway: { count: 1, amount: '5.00' }, local: { count: 1, amount: '5.00' } },
    });
    expect((await stack.getPayment(unseen)).body.status).toBe('CLOSED');
  });

  it('a payment missing from the bill goes to REVIEW; an unknown order and a refund missing from the bill are recorded for an operator', async () => {
    const day = pastDay(5);
    const missing = await paidOrder('not-in-bill', '7.00', day, { billLeaveOut: ['payment'] });
    const refunded = await paidOrder('refunds-not-in-bill', '6.00', day, { billLeaveOut: ['refunds'] });
    await refund(refunded, 'all', '6.00');
    const stranger = `stranger_${Date.now().toString(36)}`;
    await fetch(`${stack.sim.url}/sim/trades/${stranger}/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clockSkewMs: day.clockSkewMs }),
    });
    const strangerTrade = await fetch(`${stack.sim.url}/sim/trades/${stranger}/unseen-payment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: '99.00' }),
    }).then((r) => r.json());

    const result = await reconcile(day.date);
    expect(result.status).toBe('DONE');
    const byType = Object.fromEntries(result.mismatches.map((m: { type: string }) => [m.type, m]));
    expect(result.mismatches).toHaveLength(3);
    expect(byType.missing_gateway).toMatchObject({ merchantId: stack.merchant.id, outTradeNo: missing, alipayOutTradeNo: stack.alipayNo(missing), localAmount: '7.00', gatewayAmount: null });
    // A number that is none of this engine's orders is named by Alipay's number alone.
    expect(byType.missing_local).toMatchObject({ merchantId: null, outTradeNo: null, alipayOutTradeNo: stranger, alipayTradeNo: strangerTrade.tradeNo, gatewayAmount: '99.00', localAmount: null });
    expect(byType.missing_local.detail).toMatch(/no record/);
    expect(byType.status_mismatch).toMatchObject({ outTradeNo: refunded, alipayOutTradeNo: stack.alipayNo(refunded), localAmount: '6.00', gatewayAmount: null });
    expect(byType.status_mismatch.detail).toMatch(/durapay says REFUNDED .* no refund/);

    const review = await stack.waitForStatus(missing, 'REVIEW');
    expect(review.reason).toMatch(/missing_gateway/);
    // A status mismatch is recorded on the order, whose status stays as it was.
    await waitFor('the status mismatch to be recorded', async () =>
      types(await stack.events(refunded)).includes('reconciliation_mismatch') ? true : undefined,
    );
    expect((await stack.getPayment(refunded)).body.status).toBe('REFUNDED');
    // Nothing about the stranger's money was refunded or confirmed.
    expect(await fetch(`${stack.sim.url}/sim/trades/${stranger}`).then((r) => r.json())).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: '0.00' });
  });

  it('an order still waiting hears of a payment Alipay took: its own query confirms it, not the reconciliation', async () => {
    const day = pastDay(6);
    const waiting = await order('waiting', '4.00', day, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${waiting}/pay`);
    expect((await stack.getPayment(waiting)).body.status).toBe('AWAITING_PAYMENT');

    const result = await reconcile(day.date);
    expect(result.mismatches).toMatchObject([{ type: 'missing_local', merchantId: stack.merchant.id, outTradeNo: waiting, alipayOutTradeNo: stack.alipayNo(waiting), gatewayAmount: '4.00' }]);
    const paid = await stack.waitForStatus(waiting, 'PAID', 10_000);
    expect(paid.paidAmount).toBe('4.00');
    const events = await waitFor('the finding to be recorded', async () => {
      const all = await stack.events(waiting);
      return types(all).includes('reconciliation_mismatch') ? all : undefined;
    });
    expect(events.find((e) => e.type === 'paid')!.data.source).toBe('query');
    // The running order's own workflow took the finding.
    const history = await client.workflow.getHandle(stack.workflowId(waiting)).fetchHistory();
    expect(history.events!.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'reconciliationFindings')).toBe(true);
  });

  it('a bill that is not ready is retried, then ends BILL_NOT_READY', async () => {
    const today = beijingDay(Date.now());
    const before = (await billCalls()).length;
    const result = await reconcile(today);
    expect(result).toMatchObject({ date: today, status: 'BILL_NOT_READY', totals: null, mismatches: [] });
    expect(result.reason).toMatch(/isp\.bill_not_exist/);
    const calls = (await billCalls()).slice(before);
    expect(calls).toHaveLength(3);
    expect(calls.every((c) => c.code === '40004' && c.subCode === 'isp.bill_not_exist')).toBe(true);
  });

  it('the schedule exists after worker start, exists only once after a second start, and reconciles yesterday', async () => {
    const scheduleId = reconciliationScheduleId(stack.appId);
    const first = await client.schedule.getHandle(scheduleId).describe();
    expect(first.action).toMatchObject({ type: 'startWorkflow', workflowType: 'dailyReconciliationWorkflow', taskQueue: stack.config.temporal.taskQueue });
    // 10:00 in Beijing is 02:00 UTC.
    expect(first.spec.calendars).toMatchObject([{ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }] }]);

    await stack.stopWorker();
    await stack.startWorker();
    const second = await client.schedule.getHandle(scheduleId).describe();
    expect(second.info.createdAt).toEqual(first.info.createdAt);
    const ours = await waitFor('the schedule to be listed', async () => {
      const found = [];
      for await (const schedule of client.schedule.list()) if (schedule.scheduleId.startsWith(`daily-reconciliation:${stack.appId}`)) found.push(schedule.scheduleId);
      return found.length > 0 ? found : undefined;
    });
    expect(ours).toEqual([scheduleId]);

    // What it starts reconciles the Beijing day before.
    await client.schedule.getHandle(scheduleId).trigger();
    const yesterday = beijingDay(Date.now() - DAY_MS);
    const child = await waitFor('the scheduled reconciliation to start', async () => {
      try {
        return await client.workflow.getHandle(reconciliationWorkflowId(stack.appId, yesterday)).describe();
      } catch {
        return undefined;
      }
    });
    expect(child.type).toBe('reconciliationWorkflow');
    const done = await waitFor('yesterday to be reconciled', async () => {
      const body = (await stack.ops('GET', `/ops/reconciliations/${yesterday}`)).body;
      return body.status === 'DONE' ? body : undefined;
    });
    expect(done.mismatches).toEqual([]);
  });

  it('a finding on a finished, partly refunded order is listed in REVIEW; resolved as CLOSED, what Alipay still holds goes back', async () => {
    const day = pastDay(9);
    const tampered = await paidOrder('finding-review', '6.00', day, { billAmount: '5.90' });
    await refund(tampered, 'r1', '2.00');
    expect((await reconcile(day.date)).mismatches).toMatchObject([{ type: 'amount_mismatch', outTradeNo: tampered }]);
    await stack.waitForStatus(tampered, 'REVIEW');
    const listed = await waitFor('the order to be listed in REVIEW', async () => {
      const answer = await stack.ops('GET', `/ops/payments?status=REVIEW&merchantId=${stack.merchant.id}`);
      return answer.body.orders?.find((o: { outTradeNo: string }) => o.outTradeNo === tampered);
    });
    expect(listed).toMatchObject({ workflowStatus: 'COMPLETED', reason: expect.stringMatching(/amount_mismatch/) });
    const resolved = await stack.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'the bill is right; give the rest back' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const ledger = await stack.ledger(tampered);
    expect(resolved.body).toMatchObject({ status: 'CLOSED', refundedAmount: '6.00', reason: expect.stringMatching(`4\\.00 refunded to the buyer \\(review-${ledger.tradeNo}\\)`) });
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '6.00' });
  });

  it('a REVIEW resolved as CLOSED gives back what Alipay took, shows it as a payment given back, and its day reconciles without a mismatch', async () => {
    const day = pastDay(11);
    const outTradeNo = await order('review-closed-day', '7.70', day);
    await stack.inReviewThenPaid(outTradeNo);
    const resolved = await stack.ops('POST', `/ops/payments/${stack.workflowId(outTradeNo)}/resolve-review`, { outcome: 'CLOSED', note: 'not ours to keep' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '7.70' });
    // The merchant reads the money Alipay took for the closed order, and that it went back.
    expect(resolved.body).toMatchObject({
      status: 'CLOSED',
      latePayment: { alipayTradeNo: ledger.tradeNo, amount: '7.70', refundOutRequestNo: `review-${ledger.tradeNo}`, refundStatus: 'SUCCEEDED' },
    });
    expect(await reconcile(day.date)).toMatchObject({ status: 'DONE', mismatchCount: 0 });
  });

  it("a REVIEW resolved as PAID records Alipay's payment time and amount, and its day reconciles without a mismatch", async () => {
    const day = pastDay(10);
    const outTradeNo = await order('review-paid-day', '8.80', day);
    await stack.inReviewThenPaid(outTradeNo);
    await waitFor("the payment's notify to be read", async () => ((await stack.events(outTradeNo)).filter((e) => e.type === 'notify_received').length >= 2 ? true : undefined));
    const resolved = await stack.ops('POST', `/ops/payments/${stack.workflowId(outTradeNo)}/resolve-review`, { outcome: 'PAID', note: 'paid in full after all' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    const ledger = await stack.ledger(outTradeNo);
    expect(resolved.body).toMatchObject({ status: 'PAID', paidAmount: '8.80', paidAt: ledger.paidAt.replace(/\.\d{3}Z$/, '.000Z') });
    expect(resolved.body.paidAt.slice(0, 10) < new Date().toISOString().slice(0, 10)).toBe(true);
    const result = await reconcile(day.date);
    expect(result).toMatchObject({ status: 'DONE', mismatchCount: 0 });
  });

  it('ops endpoints refuse a missing or wrong token, and a bad date names the field and the rule', async () => {
    const day = pastDay(3).date;
    for (const token of [null, '', 'wrong-token', stack.opsToken.slice(1), `${stack.opsToken}x`]) {
      for (const [method, path, body] of [
        ['GET', `/ops/reconciliations/${day}`, undefined],
        ['POST', '/ops/reconciliations', { date: day }],
      ] as const) {
        const answer = await stack.ops(method, path, body, token);
        expect(answer.status, `${method} ${path} with ${token}`).toBe(401);
        expect(answer.body.error).toMatchObject({ code: 'OPS_UNAUTHORIZED', details: null });
        expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    const basic = await fetch(`${stack.api.url}/ops/reconciliations/${day}`, { headers: { authorization: `Basic ${Buffer.from(`ops:${stack.opsToken}`).toString('base64')}` } });
    expect(basic.status).toBe(401);

    const bad = await stack.ops('POST', '/ops/reconciliations', { date: '2025-02-30' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: [{ field: 'date', rule: expect.stringMatching(/YYYY-MM-DD/) }] });
    const future = await stack.ops('POST', '/ops/reconciliations', { date: beijingDay(Date.now() + 2 * DAY_MS) });
    expect(future.body.error.details).toEqual([{ field: 'date', rule: expect.stringMatching(/not be later than today/) }]);
    const extra = await stack.ops('POST', '/ops/reconciliations', { date: day, force: true });
    expect(extra.body.error.details).toEqual([{ field: '(body)', rule: 'unknown field(s): force' }]);
    const badRerun = await stack.ops('POST', '/ops/reconciliations', { date: day, rerun: 'yes' });
    expect(badRerun.body.error.details).toEqual([{ field: 'rerun', rule: 'must be true or false' }]);
    const badPath = await stack.ops('GET', '/ops/reconciliations/yesterday');
    expect(badPath.status).toBe(400);
    expect(badPath.body.error.details).toEqual([{ field: 'date', rule: expect.stringMatching(/YYYY-MM-DD/) }]);
    const never = await stack.ops('GET', '/ops/reconciliations/2001-01-01');
    expect(never.status).toBe(404);
    expect(never.body.error.code).toBe('NOT_FOUND');
  });
});
