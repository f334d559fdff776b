// Refunds at the simulated gateway, through the engine's own alipay-sdk client over loopback HTTP:
// alipay.trade.refund, alipay.trade.fastpay.refund.query, the refund notifies, and the faults
// that matter for them (a lost answer, a seller balance that is not enough).
import type { AlipaySdk } from 'alipay-sdk';
import request from 'supertest';
import { NotifyReceiver, waitUntil } from './support/notify-receiver.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAlipayClient } from '../lib/alipay/client.js';
import { generateRsaKeyPair, type RunningSimulator, startSimulator } from '../simulator/index.js';

const APP_ID = '9021000000000002';
const RETRY_DELAYS_MS = [50, 100, 150, 200];
const BEIJING_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const appKeys = generateRsaKeyPair();
const alipayKeys = generateRsaKeyPair();

let sim: RunningSimulator;
let client: AlipaySdk;
let receiver: NotifyReceiver;

let orderSeq = 0;
const newOrderNo = (): string => `R${Date.now()}_${++orderSeq}`;

const exec = (method: string, bizContent: Record<string, unknown>, extra: Record<string, string> = {}) =>
  client.exec(method, { bizContent, ...extra }, { validateSign: true });

const precreate = (outTradeNo: string, totalAmount = '100.00') =>
  exec('alipay.trade.precreate', { out_trade_no: outTradeNo, total_amount: totalAmount, subject: 'Refund test order' }, { notifyUrl: receiver.url });
const refund = (outTradeNo: string, refundAmount: string, outRequestNo?: string, extra: Record<string, unknown> = {}) =>
  exec('alipay.trade.refund', {
    out_trade_no: outTradeNo,
    refund_amount: refundAmount,
    ...(outRequestNo === undefined ? {} : { out_request_no: outRequestNo }),
    ...extra,
  });
const refundQuery = (outTradeNo: string, outRequestNo: string, extra: Record<string, unknown> = {}) =>
  exec('alipay.trade.fastpay.refund.query', { out_trade_no: outTradeNo, out_request_no: outRequestNo, ...extra });
const query = (outTradeNo: string) => exec('alipay.trade.query', { out_trade_no: outTradeNo });

const control = () => request(sim.url);
const ledger = async (outTradeNo: string) => (await control().get(`/sim/trades/${outTradeNo}`).expect(200)).body;
const armFaults = (outTradeNo: string, faults: object) => control().post(`/sim/trades/${outTradeNo}/faults`).send(faults).expect(200);

/** A paid trade whose payment notify has been answered, so later notifies are the refunds'. */
async function paidTrade(totalAmount = '100.00'): Promise<string> {
  const o = newOrderNo();
  expect(await precreate(o, totalAmount)).toMatchObject({ code: '10000' });
  await control().post(`/sim/trades/${o}/pay`).expect(200);
  await waitUntil(() => ledger(o), (l) => l.notifies.some((n: { kind: string; answer: string | null }) => n.kind === 'payment' && n.answer === 'success'));
  return o;
}

beforeAll(async () => {
  sim = await startSimulator({
    apps: [{ appId: APP_ID, publicKey: appKeys.publicKey }],
    alipayPrivateKey: alipayKeys.privateKey,
    notifyRetryDelaysMs: RETRY_DELAYS_MS,
  });
  client = createAlipayClient({ appId: APP_ID, privateKey: appKeys.privateKey, credentials: { mode: 'key', alipayPublicKey: alipayKeys.publicKey }, gatewayUrl: sim.gatewayUrl });
  receiver = new NotifyReceiver();
  await receiver.start(createAlipayClient({ appId: APP_ID, credentials: { mode: 'key', alipayPublicKey: alipayKeys.publicKey } }));
});

afterEach(async () => {
  await control().delete('/sim/faults').expect(200);
});

afterAll(async () => {
  await sim?.stop();
  await receiver?.stop();
});

