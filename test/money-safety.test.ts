// The money-safety defects an outside review found at the edges of the payment workflow, each as
// the scenario that showed it: the real API, worker, Temporal, PostgreSQL and the simulator.
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deriveApiKeys } from '../lib/platform/master-key.js';
import {
  alipayNotifySignal,
  alipayTradeChangedSignal,
  paymentStateQuery,
  PAYMENT_WORKFLOW_TYPE,
  type PaymentOrder,
} from '../lib/payments/payment.js';
import { PaymentCodeSealer } from '../lib/alipay/payment-code.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let client: Client;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '4s', pollLadder: '1s', unplaceableRetry: '2s' });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});

async function createOrder(label: string, extra: Record<string, unknown> = {}) {
  const outTradeNo = stack.newOrderNo(label);
  const body = { outTradeNo, amount: '20.00', subject: `money safety ${label}`, ...extra };
  const created = await stack.createPayment(body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { outTradeNo, body, created: created.body };
}

/** An order as answered by any API process: the cashier page's path, whatever the API's base. */
const sameApiBase = (order: { cashierUrl: string | null }) => ({ ...order, cashierUrl: order.cashierUrl && new URL(order.cashierUrl).pathname });
const types = (events: { type: string }[]) => events.map((e) => e.type);
const countOf = (events: { type: string }[], type: string) => events.filter((e) => e.type === type).length;
const gatewayCalls = async (outTradeNo: string, method: string) =>
  ((await stack.simCall('GET', '/sim/calls')).body as { outTradeNo: string; method: string; httpStatus: number; subCode: string | null }[]).filter(
    (c) => c.outTradeNo === outTradeNo && c.method === method,
  );
const notifyAnswered = (outTradeNo: string) =>
  waitFor(`a notify for ${outTradeNo} to be answered success`, async () => {
    const ledger = await stack.ledger(outTradeNo);
    return ledger.notifies.some((n: { answer?: string }) => n.answer === 'success') ? true : undefined;
  });

describe('1. an order number is never reopened once Temporal has forgotten its workflow', () => {
  it('answers a repeated create from the record: no second precreate, the row unchanged', async () => {
    const { outTradeNo, body } = await createOrder('forgotten-paid');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const closed = await createOrder('forgotten-closed');
    await stack.cancelPayment(closed.outTradeNo);
    const paidRow = (await stack.getPayment(outTradeNo)).body;
    const closedRow = (await stack.getPayment(closed.outTradeNo)).body;

    const forgetful = await stack.startEngineOnFreshNamespace();
    try {
      const again = await forgetful.createPayment(body);
      expect(again.status).toBe(200);
      // The same record; only the cashier page's base is this other API's own.
      expect(sameApiBase(again.body)).toEqual(sameApiBase(paidRow));
      const otherTerms = await forgetful.createPayment({ ...body, amount: '0.01' });
      expect(otherTerms.status).toBe(409);
      expect(otherTerms.body.error.code).toBe('ORDER_CONFLICT');
      // A closed order is not reissued: its QR code is gone for good.
      const closedAgain = await forgetful.createPayment(closed.body);
      expect(closedAgain.status).toBe(409);
      expect(closedAgain.body.error.code).toBe('ORDER_CLOSED');
      expect(sameApiBase(closedAgain.body.error.details)).toEqual(sameApiBase(closedRow));

      // Even a run started straight on Temporal, past the API, finds the number taken.
      const forgetfulClient = new Client({ connection: client.connection, namespace: forgetful.namespace });
      const direct = await forgetfulClient.workflow.execute(PAYMENT_WORKFLOW_TYPE, {
        workflowId: stack.workflowId(outTradeNo),
        taskQueue: stack.config.temporal.taskQueue,
        args: [
          {
            order: {
              appId: stack.appId,
              outTradeNo,
              alipayOutTradeNo: stack.alipayNo(outTradeNo),
              merchantId: stack.merchant.id,
              amountFen: 2000,
              subject: body.subject,
              alipayNotifyUrl: stack.config.alipay.notifyUrl,
            },
            timings: stack.config.timings,
          },
        ],
      });
      expect(direct).toMatchObject({ status: 'PAID', alipayTradeNo: paidRow.alipayTradeNo });
    } finally {
      await forgetful.stop();
    }
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.precreate')).toHaveLength(1);
    expect(await gatewayCalls(closed.outTradeNo, 'alipay.trade.precreate')).toHaveLength(1);
    expect((await stack.getPayment(outTradeNo)).body).toEqual(paidRow);
    expect((await stack.getPayment(closed.outTradeNo)).body).toEqual(closedRow);
    expect(countOf(await stack.events(outTradeNo), 'created')).toBe(1);
  });

  it('answers a repeated create of a closed order 409 ORDER_CLOSED while Temporal still has it', async () => {
    const { outTradeNo, body } = await createOrder('closed-again');
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    const again = await stack.createPayment(body);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'ORDER_CLOSED', details: { status: 'CLOSED', outTradeNo } });
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.precreate')).toHaveLength(1);
  });
});

