// Barcode payments (付款码): the cashier scans the buyer's payment code. Real API, worker, Temporal,
// PostgreSQL and alipay-sdk against the simulator; the buyer's behaviour is set per payment code.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { buyerCode, newAuthCode, type BuyerBehaviour } from './support/payment-codes.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const execFileAsync = promisify(execFile);

let stack: Stack;
let client: Client;
beforeAll(async () => {
  // A buyer confirms within 4 s, queried every second; a create answers within 2 s.
  stack = await startStack();
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});

const buyer = (behaviour: BuyerBehaviour) => buyerCode(stack, behaviour);

function barcodeOrder(label: string, authCode: string) {
  return { outTradeNo: stack.newOrderNo(label), amount: '36.80', subject: `付款码 ${label}`, method: 'barcode', authCode };
}

const gatewayCalls = async (outTradeNo: string, method: string) =>
  ((await stack.simCall('GET', '/sim/calls')).body as { outTradeNo: string; method: string; code: string | null; subCode: string | null; answerLost?: true }[]).filter(
    (c) => c.outTradeNo === outTradeNo && c.method === method,
  );
/** The text of every payload in a history (they travel base64-encoded). */
function decodedPayloads(history: unknown): string {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (node instanceof Uint8Array) texts.push(Buffer.from(node).toString('utf8'));
    else if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') Object.values(node).forEach(walk);
  };
  walk(history);
  expect(texts.length).toBeGreaterThan(10);
  return texts.join('\n');
}
const countOf = (events: { type: string }[], type: string) => events.filter((e) => e.type === type).length;

describe('a barcode payment answers the cashier with its outcome', () => {
  it('is PAID at once when the buyer pays at once', async () => {
    const order = barcodeOrder('instant', await buyer({ kind: 'pays' }));
    const created = await stack.createPayment(order);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ status: 'PAID', method: 'barcode', amount: '36.80', paidAmount: '36.80', qrCode: null });
    expect(created.body.authCode).toBe(`${order.authCode.slice(0, 2)}${'*'.repeat(12)}${order.authCode.slice(-4)}`);
    const trade = await stack.ledger(order.outTradeNo);
    expect(trade).toMatchObject({ status: 'TRADE_SUCCESS', scene: 'bar_code', totalAmount: '36.80' });
    expect(created.body.alipayTradeNo).toBe(trade.tradeNo);
    const events = await stack.events(order.outTradeNo);
    expect(events.map((e) => e.type).slice(0, 3)).toEqual(['created', 'pay_result', 'paid']);
    expect(countOf(events, 'paid')).toBe(1);
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).toHaveLength(0);
  });

  it('answers AWAITING_PAYMENT while the buyer confirms, then turns PAID by itself', async () => {
    // Confirms after the create has answered (2 s), before the window ends (4 s).
    const order = barcodeOrder('confirm', await buyer({ kind: 'confirms', afterMs: 2_600 }));
    const started = Date.now();
    const created = await stack.createPayment(order);
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('AWAITING_PAYMENT');
    expect(Date.now() - started).toBeLessThan(2_000 + 1_500);
    const paid = await stack.waitForStatus(order.outTradeNo, 'PAID');
    expect(paid.paidAmount).toBe('36.80');
    expect((await gatewayCalls(order.outTradeNo, 'alipay.trade.pay')).map((c) => c.code)).toEqual(['10003']);
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).toHaveLength(0);
    expect(countOf(await stack.events(order.outTradeNo), 'paid')).toBe(1);
  });

  it('cancels at Alipay when the buyer never confirms: CLOSED, no money taken', async () => {
    const order = barcodeOrder('never', await buyer({ kind: 'never_confirms' }));
    const created = await stack.createPayment(order);
    expect(created.body.status).toBe('AWAITING_PAYMENT');
    const closed = await stack.waitForStatus(order.outTradeNo, 'CLOSED');
    expect(closed).toMatchObject({ reason: 'the buyer did not confirm in time; cancelled at Alipay', paidAmount: null, latePayment: null });
    const trade = await stack.ledger(order.outTradeNo);
    expect(trade).toMatchObject({ status: 'TRADE_CLOSED', cancelAction: 'close', paidAt: null });
    const events = await stack.events(order.outTradeNo);
    expect(events.find((e) => e.type === 'close_result')?.data).toMatchObject({ voided: 'close' });
    expect(countOf(events, 'closed')).toBe(1);
  });

  it('is FAILED with Alipay\'s sub_code for an invalid code, and nothing to cancel', async () => {
    const order = barcodeOrder('invalid', await buyer({ kind: 'invalid_code' }));
    const created = await stack.createPayment(order);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'FAILED', alipaySubCode: 'ACQ.PAYMENT_AUTH_CODE_INVALID', paidAmount: null });
    expect(created.body.reason).toMatch(/^Alipay refused the payment: ACQ.PAYMENT_AUTH_CODE_INVALID/);
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).toHaveLength(0);
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.query')).toHaveLength(0);
    // A FAILED order is a webhook like any final state.
    const { rows } = await stack.pool.query(`SELECT type FROM webhook_events WHERE payment_id = $1`, [stack.workflowId(order.outTradeNo)]);
    expect(rows.map((r) => r.type)).toEqual(['payment.failed']);
  });

  it('is FAILED when the buyer\'s balance is not enough', async () => {
    const order = barcodeOrder('balance', await buyer({ kind: 'balance_not_enough' }));
    const created = await stack.createPayment(order);
    expect(created.body).toMatchObject({ status: 'FAILED', alipaySubCode: 'ACQ.BUYER_BALANCE_NOT_ENOUGH' });
    expect((await stack.getPayment(order.outTradeNo)).body.status).toBe('FAILED');
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).toHaveLength(0);
  });
});

