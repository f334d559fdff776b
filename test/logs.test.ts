// Logs about an order, from an API and a worker in processes of their own at LOG_LEVEL=debug: every
// line that mentions an order carries its number (outTradeNo) and its payment workflow's id, and no
// secret appears in any line.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../lib/platform/free-port.js';
import { signRequest } from '../lib/merchants/signing.js';
import { newAuthCode } from './support/payment-codes.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  // Only the worker process below takes this stack's tasks, so every worker line is in its output.
  await stack.stopWorker();
});
afterAll(async () => {
  await stack?.stop();
});

interface Line {
  from: 'api' | 'worker';
  text: string;
}

/** The parts of a secret that must never show: the whole, and for a PEM key each line of its body. */
function secretPieces(name: string, secret: string): [string, string][] {
  const body = secret.split('\n').filter((line) => line.length >= 32 && !line.startsWith('-----'));
  return [[name, secret], ...body.map((line, i): [string, string] => [`${name} (line ${i + 1})`, line])];
}

describe('logs about an order', () => {
  it('carry its number and workflow id on every line that mentions it, and no secret', async () => {
    const lines: Line[] = [];
    const worker = await stack.spawnWorkerProcess({ LOG_LEVEL: 'debug' }, (text) => lines.push({ from: 'worker', text }));
    // Alipay's notifies for orders created through this API come to it, and are logged by it.
    const port = await findFreePort();
    const api = await stack.spawnApiProcess(
      { PORT: String(port), ALIPAY_NOTIFY_URL: `http://127.0.0.1:${port}/alipay/notify`, LOG_LEVEL: 'debug' },
      (text) => lines.push({ from: 'api', text }),
    );
    const forgedSign = randomBytes(256).toString('base64');
    const authCode = newAuthCode();
    // A '-' in the number makes Alipay's out_trade_no differ from it: both forms are looked for.
    const qrOrder = stack.newOrderNo('logs-qr');
    const barcodeOrder = stack.newOrderNo('logs-barcode');
    try {
      expect((await api.client.createPayment({ outTradeNo: qrOrder, amount: '3.20', subject: 'logs' })).status).toBe(201);
      // A notify with a made-up signature for the very order: rejected, and logged.
      const forged = await fetch(`${api.url}/alipay/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          app_id: stack.appId,
          out_trade_no: stack.alipayNo(qrOrder),
          trade_status: 'TRADE_SUCCESS',
          total_amount: '3.20',
          sign_type: 'RSA2',
          sign: forgedSign,
        }),
      });
      expect(await forged.text()).toBe('failure');
      expect((await stack.simCall('POST', `/sim/trades/${qrOrder}/pay`)).status).toBe(200);

      // A barcode payment whose first answer is 20000: its outcome is unknown, which the workflow logs.
      expect((await stack.simCall('PUT', `/sim/payment-codes/${authCode}`, { kind: 'pays' })).status).toBe(200);
      await stack.simCall('POST', `/sim/trades/${barcodeOrder}/faults`, { systemErrors: { count: 1, methods: ['alipay.trade.pay'], kind: '20000' } });
      const barcode = await api.client.createPayment({ outTradeNo: barcodeOrder, amount: '5.60', subject: 'logs', method: 'barcode', authCode });
      expect(barcode.status).toBe(201);

      // The operators' and the merchant's credentials in use.
      expect((await fetch(`${api.url}/ops/reconciliations/2020-01-01`, { headers: { authorization: `Bearer ${stack.opsToken}` } })).status).toBe(404);
      expect((await fetch(`${api.url}/ops/reconciliations/2020-01-01`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);

      for (const order of [qrOrder, barcodeOrder]) {
        await waitFor(`${order} to be settled`, async () => {
          const status = (await api.client.getPayment(order)).body?.status;
          return status === 'PAID' || status === 'CLOSED' ? status : undefined;
        });
      }
      await waitFor('the notify to be handed to its order', () =>
        lines.some((line) => line.text.includes('alipay notify handed to its order') && line.text.includes(stack.alipayNo(qrOrder))) ? true : undefined,
      );
    } finally {
      // Stopped, not killed: what they had to say is all written.
      await Promise.all([api.stop(), worker.stop()]);
    }

    // Every line that mentions an order is JSON with the order's fields.
    for (const orderNo of [qrOrder, barcodeOrder]) {
      const workflowId = stack.workflowId(orderNo);
      const mentions = lines.filter((line) => line.text.includes(orderNo) || line.text.includes(stack.alipayNo(orderNo)));
      for (const line of mentions) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line.text);
        } catch {
          throw new Error(`a ${line.from} line about ${orderNo} is not JSON: ${line.text}`);
        }
        expect(entry.outTradeNo, line.text).toBe(orderNo);
        expect([entry.workflowId, entry.paymentWorkflowId], line.text).toContain(workflowId);
      }
      // Both processes said something about it (the worker at debug: each activity and workflow task).
      expect(mentions.filter((line) => line.from === 'worker').length, orderNo).toBeGreaterThan(3);
    }
    const messages = (orderNo: string) =>
      lines.filter((line) => line.text.includes(stack.alipayNo(orderNo))).map((line) => JSON.parse(line.text).msg as string);
    expect(messages(qrOrder)).toEqual(expect.arrayContaining(['alipay notify rejected', 'alipay notify handed to its order', 'Activity completed']));
    expect(messages(barcodeOrder)).toContain('barcode payment outcome unknown; querying');

    // No secret, whole or in part, in any line.
    const { alipay, masterKey } = stack.config;
    const secrets: [string, string][] = [
      ...secretPieces('the app private key', alipay.privateKey),
      ['the merchant secret', stack.merchant.secret],
      ['the webhook secret', stack.merchant.webhookSecret],
      ['the ops token', stack.opsToken],
      ["the forged notify's sign", forgedSign],
      ["the forged notify's sign, form-encoded", new URLSearchParams({ sign: forgedSign }).toString().slice('sign='.length)],
      ['the payment code', authCode],
      ['the master key (hex)', masterKey!.toString('hex')],
      ['the master key (base64)', masterKey!.toString('base64')],
    ];
    const output = lines.map((line) => line.text).join('\n');
    expect(output.length).toBeGreaterThan(10_000);
    expect(secrets.filter(([, secret]) => output.includes(secret)).map(([name]) => name)).toEqual([]);
  }, 120_000);

  it("carry the request's id, from the API's answer to every line of the workflow it started and its activities", async () => {
    const lines: Line[] = [];
    const worker = await stack.spawnWorkerProcess({ LOG_LEVEL: 'debug' }, (text) => lines.push({ from: 'worker', text }));
    const port = await findFreePort();
    const api = await stack.spawnApiProcess(
      { PORT: String(port), ALIPAY_NOTIFY_URL: `http://127.0.0.1:${port}/alipay/notify`, LOG_LEVEL: 'debug' },
      (text) => lines.push({ from: 'api', text }),
    );
    const send = (path: string, headers: Record<string, string>, body?: unknown) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const method = payload === undefined ? 'GET' : 'POST';
      return fetch(`${api.url}${path}`, {
        method,
        headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}), ...signRequest(stack.merchant.id, stack.merchant.secret, { method, pathWithQuery: path, body: payload }) },
        body: payload,
      });
    };
    const orderNo = stack.newOrderNo('request-id');
    try {
      // The caller's well-formed X-Request-Id is kept.
      const created = await send('/v1/payments', { 'x-request-id': 'shop-req-0001' }, { outTradeNo: orderNo, amount: '2.00', subject: 'request id' });
      expect(created.status).toBe(201);
      expect(created.headers.get('request-id')).toBe('shop-req-0001');
      // A malformed one is replaced; an error body carries the answer's id.
      const missing = await send('/v1/payments/no-such-order', { 'x-request-id': 'has spaces and ünicode' });
      expect(missing.status).toBe(404);
      const generated = missing.headers.get('request-id')!;
      expect(generated).toMatch(/^req_[0-9a-f]{24}$/);
      expect((await missing.json()).error.requestId).toBe(generated);
      // Every answer has one, unsigned and outside /v1 too.
      expect((await fetch(`${api.url}/healthz`)).headers.get('request-id')).toMatch(/^req_/);
      const unsigned = await fetch(`${api.url}/v1/payments`);
      expect((await unsigned.json()).error.requestId).toBe(unsigned.headers.get('request-id'));

      expect((await stack.simCall('POST', `/sim/trades/${orderNo}/pay`)).status).toBe(200);
      await waitFor(`${orderNo} to be paid`, async () => ((await api.client.getPayment(orderNo)).body?.status === 'PAID' ? true : undefined));
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
    }
    const entries = lines.filter((line) => line.from === 'worker' && line.text.startsWith('{')).map((line) => JSON.parse(line.text) as Record<string, unknown>);
    // The payment workflow's and its activities' lines (the order opening, the ledger writes) all carry
    // it, but for the SDK's "Activity started", written before any interceptor sees the activity.
    const ofOrder = entries.filter((entry) => entry.workflowId === stack.workflowId(orderNo));
    expect(ofOrder.filter((entry) => entry.activityType !== undefined).length).toBeGreaterThan(3);
    expect(ofOrder.filter((entry) => entry.msg === 'Workflow started').length).toBeGreaterThan(0);
    expect(ofOrder.filter((entry) => entry.requestId !== 'shop-req-0001' && entry.msg !== 'Activity started').map((entry) => entry.msg)).toEqual([]);
    // The API's own lines of a request carry that request's id (here: Alipay's notify, a request of its own).
    const notifyLine = lines.find((line) => line.from === 'api' && line.text.includes('alipay notify handed to its order') && line.text.includes(stack.alipayNo(orderNo)));
    expect(JSON.parse(notifyLine!.text).requestId).toMatch(/^req_[0-9a-f]{24}$/);
  }, 120_000);
});