describe('2. no accepted payment notify is dropped or silently acknowledged', () => {
  it('reads a notify that arrives while the order is being closed', async () => {
    const { outTradeNo } = await createOrder('notify-during-close');
    // Alipay's clock runs behind ours; the buyer scans, then pays just as our close runs, and
    // slow gateway answers let the payment's notify arrive while the close is in flight.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { payOnClose: true, clockSkewMs: 60_000, delayMs: 400 });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID', 15_000);
    expect(paid.paidAmount).toBe('20.00');
    await notifyAnswered(outTradeNo);
    const events = await waitFor('the notify to be recorded', async () => {
      const all = await stack.events(outTradeNo);
      return countOf(all, 'notify_received') > 0 ? all : undefined;
    });
    expect(types(events).indexOf('notify_received')).toBeGreaterThan(types(events).indexOf('close_result'));
    expect(countOf(events, 'paid')).toBe(1);
    expect((await stack.ledger(outTradeNo)).status).toBe('TRADE_SUCCESS');
  });

  it('records a genuine payment that follows a REVIEW, and flags it', async () => {
    const { outTradeNo } = await createOrder('review-then-paid');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const odd = await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, {
      variant: 'valid',
      overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' },
    });
    expect(odd.body.answer).toBe('success');
    await stack.waitForStatus(outTradeNo, 'REVIEW');
    // A REVIEW order's workflow waits for an operator; what Alipay says meanwhile still reaches it.
    expect((await client.workflow.getHandle(stack.workflowId(outTradeNo)).describe()).status.name).toBe('RUNNING');

    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    await notifyAnswered(outTradeNo);
    const review = await waitFor('the late payment to be flagged', async () => {
      const payment = (await stack.getPayment(outTradeNo)).body;
      return /late payment/.test(payment.reason ?? '') ? payment : undefined;
    });
    expect(review).toMatchObject({ status: 'REVIEW', alipayStatus: 'TRADE_SUCCESS', paidAmount: null });
    const events = await stack.events(outTradeNo);
    expect(events.filter((e) => e.type === 'notify_received').at(-1)!.data).toMatchObject({ late: true, statusThen: 'REVIEW', tradeStatus: 'TRADE_SUCCESS' });
    expect(types(events).slice(-2)).toEqual(['query_result', 'anomaly']);
    expect(countOf(events, 'paid')).toBe(0);
  });

  it('voids an open trade whose close Alipay refused, instead of leaving it open', async () => {
    const { outTradeNo } = await createOrder('close-refused');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.close'], subCode: 'ACQ.TRADE_STATUS_ERROR' },
    });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const cancelled = await stack.cancelPayment(outTradeNo);
    expect(cancelled.body.status).toBe('CLOSED');
    expect((await stack.ledger(outTradeNo)).status).toBe('TRADE_CLOSED');
  });

  it('says so when a REVIEW order leaves a trade open at Alipay, and records a payment that follows', async () => {
    const { outTradeNo } = await createOrder('left-open');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 2, methods: ['alipay.trade.close', 'alipay.trade.cancel'], subCode: 'ACQ.TRADE_STATUS_ERROR' },
      clockSkewMs: 60_000, // the trade is still open at Alipay when our deadline comes
    });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const review = await stack.waitForStatus(outTradeNo, 'REVIEW', 10_000);
    expect(review).toMatchObject({ alipayStatus: 'WAIT_BUYER_PAY' });
    expect(review.reason).toMatch(/still open at Alipay/);

    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await notifyAnswered(outTradeNo);
    const flagged = await waitFor('the payment to be flagged', async () => {
      const payment = (await stack.getPayment(outTradeNo)).body;
      return /late payment/.test(payment.reason ?? '') ? payment : undefined;
    });
    expect(flagged).toMatchObject({ status: 'REVIEW', alipayStatus: 'TRADE_SUCCESS' });
  });
});