describe('an unknown outcome is settled by a query, or by a cancel', () => {
  it('finds a paid trade whose answer was lost: PAID, one trade, one charge', async () => {
    const order = barcodeOrder('lost-answer', await buyer({ kind: 'pays' }));
    await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/faults`, { loseAnswers: { count: 1, methods: ['alipay.trade.pay'] } });
    const created = await stack.createPayment(order);
    expect(created.status).toBe(201);
    const paid = created.body.status === 'PAID' ? created.body : await stack.waitForStatus(order.outTradeNo, 'PAID');
    expect(paid.paidAmount).toBe('36.80');
    const trades = ((await stack.simCall('GET', '/sim/trades')).body as { outTradeNo: string }[]).filter(
      (t) => t.outTradeNo === stack.alipayNo(order.outTradeNo),
    );
    expect(trades).toHaveLength(1);
    // The charge that took effect lost its answer; alipay-sdk's HTTP client repeats a request once
    // on a reset connection, and Alipay answers that repeat by the out_trade_no: already paid.
    const charges = await gatewayCalls(order.outTradeNo, 'alipay.trade.pay');
    expect(charges.filter((c) => c.code === '10000')).toEqual([expect.objectContaining({ answerLost: true })]);
    for (const repeat of charges.filter((c) => c.code !== '10000')) expect(repeat.subCode).toBe('ACQ.TRADE_HAS_SUCCESS');
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).toHaveLength(0);
    expect((await stack.ledger(order.outTradeNo)).refundedAmount).toBe('0.00');
    const events = await stack.events(order.outTradeNo);
    expect(events.find((e) => e.type === 'pay_result')?.data.outcome).toBe('unknown');
    expect(countOf(events, 'paid')).toBe(1);
    // Found by the query that follows an unknown outcome, or by Alipay's notify if it came first.
    expect(['query', 'notify']).toContain(events.find((e) => e.type === 'paid')?.data.source);
  });

  it('cancels after 20000 when the trade never came to be: CLOSED', async () => {
    const order = barcodeOrder('system-error', await buyer({ kind: 'pays' }));
    await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/faults`, { systemErrors: { count: 1, methods: ['alipay.trade.pay'], kind: '20000' } });
    await stack.createPayment(order);
    const closed = await stack.waitForStatus(order.outTradeNo, 'CLOSED');
    expect(closed.paidAmount).toBeNull();
    expect((await gatewayCalls(order.outTradeNo, 'alipay.trade.pay')).map((c) => c.code)).toEqual(['20000']);
    expect((await gatewayCalls(order.outTradeNo, 'alipay.trade.cancel')).map((c) => c.code)).toEqual(['10000']);
    expect(countOf(await stack.events(order.outTradeNo), 'closed')).toBe(1);
  });

  it('says CLOSED and refunded when the buyer pays during the cancel', async () => {
    const order = barcodeOrder('pay-in-cancel', await buyer({ kind: 'never_confirms' }));
    // The buyer confirms just as the cancel reaches Alipay: Alipay takes the money and refunds it.
    await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/faults`, { payOnClose: true, dropNotifies: true });
    await stack.createPayment(order);
    const closed = await stack.waitForStatus(order.outTradeNo, 'CLOSED');
    const trade = await stack.ledger(order.outTradeNo);
    expect(trade).toMatchObject({ status: 'TRADE_CLOSED', cancelAction: 'refund', refundedAmount: '36.80' });
    expect(closed.reason).toBe('cancelled; the buyer paid meanwhile and Alipay refunded it');
    expect(closed.alipayTradeNo).toBe(trade.tradeNo);
    expect(closed.latePayment).toMatchObject({ alipayTradeNo: trade.tradeNo, amount: '36.80', refundStatus: 'SUCCEEDED', refundedBy: 'cancel' });
    const events = await stack.events(order.outTradeNo);
    expect(events.find((e) => e.type === 'close_result')?.data).toMatchObject({ voided: 'refund', tradeNo: trade.tradeNo });
    expect(countOf(events, 'paid')).toBe(0);
  });
});

describe('a repeat never charges twice', () => {
  it('answers the same order again, and refuses another code or amount with 409', async () => {
    const order = barcodeOrder('repeat', await buyer({ kind: 'pays' }));
    const first = await stack.createPayment(order);
    expect(first.body.status).toBe('PAID');
    const again = await stack.createPayment(order);
    expect(again.status).toBe(201);
    // The same order (only updatedAt may have moved, when Alipay's notify came in between).
    expect(again.body).toEqual({ ...first.body, updatedAt: again.body.updatedAt });

    const otherCode = await stack.createPayment({ ...order, authCode: newAuthCode() });
    expect(otherCode.status).toBe(409);
    expect(otherCode.body.error.code).toBe('ORDER_CONFLICT');
    const otherAmount = await stack.createPayment({ ...order, amount: '1.00' });
    expect(otherAmount.status).toBe(409);
    // The same number as a QR order is another order too.
    const asQr = await stack.createPayment({ outTradeNo: order.outTradeNo, amount: order.amount, subject: order.subject });
    expect(asQr.status).toBe(409);
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.pay')).toHaveLength(1);
    expect((await stack.ledger(order.outTradeNo)).refundedAmount).toBe('0.00');
  });

  it('refuses another code while the first is still being confirmed', async () => {
    const order = barcodeOrder('repeat-running', await buyer({ kind: 'never_confirms' }));
    expect((await stack.createPayment(order)).body.status).toBe('AWAITING_PAYMENT');
    const otherCode = await stack.createPayment({ ...order, authCode: newAuthCode() });
    expect(otherCode.status).toBe(409);
    expect(otherCode.body.error.code).toBe('ORDER_CONFLICT');
    await stack.waitForStatus(order.outTradeNo, 'CLOSED');
    expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.pay')).toHaveLength(1);
  });

  it('answers 400 naming authCode for a code that breaks Alipay\'s rule, and changes nothing', async () => {
    const before = await stack.paymentCount();
    for (const authCode of ['123456789012345678', '2812345', '31' + '0'.repeat(16), '28' + '1'.repeat(23), '28abc4567890123456']) {
      const answer = await stack.createPayment({ outTradeNo: stack.newOrderNo('bad-code'), amount: '1.00', subject: 'x', method: 'barcode', authCode });
      expect(answer.status).toBe(400);
      expect(answer.body.error.details).toEqual([{ field: 'authCode', rule: expect.stringContaining('16 to 24 digits starting with 25 to 30') }]);
    }
    const missing = await stack.createPayment({ outTradeNo: stack.newOrderNo('no-code'), amount: '1.00', subject: 'x', method: 'barcode' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details[0].field).toBe('authCode');
    const qrWithCode = await stack.createPayment({ outTradeNo: stack.newOrderNo('qr-code'), amount: '1.00', subject: 'x', authCode: newAuthCode() });
    expect(qrWithCode.status).toBe(400);
    expect(qrWithCode.body.error.details).toEqual([{ field: 'authCode', rule: 'only with method barcode' }]);
    expect(await stack.paymentCount()).toBe(before);
  });
});

describe('an API without DURAPAY_MASTER_KEY', () => {
  it('starts with the keys derived for it alone, and serves barcode orders the worker then charges', async () => {
    const derived = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/merchant.ts', 'master-key', 'derive-api'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, DURAPAY_MASTER_KEY: stack.config.masterKey!.toString('hex'), DATABASE_URL: '' },
    });
    const apiKeys = derived.stdout.trim();
    expect(apiKeys).not.toContain(stack.config.masterKey!.toString('hex'));
    const api = await stack.spawnApiProcess({ DURAPAY_MASTER_KEY: '', DURAPAY_API_KEYS: apiKeys });
    try {
      const order = barcodeOrder('api-keys', await buyer({ kind: 'pays' }));
      const paid = await api.client.createPayment(order);
      expect(paid.status).toBe(201);
      expect(paid.body.status).toBe('PAID');
      expect((await api.client.createPayment({ outTradeNo: stack.newOrderNo('api-keys-qr'), amount: '1.00', subject: 'qr' })).status).toBe(201);
    } finally {
      await api.stop();
    }
  }, 60_000);

  it('refuses to start with neither DURAPAY_MASTER_KEY nor DURAPAY_API_KEYS, naming both', async () => {
    const lines: string[] = [];
    await expect(stack.spawnApiProcess({ DURAPAY_MASTER_KEY: '' }, (line) => lines.push(line))).rejects.toThrow();
    expect(lines.join('\n')).toMatch(/DURAPAY_API_KEYS.*DURAPAY_MASTER_KEY|DURAPAY_MASTER_KEY.*DURAPAY_API_KEYS/);
  }, 30_000);
});

describe('the payment code is a secret', () => {
  it('never appears in full in logs, workflow history or PostgreSQL', async () => {
    // The engine in processes of its own, logging at debug, every line kept. The stack's own worker
    // stops meanwhile: a workflow task it took would log where these lines are not.
    const lines: string[] = [];
    await stack.stopWorker();
    const worker = await stack.spawnWorkerProcess({ LOG_LEVEL: 'debug' }, (line) => lines.push(line));
    const api = await stack.spawnApiProcess({ LOG_LEVEL: 'debug' }, (line) => lines.push(line));
    try {
      const codes = [
        await buyer({ kind: 'pays' }),
        await buyer({ kind: 'confirms', afterMs: 1_500 }),
        await buyer({ kind: 'invalid_code' }),
        await buyer({ kind: 'pays' }),
      ];
      const orders = codes.map((code, i) => barcodeOrder(`secret-${i}`, code));
      // The last one's outcome is unknown at first (20000), which the worker logs.
      await stack.simCall('POST', `/sim/trades/${orders[3]!.outTradeNo}/faults`, { systemErrors: { count: 1, methods: ['alipay.trade.pay'], kind: '20000' } });
      for (const order of orders) expect((await api.client.createPayment(order)).status).toBe(201);
      // A code that breaks the rule is not echoed either.
      const badCode = `${newAuthCode()}9999999`;
      expect((await api.client.createPayment({ ...barcodeOrder('secret-bad', badCode) })).status).toBe(400);
      await stack.waitForStatus(orders[1]!.outTradeNo, 'PAID');
      await stack.waitForStatus(orders[3]!.outTradeNo, 'CLOSED');

      // Every payload of every event, decoded: inputs, results, update arguments, signals.
      const histories: string[] = [];
      for (const order of orders) {
        const history = await client.workflow.getHandle(stack.workflowId(order.outTradeNo)).fetchHistory();
        histories.push(decodedPayloads(history));
      }
      const { rows } = await stack.pool.query(
        `SELECT (SELECT json_agg(p) FROM payments p WHERE p.merchant_id = $1)::text AS payments,
                (SELECT json_agg(e) FROM payment_events e)::text AS events,
                (SELECT json_agg(w) FROM webhook_events w)::text AS webhooks`,
        [stack.merchant.id],
      );
      const database = JSON.stringify(rows[0]);
      const logText = lines.join('\n');
      // The workflow's own log line about the unknown outcome is among them.
      expect(logText).toMatch(new RegExp(`outcome unknown[^]*${orders[3]!.outTradeNo}`));
      for (const code of [...codes, badCode]) {
        expect(logText.includes(code)).toBe(false);
        expect(histories.some((h) => h.includes(code))).toBe(false);
        expect(database.includes(code)).toBe(false);
      }
      // The masked form is what people see.
      expect(histories[0]).toContain(`${codes[0]!.slice(0, 2)}${'*'.repeat(12)}${codes[0]!.slice(-4)}`);
      expect(database).toContain(`${codes[2]!.slice(0, 2)}${'*'.repeat(12)}${codes[2]!.slice(-4)}`);
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
      await stack.startWorker();
    }
  }, 60_000);
});

describe('a worker killed between the charge and the cancel', () => {
  it('settles once when a worker comes back', async () => {
    await stack.stopWorker();
    try {
      const doomed = await stack.spawnWorkerProcess();
      const order = barcodeOrder('killed', await buyer({ kind: 'never_confirms' }));
      expect((await stack.createPayment(order)).body.status).toBe('AWAITING_PAYMENT');
      await waitFor('the charge to be recorded', async () =>
        (await stack.events(order.outTradeNo)).some((e) => e.type === 'pay_result') ? true : undefined,
      );
      await doomed.kill();
      // The confirmation window runs out while no worker is there.
      await waitFor('the confirmation window to pass', async () =>
        Date.parse((await stack.getPayment(order.outTradeNo)).body.expiresAt) < Date.now() ? true : undefined,
      );
      expect((await stack.getPayment(order.outTradeNo)).body.status).toBe('AWAITING_PAYMENT');
      const survivor = await stack.spawnWorkerProcess();
      const closed = await stack.waitForStatus(order.outTradeNo, 'CLOSED', 45_000);
      expect(closed.reason).toBe('the buyer did not confirm in time; cancelled at Alipay');
      expect(await gatewayCalls(order.outTradeNo, 'alipay.trade.pay')).toHaveLength(1);
      expect((await stack.ledger(order.outTradeNo)).cancelAction).toBe('close');
      const events = await stack.events(order.outTradeNo);
      expect(countOf(events, 'closed')).toBe(1);
      expect(countOf(events, 'pay_result')).toBe(1);
      await survivor.stop();
    } finally {
      await stack.startWorker();
    }
  }, 90_000);
});
