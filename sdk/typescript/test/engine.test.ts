// The SDK against a running durapay: DURAPAY_API_URL, DURAPAY_MERCHANT_ID, DURAPAY_MERCHANT_SECRET
// and DURAPAY_WEBHOOK_SECRET say which (the repository's test/sdk-typescript.test.ts starts one and
// runs these). A QR payment is paid through the simulator (POST <qrCode>/pay), refunded in part, and
// its payment.paid webhook verified with the SDK's verifier.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConflictError,
  Durapay,
  InvalidRequestError,
  NotFoundError,
  verifyWebhook,
  WebhookSignatureError,
  type Payment,
} from '../src/index.js';
import { peek, startReceiver, waitFor } from './support.js';

const env = {
  apiUrl: process.env.DURAPAY_API_URL,
  merchantId: process.env.DURAPAY_MERCHANT_ID,
  secret: process.env.DURAPAY_MERCHANT_SECRET,
  webhookSecret: process.env.DURAPAY_WEBHOOK_SECRET,
};
const configured = Boolean(env.apiUrl && env.merchantId && env.secret && env.webhookSecret);

describe.skipIf(!configured)('against a running engine', () => {
  let durapay: Durapay;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const run = Date.now().toString(36);
  const outTradeNo = `sdk-ts-${run}`;
  let paid: Payment;

  beforeAll(async () => {
    durapay = new Durapay({ apiUrl: env.apiUrl!, merchantId: env.merchantId!, secret: env.secret! });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('creates a QR payment, which the buyer pays, and it reaches PAID', async () => {
    const created = await durapay.payments.create({ outTradeNo, amount: '12.50', subject: 'SDK 一杯茶', notifyUrl: `${receiver.url}/orders` });
    expect(created).toMatchObject({ outTradeNo, status: 'AWAITING_PAYMENT', amount: '12.50', subject: 'SDK 一杯茶' });
    expect(created.qrCode).toMatch(/^https?:\/\//);
    // The same request again is idempotent: the same order and QR code.
    expect((await durapay.payments.create({ outTradeNo, amount: '12.50', subject: 'SDK 一杯茶', notifyUrl: `${receiver.url}/orders` })).qrCode).toBe(created.qrCode);

    const pay = await fetch(`${created.qrCode}/pay`, { method: 'POST' });
    expect(pay.status, await pay.text()).toBe(200);
    paid = await waitFor(`${outTradeNo} to be PAID`, async () => {
      const payment = await durapay.payments.get(outTradeNo);
      return payment.status === 'PAID' ? payment : undefined;
    });
    expect(paid).toMatchObject({ outTradeNo, status: 'PAID', paidAmount: '12.50', refundedAmount: '0.00' });
  });

  it('lists payments with a signed query', async () => {
    const page = await durapay.payments.list({ status: 'PAID', limit: 100 });
    expect(page.payments.map((p) => p.outTradeNo)).toContain(outTradeNo);
    expect(page.payments.every((p) => p.status === 'PAID')).toBe(true);
  });

  it('receives the payment.paid webhook and verifies it with the SDK', async () => {
    const delivery = await receiver.waitForDelivery('the payment.paid webhook', '/orders', (d) => peek(d).type === 'payment.paid');
    const header = delivery.headers['durapay-signature'];
    const event = verifyWebhook(env.webhookSecret!, delivery.rawBody, header);
    expect(event.type).toBe('payment.paid');
    expect(event.id).toMatch(/^evt_[0-9a-f]{24}$/);
    expect(delivery.headers['durapay-event-id']).toBe(event.id);
    if (event.type !== 'ping') expect(event.data).toMatchObject({ outTradeNo, status: 'PAID', amount: '12.50' });
    // The same bytes under another secret, or changed by one byte, are refused.
    expect(() => verifyWebhook('whsec_not_ours', delivery.rawBody, header)).toThrow(WebhookSignatureError);
    expect(() => verifyWebhook(env.webhookSecret!, Buffer.concat([delivery.rawBody, Buffer.from(' ')]), header)).toThrow(WebhookSignatureError);
  });

  it('refunds part of the payment and reads the refunds', async () => {
    const refund = await durapay.refunds.create(outTradeNo, { outRequestNo: `${outTradeNo}-r1`, amount: '2.50', reason: 'one cup short' });
    expect(refund).toMatchObject({ outRequestNo: `${outTradeNo}-r1`, amount: '2.50' });
    const settled = await waitFor('the refund to succeed', async () => {
      const refunds = await durapay.refunds.list(outTradeNo);
      return refunds.find((r) => r.outRequestNo === `${outTradeNo}-r1` && r.status === 'SUCCEEDED');
    });
    expect(settled.reason).toBe('one cup short');
    expect(await durapay.refunds.get(outTradeNo, `${outTradeNo}-r1`)).toMatchObject({ status: 'SUCCEEDED', amount: '2.50' });
    const payment = await waitFor('the payment to be PARTIALLY_REFUNDED', async () => {
      const p = await durapay.payments.get(outTradeNo);
      return p.status === 'PARTIALLY_REFUNDED' ? p : undefined;
    });
    expect(payment.refundedAmount).toBe('2.50');
    // More than is left to refund is a conflict.
    await expect(durapay.refunds.create(outTradeNo, { outRequestNo: `${outTradeNo}-r2`, amount: '10.01' })).rejects.toBeInstanceOf(ConflictError);
  });

  it('lists the order\'s events and resends one, which arrives again under the same id', async () => {
    const events = await durapay.events.listForPayment(outTradeNo);
    const paidEvent = events.find((e) => e.type === 'payment.paid');
    expect(paidEvent, JSON.stringify(events)).toBeDefined();
    const before = receiver.deliveries.filter((d) => peek(d).id === paidEvent!.id).length;
    const resent = await durapay.events.resend(paidEvent!.id);
    expect(resent.id).toBe(paidEvent!.id);
    await waitFor('the resent webhook', () => (receiver.deliveries.filter((d) => peek(d).id === paidEvent!.id).length > before ? true : undefined));
    const again = receiver.deliveries.filter((d) => peek(d).id === paidEvent!.id).at(-1)!;
    expect(verifyWebhook(env.webhookSecret!, again.rawBody, again.headers['durapay-signature']).id).toBe(paidEvent!.id);
  });

  it('cancels an unpaid payment; a paid one is a ConflictError', async () => {
    const other = `${outTradeNo}-c`;
    await durapay.payments.create({ outTradeNo: other, amount: '1.00', subject: 'cancelled' });
    const cancelled = await durapay.payments.cancel(other);
    expect(cancelled.outTradeNo).toBe(other);
    await waitFor(`${other} to be CLOSED`, async () => ((await durapay.payments.get(other)).status === 'CLOSED' ? true : undefined));
    const refused = await durapay.payments.cancel(outTradeNo).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refused).toMatchObject({ status: 409, code: 'NOT_CANCELLABLE' });
  });

  it('a request signed with the wrong secret is an AuthenticationError', async () => {
    const wrong = new Durapay({ apiUrl: env.apiUrl!, merchantId: env.merchantId!, secret: `${env.secret}-wrong` });
    const err = await wrong.payments.get(outTradeNo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: 'AUTH_BAD_SIGNATURE' });
  });

  it('an unknown order is a NotFoundError; a bad field an InvalidRequestError with its details', async () => {
    const missing = await durapay.payments.get(`${outTradeNo}-none`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND', requestId: expect.any(String) });
    const invalid = await durapay.payments.create({ outTradeNo: `${outTradeNo}-x`, amount: '12.5', subject: 'x' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidRequestError);
    expect(invalid).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect((invalid as InvalidRequestError).details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'amount' })]));
  });
});