describe('3. a never-scanned order is voided at its deadline', () => {
  it('refuses the buyer after CLOSED even when Alipay’s clock runs a minute behind', async () => {
    const { outTradeNo } = await createOrder('skewed-deadline');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { clockSkewMs: 60_000 });
    await stack.waitForStatus(outTradeNo, 'CLOSED', 10_000);
    const late = await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    expect(late.status).toBe(409);
    expect((await stack.ledger(outTradeNo)).voided).toBe(true);
  });

  it('voids an order nobody scanned at its deadline; a payment that lands during the void is refunded and said so', async () => {
    const { outTradeNo } = await createOrder('paid-during-void');
    // Alipay's clock runs behind ours, and the buyer scans and pays just as the void runs.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { payOnClose: true, clockSkewMs: 60_000 });
    const closed = await stack.waitForStatus(outTradeNo, 'CLOSED', 10_000);
    expect(closed.reason).toBe('cancelled; the buyer paid meanwhile and Alipay refunded it');
    expect(closed.paidAmount).toBeNull();
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_CLOSED');
    expect(ledger.refunds.map((r: { via: string }) => r.via)).toEqual(['cancel']);
    // Never scanned when the deadline came: no close, straight to the void.
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.close')).toHaveLength(0);
    expect(await gatewayCalls(outTradeNo, 'alipay.trade.cancel')).toHaveLength(1);
  });

  it('closes, and says why, when Alipay refuses the void for good', async () => {
    const { outTradeNo } = await createOrder('void-refused');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
    });
    const closed = await stack.waitForStatus(outTradeNo, 'CLOSED', 10_000);
    expect(closed.reason).toMatch(/Alipay refused to void the order number \(ACQ\.CANCEL_NOT_ALLOWED\)/);
  });
});

describe('4. a signal sent straight to Temporal cannot mark an order PAID', () => {
  it('records forged notify signals as anomalies and stays unpaid', async () => {
    const { outTradeNo } = await createOrder('forged-signal');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const ledger = await stack.ledger(outTradeNo);
    const handle = client.workflow.getHandle(stack.workflowId(outTradeNo));
    const forged = {
      app_id: stack.appId,
      out_trade_no: outTradeNo,
      trade_no: ledger.tradeNo,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '20.00',
      seller_id: stack.sellerId,
      notify_id: 'forged-1',
      sign_type: 'RSA2',
      sign: Buffer.alloc(256, 7).toString('base64'),
    };
    await handle.signal(alipayNotifySignal, { params: forged });
    // The old shape: a bare report, as the API used to forward it.
    await handle.signal('alipayNotify', { source: 'notify', outTradeNo, tradeNo: ledger.tradeNo, tradeStatus: 'TRADE_SUCCESS', totalAmount: '20.00', appId: stack.appId } as never);
    const events = await waitFor('both signals to be recorded', async () => {
      const all = await stack.events(outTradeNo);
      return countOf(all, 'anomaly') >= 2 ? all : undefined;
    });
    expect(events.filter((e) => e.type === 'anomaly').map((e) => e.data.reason)).toEqual([
      'notify rejected: signature does not verify',
      'notify rejected: signature does not verify',
    ]);
    expect(await handle.query(paymentStateQuery)).toMatchObject({ status: 'AWAITING_PAYMENT' });
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('AWAITING_PAYMENT');
    expect(countOf(events, 'paid')).toBe(0);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  });
});

