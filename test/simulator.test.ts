import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipaySdk } from 'alipay-sdk';
import express from 'express';
import request from 'supertest';
import { NotifyReceiver, waitUntil } from './support/notify-receiver.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateRsaKeyPair, type RunningSimulator, startSimulator } from '../simulator/index.js';
import { formatBeijing } from '../simulator/time.js';

const APP_ID = '9021000000000001';
const RETRY_DELAYS_MS = [50, 100, 150, 200];
const appKeys = generateRsaKeyPair();
const alipayKeys = generateRsaKeyPair();

let sim: RunningSimulator;
let sdk: AlipaySdk;
let receiver: NotifyReceiver;
const servers: Server[] = [];

function newSdk(gateway: string, privateKey = appKeys.privateKey, appId = APP_ID): AlipaySdk {
  return new AlipaySdk({ appId, privateKey, alipayPublicKey: alipayKeys.publicKey, gateway, keyType: 'PKCS8', signType: 'RSA2' });
}

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let orderSeq = 0;
const newOrderNo = (): string => `T${Date.now()}_${++orderSeq}`;

const exec = (method: string, bizContent: Record<string, unknown>, client = sdk, extra: Record<string, string> = {}) =>
  client.exec(method, { bizContent, ...extra }, { validateSign: true });

const precreate = (outTradeNo: string, biz: Record<string, unknown> = {}) =>
  exec(
    'alipay.trade.precreate',
    { out_trade_no: outTradeNo, total_amount: '88.88', subject: 'Durapay test order', ...biz },
    sdk,
    { notifyUrl: receiver.url },
  );
const query = (outTradeNo: string, client = sdk) => exec('alipay.trade.query', { out_trade_no: outTradeNo }, client);
const close = (outTradeNo: string) => exec('alipay.trade.close', { out_trade_no: outTradeNo });
const cancel = (outTradeNo: string) => exec('alipay.trade.cancel', { out_trade_no: outTradeNo });

const control = () => request(sim.url);
const scan = (outTradeNo: string) => control().post(`/sim/trades/${outTradeNo}/scan`);
const pay = (outTradeNo: string) => control().post(`/sim/trades/${outTradeNo}/pay`);
const ledger = async (outTradeNo: string) => (await control().get(`/sim/trades/${outTradeNo}`).expect(200)).body;

beforeAll(async () => {
  sim = await startSimulator({
    apps: [{ appId: APP_ID, publicKey: appKeys.publicKey }],
    alipayPrivateKey: alipayKeys.privateKey,
    notifyRetryDelaysMs: RETRY_DELAYS_MS,
  });
  sdk = newSdk(sim.gatewayUrl);
  receiver = new NotifyReceiver();
  await receiver.start(sdk);
});

afterEach(async () => {
  await control().delete('/sim/faults').expect(200);
});