describe('alipay.trade.refund', () => {
  it('refunds part, then the rest: fund_change Y, a cumulative refund_fee, TRADE_CLOSED at the end', async () => {
    const o = await paidTrade('100.00');
    const paid = await query(o);

    const first = await refund(o, '30.00', 'RF-1', { refund_reason: 'damaged box' });
    expect(first).toMatchObject({
      code: '10000',
      msg: 'Success',
      fundChange: 'Y',
      refundFee: '30.00',
      // Without query_options refund_detail_item_list Alipay answers send_back_fee as 0.00.
      sendBackFee: '0.00',
      outTradeNo: o,
      tradeNo: paid.tradeNo,
      buyerLogonId: paid.buyerLogonId,
      buyerUserId: paid.buyerUserId,
    });
    expect(first.gmtRefundPay).toMatch(BEIJING_TIME);
    expect(first.refundDetailItemList).toBeUndefined();
    expect(await query(o)).toMatchObject({ tradeStatus: 'TRADE_SUCCESS' });

    const rest = await refund(o, '70.00', 'RF-2', { query_options: ['refund_detail_item_list'] });
    expect(rest).toMatchObject({
      code: '10000',
      fundChange: 'Y',
      refundFee: '100.00',
      sendBackFee: '70.00',
      refundDetailItemList: [{ amount: '70.00', fundChannel: 'ALIPAYACCOUNT' }],
    });
    expect(await query(o)).toMatchObject({ tradeStatus: 'TRADE_CLOSED', buyerPayAmount: '100.00' });

    const view = await ledger(o);
    expect(view).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '100.00' });
    expect(view.refunds).toEqual([
      { outRequestNo: 'RF-1', amount: '30.00', at: expect.any(String), reason: 'damaged box', via: 'refund' },
      { outRequestNo: 'RF-2', amount: '70.00', at: expect.any(String), reason: null, via: 'refund' },
    ]);
    expect(view.closedAt).toBe(view.refunds[1].at);

    // A fully refunded trade takes no new refund.
    expect(await refund(o, '0.01', 'RF-3')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_ALLOW_REFUND' });
    expect((await ledger(o)).refunds).toHaveLength(2);
  });

  it('answers a repeat of a done refund with fund_change N and moves nothing; another amount is a discordant repeat', async () => {
    const o = await paidTrade('88.88');
    expect(await refund(o, '10.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '10.00' });
    const first = (await ledger(o)).refunds[0];

    const repeat = await refund(o, '10.00', 'RF-1');
    expect(repeat).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '10.00' });
    expect((await ledger(o)).refunds).toEqual([first]);

    const discordant = await refund(o, '20.00', 'RF-1');
    // A refused refund still answers refund_fee and send_back_fee, as 0.00: not the trade's refunded sum.
    expect(discordant).toMatchObject({ code: '40004', subCode: 'ACQ.DISCORDANT_REPEAT_REQUEST', refundFee: '0.00', sendBackFee: '0.00' });
    expect((await ledger(o)).refundedAmount).toBe('10.00');

    // The repeat of the refund that closed the trade still answers success, without money moving.
    expect(await refund(o, '78.88', 'RF-2')).toMatchObject({ fundChange: 'Y', refundFee: '88.88' });
    expect(await refund(o, '78.88', 'RF-2')).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '88.88' });
    expect(await refund(o, '10.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '88.88' });
    const view = await ledger(o);
    expect(view.refunds.map((r: { outRequestNo: string }) => r.outRequestNo)).toEqual(['RF-1', 'RF-2']);
    expect(view.refundedAmount).toBe('88.88');
  });

  it('keys a refund without out_request_no by the trade: a second one is its repeat', async () => {
    const o = await paidTrade('50.00');
    expect(await refund(o, '50.00')).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '50.00' });
    expect(await refund(o, '50.00')).toMatchObject({ code: '10000', fundChange: 'N' });
    expect((await ledger(o)).refunds).toMatchObject([{ outRequestNo: o, amount: '50.00' }]);
    expect(await refundQuery(o, o)).toMatchObject({ refundStatus: 'REFUND_SUCCESS', refundAmount: '50.00' });
  });

  it('refuses an over-refund without effect', async () => {
    const o = await paidTrade('88.88');
    expect(await refund(o, '50.00', 'RF-1')).toMatchObject({ fundChange: 'Y' });
    expect(await refund(o, '38.89', 'RF-2')).toMatchObject({ code: '40004', subCode: 'ACQ.REASON_TRADE_REFUND_FEE_ERR' });
    expect(await refund(o, '88.89', 'RF-3')).toMatchObject({ code: '40004', subCode: 'ACQ.REASON_TRADE_REFUND_FEE_ERR' });
    expect(await ledger(o)).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: '50.00' });
    // A refused request number is not spent: the right amount under it goes through.
    expect(await refund(o, '38.88', 'RF-2')).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '88.88' });
  });

  it('refuses unpaid, closed, unknown and finished trades, and bad parameters', async () => {
    const unscanned = newOrderNo();
    await precreate(unscanned);
    expect(await refund(unscanned, '1.00', 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });

    const waiting = newOrderNo();
    await precreate(waiting);
    await control().post(`/sim/trades/${waiting}/scan`).expect(200);
    expect(await refund(waiting, '1.00', 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect(await exec('alipay.trade.close', { out_trade_no: waiting })).toMatchObject({ code: '10000' });
    expect(await refund(waiting, '1.00', 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect((await ledger(waiting)).refunds).toEqual([]);

    expect(await refund(newOrderNo(), '1.00', 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });

    const finished = await paidTrade();
    expect(await refund(finished, '1.00', 'RF-1')).toMatchObject({ fundChange: 'Y' });
    await control().post(`/sim/trades/${finished}/finish`).expect(200);
    expect(await refund(finished, '1.00', 'RF-2')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_HAS_FINISHED' });
    expect(await refund(finished, '1.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'N' });
    expect((await control().post(`/sim/trades/${waiting}/finish`).expect(409)).body.error).toBe('TRADE_CLOSED');

    const paid = await paidTrade();
    for (const bad of [{ refund_amount: '0' }, { refund_amount: '1.234' }, { refund_amount: '-1.00' }, { out_request_no: 'x'.repeat(65) }]) {
      expect(await exec('alipay.trade.refund', { out_trade_no: paid, refund_amount: '1.00', out_request_no: 'RF-1', ...bad })).toMatchObject({
        code: '40004',
        subCode: 'ACQ.INVALID_PARAMETER',
      });
    }
    expect(await exec('alipay.trade.refund', { refund_amount: '1.00' })).toMatchObject({ subCode: 'ACQ.INVALID_PARAMETER' });
    expect((await ledger(paid)).refunds).toEqual([]);
  });
});

describe('alipay.trade.fastpay.refund.query', () => {
  it('answers REFUND_SUCCESS for a done refund, and a bare 10000 for an unknown one', async () => {
    const o = await paidTrade('100.00');
    const done = await refund(o, '12.34', 'RF-1', { refund_reason: 'size' });
    const { tradeNo } = await query(o);

    const found = await refundQuery(o, 'RF-1');
    expect(found).toMatchObject({
      code: '10000',
      refundStatus: 'REFUND_SUCCESS',
      refundAmount: '12.34',
      totalAmount: '100.00',
      outRequestNo: 'RF-1',
      outTradeNo: o,
      tradeNo,
      refundReason: 'size',
    });
    // gmt_refund_pay and the fund details only come when query_options asks for them.
    expect(found.gmtRefundPay).toBeUndefined();
    expect(found.sendBackFee).toBeUndefined();
    const detailed = await refundQuery(o, 'RF-1', { query_options: ['gmt_refund_pay', 'refund_detail_item_list'] });
    expect(detailed).toMatchObject({
      refundStatus: 'REFUND_SUCCESS',
      gmtRefundPay: done.gmtRefundPay,
      sendBackFee: '12.34',
      refundDetailItemList: [{ amount: '12.34', fundChannel: 'ALIPAYACCOUNT' }],
    });
    expect(await exec('alipay.trade.fastpay.refund.query', { trade_no: tradeNo, out_request_no: 'RF-1' })).toMatchObject({
      refundStatus: 'REFUND_SUCCESS',
    });

    // Unknown: success, but no refund_status and no refund fields at all.
    const unknown = await refundQuery(o, 'RF-9');
    expect(Object.keys(unknown).sort()).toEqual(['code', 'msg']);
    expect(unknown).toEqual({ code: '10000', msg: 'Success' });

    expect(await refundQuery(newOrderNo(), 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });
    expect(await exec('alipay.trade.fastpay.refund.query', { out_trade_no: o })).toMatchObject({ subCode: 'ACQ.INVALID_PARAMETER' });
  });
});

describe('refund faults', () => {
  it('loses the answer of a refund that took effect: applied once, the call throws, a query shows it done', async () => {
    const o = await paidTrade('100.00');
    // Two: alipay-sdk's HTTP client (urllib) resends a POST once on a socket error.
    await armFaults(o, { loseAnswers: { count: 2, methods: ['alipay.trade.refund'] } });

    await expect(refund(o, '25.00', 'RF-1')).rejects.toThrow(/HttpClient Request error/);
    const view = await ledger(o);
    expect(view.refunds).toMatchObject([{ outRequestNo: 'RF-1', amount: '25.00' }]);
    const refundCalls = view.calls.filter((c: { method: string }) => c.method === 'alipay.trade.refund');
    expect(refundCalls).toMatchObject([
      { httpStatus: null, answerLost: true, code: '10000' },
      { httpStatus: null, answerLost: true, code: '10000' },
    ]);

    // The engine's way out: ask, never refund blindly again.
    expect(await refundQuery(o, 'RF-1')).toMatchObject({ refundStatus: 'REFUND_SUCCESS', refundAmount: '25.00' });
    // The budget is spent: a retry with the same number is answered, and moves nothing.
    expect(await refund(o, '25.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '25.00' });
    expect(await ledger(o)).toMatchObject({ refundedAmount: '25.00', refunds: [{ outRequestNo: 'RF-1' }] });
    // The refund happened, so its notify went out, once.
    await waitUntil(() => receiver.refundNotifies(o), (n) => n.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.refundNotifies(o)).toHaveLength(1);
  });

  it('one lost answer is hidden by the SDK client resending: the one call answers fund_change N though it moved the money', async () => {
    const o = await paidTrade('100.00');
    await armFaults(o, { loseAnswers: { count: 1, methods: ['alipay.trade.refund'] } });
    expect(await refund(o, '25.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'N', refundFee: '25.00' });
    const view = await ledger(o);
    expect(view.calls.filter((c: { method: string }) => c.method === 'alipay.trade.refund')).toMatchObject([
      { httpStatus: null, answerLost: true },
      { httpStatus: 200, code: '10000' },
    ]);
    expect(view).toMatchObject({ refundedAmount: '25.00', refunds: [{ outRequestNo: 'RF-1' }] });
  });

  it('loses only the matching methods, and the global switch works too', async () => {
    const o = await paidTrade('100.00');
    await control().post('/sim/faults').send({ loseAnswers: { count: 2, methods: ['alipay.trade.fastpay.refund.query'] } }).expect(200);
    expect(await refund(o, '1.00', 'RF-1')).toMatchObject({ fundChange: 'Y' });
    await expect(refundQuery(o, 'RF-1')).rejects.toThrow(/HttpClient Request error/);
    expect(await refundQuery(o, 'RF-1')).toMatchObject({ refundStatus: 'REFUND_SUCCESS' });
    expect((await control().get('/sim/faults').expect(200)).body.loseAnswers).toEqual({ count: 0, methods: ['alipay.trade.fastpay.refund.query'] });
    await control().post('/sim/faults').send({ loseAnswers: { count: 1, kind: 'x' } }).expect(400);
    await control().post('/sim/faults').send({ loseAnswers: { count: -1 } }).expect(400);
  });

  it('refuses a refund when the seller balance is not enough, without effect', async () => {
    const o = await paidTrade('100.00');
    await armFaults(o, { refusals: { count: 1, methods: ['alipay.trade.refund'], subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH' } });

    expect(await refund(o, '40.00', 'RF-1')).toMatchObject({
      code: '40004',
      msg: 'Business Failed',
      subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH',
      refundFee: '0.00',
    });
    expect(await ledger(o)).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: '0.00', refunds: [] });
    expect(await refundQuery(o, 'RF-1')).toEqual({ code: '10000', msg: 'Success' });

    // Once the balance is topped up, the same request goes through, once.
    expect(await refund(o, '40.00', 'RF-1')).toMatchObject({ code: '10000', fundChange: 'Y', refundFee: '40.00' });
    await waitUntil(() => receiver.refundNotifies(o), (n) => n.length === 1);
  });
});

describe('refund notifies', () => {
  it('sends TRADE_SUCCESS after a partial refund and TRADE_CLOSED after the full one, signed, with the refund fields', async () => {
    const o = await paidTrade('100.00');
    const { tradeNo } = await query(o);
    // The first refund's notify is refused twice: its retries must keep their own content.
    receiver.script(o, ['failure', 'failure'], 'RF-1');

    await refund(o, '30.00', 'RF-1');
    await refund(o, '70.00', 'RF-2');
    const received = await waitUntil(
      () => receiver.refundNotifies(o),
      (n) => n.filter((x) => x.body.out_biz_no === 'RF-1').length === 3 && n.some((x) => x.body.out_biz_no === 'RF-2'),
    );
    expect(received.every((n) => n.verified)).toBe(true);

    const partial = received.filter((n) => n.body.out_biz_no === 'RF-1');
    expect(new Set(partial.map((n) => n.body.notify_id)).size).toBe(1);
    for (const { body } of partial) {
      expect(body).toMatchObject({
        notify_type: 'trade_status_sync',
        app_id: APP_ID,
        out_trade_no: o,
        trade_no: tradeNo,
        trade_status: 'TRADE_SUCCESS',
        total_amount: '100.00',
        refund_fee: '30.00',
        out_biz_no: 'RF-1',
        sign_type: 'RSA2',
      });
      expect(body.gmt_refund).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/);
      expect(body.gmt_payment).toMatch(BEIJING_TIME);
      // Production refund notifies carry none of these.
      for (const absent of ['gmt_close', 'send_back_fee', 'fund_bill_list', 'receipt_amount', 'buyer_pay_amount']) {
        expect(body[absent]).toBeUndefined();
      }
    }

    const full = received.filter((n) => n.body.out_biz_no === 'RF-2');
    expect(full).toHaveLength(1);
    expect(full[0]!.body).toMatchObject({ trade_status: 'TRADE_CLOSED', refund_fee: '100.00', out_biz_no: 'RF-2', total_amount: '100.00' });
    expect(full[0]!.body.gmt_close).toMatch(BEIJING_TIME);
    expect(full[0]!.body.gmt_refund!.slice(0, 19)).toBe(full[0]!.body.gmt_close);

    const view = await waitUntil(() => ledger(o), (l) => l.notifies.filter((n: { answer: string | null }) => n.answer === 'success').length === 3);
    expect(view.notifies.filter((n: { kind: string }) => n.kind === 'refund').map((n: { outBizNo: string; attempt: number; answer: string }) => [n.outBizNo, n.attempt, n.answer])).toEqual(
      expect.arrayContaining([
        ['RF-1', 1, 'failure'],
        ['RF-1', 2, 'failure'],
        ['RF-1', 3, 'success'],
        ['RF-2', 1, 'success'],
      ]),
    );

    // A repeat moves no money and sends no notify.
    expect(await refund(o, '70.00', 'RF-2')).toMatchObject({ fundChange: 'N' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.refundNotifies(o)).toHaveLength(4);
  });

  it('retries a payment notify with its own content after the trade was refunded meanwhile', async () => {
    const o = newOrderNo();
    await precreate(o, '10.00');
    receiver.script(o, ['failure', 'failure']);
    await control().post(`/sim/trades/${o}/pay`).expect(200);
    expect(await refund(o, '10.00', 'RF-1')).toMatchObject({ fundChange: 'Y' });
    const payments = await waitUntil(
      () => receiver.received.filter((n) => n.body.out_trade_no === o && n.body.out_biz_no === undefined),
      (n) => n.length === 3,
    );
    for (const { body, verified } of payments) {
      expect(verified).toBe(true);
      expect(body).toMatchObject({ trade_status: 'TRADE_SUCCESS', buyer_pay_amount: '10.00' });
      expect(body.refund_fee).toBeUndefined();
    }
    expect(new Set(payments.map((n) => n.body.notify_id)).size).toBe(1);
  });

  it('reorders on demand: the payment notify is held until the full refund\'s TRADE_CLOSED has been sent', async () => {
    const o = newOrderNo();
    await precreate(o, '10.00');
    await armFaults(o, { reorderNotifies: { maxHoldMs: 60_000 } });
    await control().post(`/sim/trades/${o}/pay`).expect(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.for(o)).toHaveLength(0); // held, for up to a minute
    expect(await refund(o, '10.00', 'RF-1')).toMatchObject({ fundChange: 'Y' });
    const arrived = await waitUntil(
      () => receiver.for(o),
      (n) => n.length === 2,
    );
    expect(arrived.map((n) => [n.body.trade_status, n.body.out_biz_no ?? null, n.verified])).toEqual([
      ['TRADE_CLOSED', 'RF-1', true],
      ['TRADE_SUCCESS', null, true],
    ]);
  });

  it('sends a held payment notify after maxHoldMs when no refund comes', async () => {
    const o = newOrderNo();
    await precreate(o, '10.00');
    await armFaults(o, { reorderNotifies: { maxHoldMs: 300 } });
    await control().post(`/sim/trades/${o}/pay`).expect(200);
    const [payment] = await waitUntil(
      () => receiver.for(o),
      (n) => n.length === 1,
    );
    expect(payment!.body).toMatchObject({ trade_status: 'TRADE_SUCCESS', total_amount: '10.00' });
  });

  it('drops refund notifies like any other when dropNotifies is on', async () => {
    const o = await paidTrade('10.00');
    await armFaults(o, { dropNotifies: true });
    await refund(o, '1.00', 'RF-1');
    const view = await waitUntil(() => ledger(o), (l) => l.notifies.filter((n: { kind: string }) => n.kind === 'refund').length === RETRY_DELAYS_MS.length + 1);
    expect(view.notifies.filter((n: { kind: string }) => n.kind === 'refund').every((n: { dropped?: boolean }) => n.dropped)).toBe(true);
    expect(receiver.refundNotifies(o)).toHaveLength(0);
  });
});

describe('alipay.trade.cancel of a paid trade', () => {
  it('is a full refund: a refund record, queryable, notified, and the trade takes no further refund', async () => {
    const o = await paidTrade('66.60');
    const cancelled = await exec('alipay.trade.cancel', { out_trade_no: o });
    expect(cancelled).toMatchObject({ code: '10000', action: 'refund', retryFlag: 'N' });

    const view = await ledger(o);
    expect(view).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '66.60', cancelAction: 'refund' });
    expect(view.refunds).toMatchObject([{ outRequestNo: o, amount: '66.60', via: 'cancel', reason: null }]);
    expect(await refundQuery(o, o, { query_options: ['gmt_refund_pay'] })).toMatchObject({
      refundStatus: 'REFUND_SUCCESS',
      refundAmount: '66.60',
      gmtRefundPay: cancelled.gmtRefundPay,
    });
    expect(await refund(o, '1.00', 'RF-1')).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_ALLOW_REFUND' });

    const [notify] = await waitUntil(() => receiver.refundNotifies(o), (n) => n.length === 1);
    expect(notify!.verified).toBe(true);
    expect(notify!.body).toMatchObject({ trade_status: 'TRADE_CLOSED', refund_fee: '66.60', out_biz_no: o });

    // A repeated cancel changes nothing.
    expect(await exec('alipay.trade.cancel', { out_trade_no: o })).toMatchObject({ code: '10000', action: 'refund' });
    expect((await ledger(o)).refunds).toHaveLength(1);
  });

  it('is refused once the trade has been refunded in part', async () => {
    const o = await paidTrade('20.00');
    await refund(o, '5.00', 'RF-1');
    expect(await exec('alipay.trade.cancel', { out_trade_no: o })).toMatchObject({ code: '40004', subCode: 'ACQ.REASON_TRADE_REFUND_FEE_ERR' });
    expect(await ledger(o)).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: '5.00', cancelAction: null });
  });
});