describe('6. notifies and cancels never wait behind a failing activity', () => {
  it('is PAID from the notify while Alipay fails every status query', async () => {
    const { outTradeNo } = await createOrder('query-outage', { timeoutMinutes: 2 });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      systemErrors: { count: 100, kind: 'http500', methods: ['alipay.trade.query'] },
    });
    await waitFor('a status query to fail', async () => ((await gatewayCalls(outTradeNo, 'alipay.trade.query')).length > 0 ? true : undefined));
    const paidAt = Date.now();
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    const paid = await stack.waitForStatus(outTradeNo, 'PAID', 5_000);
    expect(Date.now() - paidAt).toBeLessThan(5_000);
    expect(paid.paidAmount).toBe('20.00');
    expect((await gatewayCalls(outTradeNo, 'alipay.trade.query')).every((c) => c.httpStatus === 500)).toBe(true);
    expect((await stack.events(outTradeNo)).find((e) => e.type === 'paid')!.data.source).toBe('notify');
    await stack.simCall('DELETE', `/sim/trades/${outTradeNo}/faults`);
  });

  it('cancels while Alipay fails every status query', async () => {
    const { outTradeNo } = await createOrder('cancel-during-outage', { timeoutMinutes: 2 });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      systemErrors: { count: 100, kind: '20000', methods: ['alipay.trade.query'] },
    });
    await waitFor('a status query to fail', async () => ((await gatewayCalls(outTradeNo, 'alipay.trade.query')).length > 0 ? true : undefined));
    const cancelled = await stack.cancelPayment(outTradeNo);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('CLOSED');
    await stack.simCall('DELETE', `/sim/trades/${outTradeNo}/faults`);
  });

  it('sends an order to REVIEW, with the reason, when Alipay keeps answering what cannot be placed', async () => {
    const { outTradeNo } = await createOrder('unsigned-close');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      systemErrors: { count: 1000, kind: 'error_response', methods: ['alipay.trade.close'] },
      clockSkewMs: 60_000, // the trade is still open at Alipay when our deadline comes
    });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
    const review = await stack.waitForStatus(outTradeNo, 'REVIEW', 20_000);
    expect(review.reason).toMatch(/could not be placed while closing .*unverifiable answer.*the trade may still be open at Alipay/);
    await stack.simCall('DELETE', `/sim/trades/${outTradeNo}/faults`);
  });
});

describe('8. merchants never see internal errors', () => {
  async function createUntilAnswered(body: unknown) {
    return waitFor('a create that is not a 503', async () => {
      const answer = await stack.createPayment(body);
      return answer.status === 503 ? undefined : answer;
    });
  }

  it('tells a merchant only that Alipay could not be reached', async () => {
    const outTradeNo = stack.newOrderNo('precreate-down');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { systemErrors: { count: 5, kind: 'http500', methods: ['alipay.trade.precreate'] } });
    const failed = await createUntilAnswered({ outTradeNo, amount: '1.00', subject: 'gateway down' });
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).toBe('PRECREATE_FAILED');
    expect(failed.body.error.details.reason).toBe('Alipay could not be reached to issue a QR code');
    // The cashier page is on the API's own address; nothing else may name one.
    expect(JSON.stringify({ ...failed.body, error: { ...failed.body.error, details: { ...failed.body.error.details, cashierUrl: null } } })).not.toMatch(
      /HTTP|请求错误|127\.0\.0\.1|ECONNREFUSED/,
    );
    const events = await stack.events(outTradeNo);
    expect(events.at(-1)!.data.detail).toMatch(/HTTP/); // the detail stays with the engineers
  });

  it("passes on Alipay's own code and message for a refusal", async () => {
    const outTradeNo = stack.newOrderNo('precreate-refused');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.precreate'], subCode: 'ACQ.TOTAL_FEE_EXCEED' },
    });
    const failed = await createUntilAnswered({ outTradeNo, amount: '1.00', subject: 'refused' });
    expect(failed.status).toBe(502);
    expect(failed.body.error.details.reason).toBe('Alipay refused the order: ACQ.TOTAL_FEE_EXCEED 模拟拒绝: ACQ.TOTAL_FEE_EXCEED');
  });
});