afterAll(async () => {
  await sim?.stop();
  await receiver?.stop();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('alipay gateway simulator', () => {
  it('runs precreate → scan → pay with validly signed answers and a verified notify', async () => {
    const o = newOrderNo();
    const created = await precreate(o);
    expect(created).toMatchObject({ code: '10000', msg: 'Success', outTradeNo: o });
    expect(created.qrCode).toMatch(new RegExp(`^${sim.url}/qr/`));

    expect(await query(o)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST', subMsg: '交易不存在' });

    await scan(o).expect(200);
    const waiting = await query(o);
    expect(waiting).toMatchObject({ code: '10000', tradeStatus: 'WAIT_BUYER_PAY', totalAmount: '88.88', buyerPayAmount: '0.00' });
    expect(waiting.tradeNo).toMatch(/^\d{8}22001\d{15}$/);
    expect(waiting.buyerLogonId).toMatch(/^\d{3}\*{4}\d{4}$/);

    const paid = (await pay(o).expect(200)).body;
    expect(paid).toMatchObject({ status: 'TRADE_SUCCESS', tradeNo: waiting.tradeNo });
    const success = await query(o);
    expect(success).toMatchObject({
      code: '10000',
      tradeStatus: 'TRADE_SUCCESS',
      tradeNo: waiting.tradeNo,
      totalAmount: '88.88',
      buyerPayAmount: '88.88',
      receiptAmount: '88.88',
      buyerUserId: waiting.buyerUserId,
    });
    expect(success.sendPayDate).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(await exec('alipay.trade.query', { trade_no: waiting.tradeNo })).toMatchObject({ outTradeNo: o });

    const [notify] = await waitUntil(() => receiver.for(o), (n) => n.length === 1);
    expect(notify!.verified).toBe(true);
    expect(notify!.body).toMatchObject({
      notify_type: 'trade_status_sync',
      app_id: APP_ID,
      trade_no: waiting.tradeNo,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '88.88',
      sign_type: 'RSA2',
      charset: 'utf-8',
    });
    expect(JSON.parse(notify!.body.fund_bill_list!)).toEqual([{ amount: '88.88', fundChannel: 'ALIPAYACCOUNT' }]);
    const view = await waitUntil(() => ledger(o), (l) => l.notifies[0]?.answer === 'success');
    expect(view.calls.map((c: { method: string }) => c.method)).toEqual([
      'alipay.trade.precreate',
      'alipay.trade.query',
      'alipay.trade.query',
      'alipay.trade.query',
      'alipay.trade.query',
    ]);
  });

  it('keeps precreate idempotent and rejects conflicting or invalid orders', async () => {
    const o = newOrderNo();
    const first = await precreate(o);
    expect((await precreate(o)).qrCode).toBe(first.qrCode);
    expect(await precreate(o, { total_amount: '1.00' })).toMatchObject({ code: '40004', subCode: 'ACQ.CONTEXT_INCONSISTENT' });
    await pay(o).expect(200);
    expect(await precreate(o)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_HAS_SUCCESS' });

    for (const bad of [{ total_amount: '1.234' }, { total_amount: '0' }, { subject: '' }, { time_expire: '2020-01-01 00:00:00' }]) {
      expect(await precreate(newOrderNo(), bad)).toMatchObject({ code: '40004', subCode: 'ACQ.INVALID_PARAMETER' });
    }
    // out_trade_no: letters, digits and underscores, at most 64, as Alipay documents.
    expect(await precreate('order_with_underscores')).toMatchObject({ code: '10000' });
    expect(await precreate('order-with-dashes')).toMatchObject({ subCode: 'ACQ.INVALID_PARAMETER' });
    expect(await precreate('order.with.dots')).toMatchObject({ subCode: 'ACQ.INVALID_PARAMETER' });
    expect(await precreate('x'.repeat(65))).toMatchObject({ subCode: 'ACQ.INVALID_PARAMETER' });
  });

  it('closes only WAIT_BUYER_PAY trades; a close before the scan does not void the order', async () => {
    const unscanned = newOrderNo();
    await precreate(unscanned);
    expect(await close(unscanned)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_NOT_EXIST' });
    await scan(unscanned).expect(200);

    const scanned = newOrderNo();
    await precreate(scanned);
    await scan(scanned).expect(200);
    const closed = await close(scanned);
    expect(closed).toMatchObject({ code: '10000', outTradeNo: scanned });
    expect(closed.tradeNo).toMatch(/^\d+$/);
    expect(await query(scanned)).toMatchObject({ tradeStatus: 'TRADE_CLOSED' });
    expect(await close(scanned)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect((await pay(scanned).expect(409)).body).toMatchObject({ error: 'TRADE_CLOSED' });
    expect(await precreate(scanned)).toMatchObject({ subCode: 'ACQ.TRADE_HAS_CLOSE' });

    const paid = newOrderNo();
    await precreate(paid);
    await pay(paid).expect(200);
    expect(await close(paid)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect(await query(paid)).toMatchObject({ tradeStatus: 'TRADE_SUCCESS' });
  });

  it('cancels: voids unscanned and unpaid orders, refunds paid ones', async () => {
    const unscanned = newOrderNo();
    await precreate(unscanned);
    const voided = await cancel(unscanned);
    expect(voided).toMatchObject({ code: '10000', action: 'close', retryFlag: 'N', outTradeNo: unscanned });
    expect(voided.tradeNo).toBeUndefined();
    expect((await scan(unscanned).expect(409)).body.error).toBe('TRADE_CLOSED');
    expect(await query(unscanned)).toMatchObject({ subCode: 'ACQ.TRADE_NOT_EXIST' });

    const waiting = newOrderNo();
    await precreate(waiting);
    await scan(waiting).expect(200);
    expect(await cancel(waiting)).toMatchObject({ code: '10000', action: 'close', retryFlag: 'N' });
    expect(await query(waiting)).toMatchObject({ tradeStatus: 'TRADE_CLOSED' });

    const paid = newOrderNo();
    await precreate(paid);
    await pay(paid).expect(200);
    const refunded = await cancel(paid);
    expect(refunded).toMatchObject({ code: '10000', action: 'refund', retryFlag: 'N' });
    expect(refunded.gmtRefundPay).toBeDefined();
    expect(await cancel(paid)).toMatchObject({ code: '10000', action: 'refund' });
    expect(await query(paid)).toMatchObject({ tradeStatus: 'TRADE_CLOSED', buyerPayAmount: '88.88' });
    expect(await ledger(paid)).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: '88.88', cancelAction: 'refund' });
  });

  it('rejects requests signed with the wrong key, unknown apps and unknown methods (signed answers)', async () => {
    const forged = newSdk(sim.gatewayUrl, generateRsaKeyPair().privateKey);
    expect(await query(newOrderNo(), forged)).toMatchObject({
      code: '40002',
      msg: 'Invalid Arguments',
      subCode: 'isv.invalid-signature',
    });
    const stranger = newSdk(sim.gatewayUrl, appKeys.privateKey, '2021999999999999');
    expect(await query(newOrderNo(), stranger)).toMatchObject({ code: '40002', subCode: 'isv.invalid-app-id' });
    expect(await exec('alipay.trade.teleport', { out_trade_no: 'x' })).toMatchObject({
      code: '40002',
      subCode: 'isv.invalid-method',
    });

    const unsigned = await control()
      .post('/gateway.do')
      .query({ app_id: APP_ID, method: 'alipay.trade.query', charset: 'utf-8', sign_type: 'RSA2', version: '1.0' })
      .type('form')
      .send({ biz_content: '{"out_trade_no":"x"}' })
      .expect(200);
    expect(JSON.parse(unsigned.text).alipay_trade_query_response.sub_code).toBe('isv.missing-signature');
  });

  it('answers that are tampered with in transit fail the SDK verification', async () => {
    const o = newOrderNo();
    await precreate(o);
    await scan(o).expect(200);
    const proxy = async (tamper: (body: string) => string) => {
      const server = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const upstream = await fetch(`${sim.url}${req.url}`, {
          method: 'POST',
          headers: { 'content-type': req.headers['content-type'] ?? '' },
          body: Buffer.concat(chunks),
        });
        res.writeHead(upstream.status, { 'content-type': 'text/html;charset=utf-8' }).end(tamper(await upstream.text()));
      });
      return newSdk(`${await listen(server)}/gateway.do`);
    };

    expect(await query(o, await proxy((body) => body))).toMatchObject({ tradeStatus: 'WAIT_BUYER_PAY' });
    const tampering = await proxy((body) => body.replace('WAIT_BUYER_PAY', 'TRADE_SUCCESS'));
    await expect(query(o, tampering)).rejects.toThrow(/验签失败/);
    // Without verification the forged status would have been believed.
    expect(await tampering.exec('alipay.trade.query', { bizContent: { out_trade_no: o } })).toMatchObject({
      tradeStatus: 'TRADE_SUCCESS',
    });
  });

  it('fails the next N matching calls with system errors, without effect, then recovers', async () => {
    const o = newOrderNo();
    await precreate(o);
    await scan(o).expect(200);

    await control().post(`/sim/trades/${o}/faults`).send({ systemErrors: { count: 1, kind: '20000', methods: ['alipay.trade.query'] } }).expect(200);
    expect(await query(o)).toMatchObject({ code: '20000', msg: 'Service Currently Unavailable', subCode: 'isp.unknow-error' });
    await control().post('/sim/faults').send({ systemErrors: { count: 1, kind: 'http500' } }).expect(200);
    await expect(query(o)).rejects.toThrow(/status: 500/);
    await control().post('/sim/faults').send({ systemErrors: { count: 1, methods: ['alipay.trade.close'] } }).expect(200);
    expect(await close(o)).toMatchObject({ code: '40004', subCode: 'ACQ.SYSTEM_ERROR' });
    expect(await query(o)).toMatchObject({ code: '10000', tradeStatus: 'WAIT_BUYER_PAY' });

    const calls = (await ledger(o)).calls.slice(-4);
    expect(calls.map((c: { code: string | null; httpStatus: number }) => [c.httpStatus, c.code])).toEqual([
      [200, '20000'],
      [500, null],
      [200, '40004'],
      [200, '10000'],
    ]);
  });

  it('delays gateway answers', async () => {
    const o = newOrderNo();
    await precreate(o);
    await control().post(`/sim/trades/${o}/faults`).send({ delayMs: 300 }).expect(200);
    const started = Date.now();
    expect(await query(o)).toMatchObject({ subCode: 'ACQ.TRADE_NOT_EXIST' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('honours time_expire (Beijing time) and timeout_express', async () => {
    const scanned = newOrderNo();
    const unscanned = newOrderNo();
    const timeExpire = formatBeijing(Date.now() + 2_000);
    await precreate(scanned, { time_expire: timeExpire });
    await precreate(unscanned, { time_expire: timeExpire });
    await scan(scanned).expect(200);
    expect(new Date((await ledger(scanned)).expiresAt).getTime()).toBe(Date.parse(`${timeExpire.replace(' ', 'T')}+08:00`));

    await waitUntil(() => query(scanned), (r) => r.tradeStatus === 'TRADE_CLOSED', 6_000);
    expect((await pay(scanned).expect(409)).body.error).toBe('TRADE_CLOSED');
    expect((await scan(unscanned).expect(409)).body.error).toBe('TRADE_EXPIRED');
    expect(await query(unscanned)).toMatchObject({ subCode: 'ACQ.TRADE_NOT_EXIST' });
    expect(await precreate(unscanned, { time_expire: timeExpire })).toMatchObject({ subCode: 'ACQ.TRADE_HAS_CLOSE' });

    const relative = newOrderNo();
    const before = Date.now();
    await precreate(relative, { timeout_express: '90m' });
    const expiresAt = new Date((await ledger(relative)).expiresAt).getTime();
    expect(expiresAt - before).toBeGreaterThanOrEqual(90 * 60_000);
    expect(expiresAt - before).toBeLessThan(90 * 60_000 + 5_000);
  });

  it('retries the notify until the merchant answers success', async () => {
    const o = newOrderNo();
    await precreate(o);
    receiver.script(o, ['failure', 'failure']);
    await pay(o).expect(200);
    const view = await waitUntil(() => ledger(o), (l) => l.notifies.at(-1)?.answer === 'success');
    expect(view.notifies.map((n: { attempt: number; answer: string }) => [n.attempt, n.answer])).toEqual([
      [1, 'failure'],
      [2, 'failure'],
      [3, 'success'],
    ]);
    const received = receiver.for(o);
    expect(received).toHaveLength(3);
    expect(received.every((n) => n.verified)).toBe(true);
    expect(new Set(received.map((n) => n.body.notify_id)).size).toBe(1);
  });

  it('drops notifies through the whole retry ladder, then gives up', async () => {
    const o = newOrderNo();
    await precreate(o);
    await control().post(`/sim/trades/${o}/faults`).send({ dropNotifies: true }).expect(200);
    await pay(o).expect(200);
    const view = await waitUntil(() => ledger(o), (l) => l.notifies.length === RETRY_DELAYS_MS.length + 1);
    expect(view.notifies.every((n: { dropped?: boolean }) => n.dropped)).toBe(true);
    expect(view.notifies.map((n: { attempt: number }) => n.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(receiver.for(o)).toHaveLength(0);
  });

  it('duplicates each notify attempt', async () => {
    const o = newOrderNo();
    await precreate(o);
    await control().post(`/sim/trades/${o}/faults`).send({ duplicateNotifies: 3 }).expect(200);
    await pay(o).expect(200);
    const view = await waitUntil(() => ledger(o), (l) => l.notifies.length === 3 && l.notifies.every((n: { answer: string | null }) => n.answer));
    expect(view.notifies.map((n: { attempt: number }) => n.attempt)).toEqual([1, 1, 1]);
    const received = receiver.for(o);
    expect(received).toHaveLength(3);
    expect(received.every((n) => n.verified)).toBe(true);
    expect(new Set(received.map((n) => n.body.notify_id)).size).toBe(1);
  });

  it('sends notify variants that pass or fail verification as designed', async () => {
    const o = newOrderNo();
    await precreate(o);
    await pay(o).expect(200);
    await waitUntil(() => receiver.for(o), (n) => n.length === 1);
    const sendNotify = async (body: object) => (await control().post(`/sim/trades/${o}/notify`).send(body).expect(200)).body;

    expect(await sendNotify({ variant: 'valid' })).toEqual({ httpStatus: 200, answer: 'success' });
    expect(await sendNotify({ variant: 'wrong-key' })).toEqual({ httpStatus: 200, answer: 'failure' });
    expect(await sendNotify({ variant: 'tampered-amount' })).toEqual({ httpStatus: 200, answer: 'failure' });
    expect(await sendNotify({ variant: 'valid', overrides: { total_amount: '0.01' } })).toEqual({ httpStatus: 200, answer: 'success' });

    const received = receiver.for(o).slice(1);
    expect(received.map((n) => n.verified)).toEqual([true, false, false, true]);
    expect(received.map((n) => n.body.total_amount)).toEqual(['88.88', '88.88', '89.88', '0.01']);
    const manual = (await ledger(o)).notifies.filter((n: { manual?: boolean }) => n.manual);
    expect(manual.map((n: { variant: string }) => n.variant)).toEqual(['valid', 'wrong-key', 'tampered-amount', 'valid']);
  });

  it('lets the buyer pay just before a close lands (payOnClose)', async () => {
    const o = newOrderNo();
    await precreate(o);
    await control().post(`/sim/trades/${o}/faults`).send({ payOnClose: true }).expect(200);
    expect(await close(o)).toMatchObject({ code: '40004', subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect(await query(o)).toMatchObject({ tradeStatus: 'TRADE_SUCCESS' });
    const [notify] = await waitUntil(() => receiver.for(o), (n) => n.length === 1);
    expect(notify!.body.trade_status).toBe('TRADE_SUCCESS');
  });

  it('serves the control API, the buyer page and its errors', async () => {
    await control().get('/sim/health').expect(200);
    await control().get('/sim/trades/NOPE').expect(404);
    await scan('NOPE').expect(404);
    const o = newOrderNo();
    const { qrCode } = await precreate(o);
    const page = await request(qrCode).get('').expect(200);
    expect(page.text).toContain('Pay');
    const list = (await control().get('/sim/trades').expect(200)).body as { outTradeNo: string; status: string }[];
    expect(list.find((t) => t.outTradeNo === o)?.status).toBe('NOT_SCANNED');
    await control().post('/sim/faults').send({ notAFault: true }).expect(400);
    await control().post(`/sim/trades/${o}/notify`).send({}).expect(409);
  });

  it('lets a buyer who holds only the QR code scan and pay it', async () => {
    const o = newOrderNo();
    const { qrCode } = await precreate(o);
    expect((await request(`${qrCode}/scan`).post('').expect(200)).body).toMatchObject({ outTradeNo: o, status: 'WAIT_BUYER_PAY' });
    expect((await request(`${qrCode}/pay`).post('').expect(200)).body).toMatchObject({ outTradeNo: o, status: 'TRADE_SUCCESS' });
    expect(await query(o)).toMatchObject({ tradeStatus: 'TRADE_SUCCESS', totalAmount: '88.88' });
    await request(`${sim.url}/qr/no-such-token/pay`).post('').expect(404);
  });
});