describe('9. a long wait keeps its history bounded', () => {
  // A waiting order's history grows only with what reaches its workflow: notifies, operators, and
  // the poll sweeper's news, each of which makes the workflow query Alipay. Here the sweeper's
  // signal, sent again and again, stands for a busy order.
  const nudge = (handle: ReturnType<Client['workflow']['getHandle']>) =>
    handle.signal(alipayTradeChangedSignal, { tradeStatus: 'WAIT_BUYER_PAY' }).catch(() => {});
  let long: Stack;
  beforeAll(async () => {
    long = await startStack({ orderTimeout: '30s', pollLadder: '1s', historyLimit: 50 });
  });
  afterAll(async () => {
    await long?.stop();
  });

  it('continues as new past the limit and still ends PAID', async () => {
    const outTradeNo = long.newOrderNo('long-wait');
    expect((await long.createPayment({ outTradeNo, amount: '5.00', subject: 'long wait' })).status).toBe(201);
    const handle = client.workflow.getHandle(long.workflowId(outTradeNo));
    const runs = new Set<string>();
    await waitFor('three runs', async () => {
      await nudge(handle);
      runs.add((await handle.describe()).runId);
      return runs.size >= 3 ? true : undefined;
    }, { timeoutMs: 25_000, intervalMs: 200 });
    await long.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await long.waitForStatus(outTradeNo, 'PAID');
    expect(await handle.result()).toMatchObject({ status: 'PAID', amountFen: 500 });
    for (const runId of runs) {
      const { events } = await client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
      // The limit is checked once per wait; one wait adds a bounded number of events.
      expect(events!.length).toBeLessThanOrEqual(50 + 30);
    }
    const ledger = await long.events(outTradeNo);
    expect(countOf(ledger, 'created')).toBe(1);
    expect(countOf(ledger, 'qr_issued')).toBe(1);
    expect(countOf(ledger, 'paid')).toBe(1);
    // It kept querying across the runs (a query with nothing new is not written to the ledger).
    const queries = (await long.ledger(outTradeNo)).calls.filter((c: { method: string }) => c.method === 'alipay.trade.query');
    expect(queries.length).toBeGreaterThanOrEqual(3);
  });

  it('cancels an order that has continued as new', async () => {
    const outTradeNo = long.newOrderNo('long-cancel');
    expect((await long.createPayment({ outTradeNo, amount: '5.00', subject: 'long cancel' })).status).toBe(201);
    const handle = client.workflow.getHandle(long.workflowId(outTradeNo));
    const firstRun = (await handle.describe()).runId;
    await waitFor(
      'a second run',
      async () => {
        await nudge(handle);
        return (await handle.describe()).runId !== firstRun ? true : undefined;
      },
      { timeoutMs: 25_000, intervalMs: 200 },
    );
    const cancelled = await long.cancelPayment(outTradeNo);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('CLOSED');
    expect((await long.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(409);
  });
});

describe('10. an order whose own data PostgreSQL refuses goes to REVIEW, instead of being retried forever', () => {
  // The API refuses such text (WELL_FORMED_RULE), but a run started on Temporal by anything else,
  // or by an older API, still brings it to the worker: its claim can never be stored as it is.
  const started: WorkflowHandle[] = [];
  afterEach(async () => {
    // A run still retrying its claim would keep the worker from shutting down.
    for (const handle of started.splice(0)) await handle.terminate('the test is over').catch(() => {});
  });

  async function startDirectly(outTradeNo: string, order: Partial<PaymentOrder>, method: 'qr' | 'barcode' = 'qr') {
    const workflowId = stack.workflowId(outTradeNo);
    const paymentCode = method === 'barcode' ? new PaymentCodeSealer(deriveApiKeys(stack.config.masterKey)).seal('286288211188855245', workflowId) : undefined;
    const input = stack.paymentWorkflowInput(outTradeNo, { ...(paymentCode ? { method: 'barcode' as const, paymentCode } : {}), ...order });
    started.push(await client.workflow.start(PAYMENT_WORKFLOW_TYPE, { workflowId, taskQueue: stack.config.temporal.taskQueue, args: [input] }));
  }

  const callsAtAlipay = async (outTradeNo: string) =>
    ((await stack.simCall('GET', '/sim/calls')).body as { outTradeNo: string; method: string }[]).filter((c) => c.outTradeNo === outTradeNo).map((c) => c.method);

  /** The order is in REVIEW everywhere it shows, with PostgreSQL's refusal as the reason, nothing
   *  reached Alipay, and an operator closes it without any refund. */
  async function reviewedThenClosed(outTradeNo: string, refusal: RegExp) {
    const handle = client.workflow.getHandle(stack.workflowId(outTradeNo));
    const listed = await waitFor(
      `${outTradeNo} to be listed in REVIEW`,
      async () => {
        const answer = await stack.ops('GET', `/ops/payments?status=REVIEW&merchantId=${stack.merchant.id}`);
        return answer.body.orders?.find((o: { outTradeNo: string }) => o.outTradeNo === outTradeNo);
      },
      { timeoutMs: 20_000 },
    );
    const reason = expect.stringMatching(new RegExp(`^PostgreSQL refused the order's data: ${refusal.source}.*; nothing was sent to Alipay$`));
    expect(listed).toMatchObject({ paymentId: handle.workflowId, status: 'REVIEW', amount: '15.00', workflowStatus: 'RUNNING', reason });
    expect(await handle.query(paymentStateQuery)).toMatchObject({ status: 'REVIEW', reason: listed.reason });
    expect((await handle.describe()).searchAttributes.PaymentStatus).toEqual(['REVIEW']);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'REVIEW', reason: listed.reason });
    expect(await callsAtAlipay(outTradeNo)).toEqual([]);

    const closed = await stack.ops('POST', `/ops/payments/${listed.paymentId}/resolve-review`, { outcome: 'CLOSED', note: 'a broken order', operator: 'dana' });
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect(closed.body).toMatchObject({ status: 'CLOSED', reason: 'resolved as CLOSED by dana after review: a broken order' });
    expect(await handle.result()).toMatchObject({ status: 'CLOSED' });
    // Only the resolution's look at the trade, which Alipay has never heard of: no refund.
    expect(await callsAtAlipay(outTradeNo)).toEqual(['alipay.trade.query']);
    const events = await stack.events(outTradeNo);
    expect(types(events)).toEqual(['created', 'anomaly', 'query_result', 'review_resolved']);
    return events;
  }

  it('a lone surrogate in the subject: recorded with U+FFFD in its place', async () => {
    const outTradeNo = stack.newOrderNo('lone-surrogate');
    await startDirectly(outTradeNo, { subject: 'tea \udc00' });
    const events = await reviewedThenClosed(outTradeNo, /invalid input syntax for type json \(Unicode low surrogate must follow a high surrogate\.\)/);
    expect((await stack.getPayment(outTradeNo)).body.subject).toBe('tea \ufffd');
    expect(events[0]!.data.subject).toBe('tea \ufffd');
  });

  it("a NUL in the notifyUrl: recorded without a webhook address, since another address is not the merchant's", async () => {
    const outTradeNo = stack.newOrderNo('nul-notify-url');
    await startDirectly(outTradeNo, { notifyUrl: 'http://127.0.0.1:9/hook\u0000' });
    await reviewedThenClosed(outTradeNo, /invalid byte sequence for encoding "UTF8": 0x00/);
    const { rows } = await stack.pool.query('SELECT notify_url FROM payments WHERE id = $1', [stack.workflowId(outTradeNo)]);
    expect(rows).toEqual([{ notify_url: null }]);
  });

  it('a barcode order: no payment code is sent to Alipay', async () => {
    const outTradeNo = stack.newOrderNo('barcode-surrogate');
    await startDirectly(outTradeNo, { subject: '\ud800 tea' }, 'barcode');
    await reviewedThenClosed(outTradeNo, /invalid input syntax for type json \(Unicode low surrogate must follow a high surrogate\.\)/);
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ method: 'barcode', subject: '\ufffd tea' });
  });

  it('an amount that is not positive, which no text can mend: the run fails with the refusal, and nothing reaches Alipay', async () => {
    const outTradeNo = stack.newOrderNo('no-amount');
    await startDirectly(outTradeNo, { amountFen: 0 });
    const handle = client.workflow.getHandle(stack.workflowId(outTradeNo));
    await waitFor('the run to fail', async () => ((await handle.describe()).status.name === 'FAILED' ? true : undefined), { timeoutMs: 20_000 });
    const failure = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    // The claim's failure, with what PostgreSQL said (not the row it echoes).
    expect((failure as WorkflowFailedError).cause?.message).toBe('new row for relation "payments" violates check constraint "payments_amount_fen_check"');
    expect((await stack.pool.query('SELECT id FROM payments WHERE id = $1', [stack.workflowId(outTradeNo)])).rows).toEqual([]);
    expect(await callsAtAlipay(outTradeNo)).toEqual([]);
  });
});
