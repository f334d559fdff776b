// Webhook endpoints and the events feed against a running engine (see engine.test.ts for the
// DURAPAY_* variables): an endpoint for payment.paid receives a paid order's event and a ping,
// verified with the endpoint's own secret; after a rotation both secrets verify; the feed lists
// the event from a cursor taken before it happened.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Durapay, NotFoundError, verifyWebhook, WebhookSignatureError, type NewWebhookEndpoint, type PaymentWebhookEvent } from '../src/index.js';
import { peek, startReceiver, waitFor } from './support.js';

const env = {
  apiUrl: process.env.DURAPAY_API_URL,
  merchantId: process.env.DURAPAY_MERCHANT_ID,
  secret: process.env.DURAPAY_MERCHANT_SECRET,
  webhookSecret: process.env.DURAPAY_WEBHOOK_SECRET,
};
const configured = Boolean(env.apiUrl && env.merchantId && env.secret && env.webhookSecret);

describe.skipIf(!configured)('webhook endpoints and the events feed', () => {
  let durapay: Durapay;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let endpoint: NewWebhookEndpoint;
  let feedCursor: string;
  const outTradeNo = `sdk-ts-we-${Date.now().toString(36)}`;

  beforeAll(async () => {
    durapay = new Durapay({ apiUrl: env.apiUrl!, merchantId: env.merchantId!, secret: env.secret! });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('creates, lists, reads and updates an endpoint for payment.paid', async () => {
    endpoint = await durapay.webhookEndpoints.create({ url: `${receiver.url}/endpoint`, events: ['payment.paid'], description: 'SDK test' });
    expect(endpoint).toMatchObject({ url: `${receiver.url}/endpoint`, events: ['payment.paid'], description: 'SDK test', enabled: true, previousSecretExpiresAt: null });
    expect(endpoint.id).toMatch(/^we_[0-9a-f]{24}$/);
    expect(endpoint.secret).toMatch(/^whsec_/);
    const listed = await durapay.webhookEndpoints.list();
    expect(listed.map((e) => e.id)).toContain(endpoint.id);
    expect(listed.find((e) => e.id === endpoint.id)).not.toHaveProperty('secret');
    expect(await durapay.webhookEndpoints.get(endpoint.id)).toMatchObject({ id: endpoint.id, url: endpoint.url });
    const updated = await durapay.webhookEndpoints.update(endpoint.id, { description: 'SDK test endpoint' });
    expect(updated).toMatchObject({ id: endpoint.id, description: 'SDK test endpoint', enabled: true });
  });

  it('a paid order\'s payment.paid reaches the endpoint, signed with its secret, and shows in the feed', async () => {
    feedCursor = (await durapay.events.list({ limit: 1 })).nextCursor;
    const created = await durapay.payments.create({ outTradeNo, amount: '3.30', subject: 'endpoint test' });
    const pay = await fetch(`${created.qrCode}/pay`, { method: 'POST' });
    expect(pay.status, await pay.text()).toBe(200);

    const delivery = await receiver.waitForDelivery('payment.paid at the endpoint', '/endpoint', (d) => peek(d).type === 'payment.paid' && peek(d).data?.outTradeNo === outTradeNo);
    const event = verifyWebhook(endpoint.secret, delivery.rawBody, delivery.headers['durapay-signature']);
    expect(event).toMatchObject({ type: 'payment.paid', apiVersion: '2026-12-07', data: { outTradeNo, status: 'PAID' } });
    // The merchant's notifyUrl secret is not the endpoint's.
    expect(() => verifyWebhook(env.webhookSecret!, delivery.rawBody, delivery.headers['durapay-signature'])).toThrow(WebhookSignatureError);

    // The feed, from the cursor taken before the order, has the same event, the same bytes' worth.
    const seen: PaymentWebhookEvent[] = [];
    let cursor = feedCursor;
    await waitFor('payment.paid in the events feed', async () => {
      const page = await durapay.events.list({ after: cursor, waitSeconds: 2 });
      cursor = page.nextCursor;
      seen.push(...page.events);
      return seen.find((e) => e.id === event.id);
    });
    expect(seen.find((e) => e.id === event.id)).toEqual(event);
  });

  it('the feed as a stream from a cursor, ended by the consumer', async () => {
    const controller = new AbortController();
    let found: PaymentWebhookEvent | undefined;
    const deadline = setTimeout(() => controller.abort(new Error('the stream did not yield the event in time')), 20_000);
    try {
      for await (const event of durapay.events.stream({ after: feedCursor, waitSeconds: 2, signal: controller.signal })) {
        if (event.type === 'payment.paid' && event.data.outTradeNo === outTradeNo) {
          found = event;
          break;
        }
      }
    } finally {
      clearTimeout(deadline);
    }
    expect(found).toMatchObject({ type: 'payment.paid', data: { outTradeNo } });
  });

  it('a test ping; after a rotation both the new and the previous secret verify', async () => {
    const ping = await durapay.webhookEndpoints.test(endpoint.id);
    expect(ping).toMatchObject({ id: expect.stringMatching(/^evt_/), type: 'ping' });
    const first = await receiver.waitForDelivery('the ping', '/endpoint', (d) => peek(d).id === ping.id);
    const pinged = verifyWebhook(endpoint.secret, first.rawBody, first.headers['durapay-signature']);
    expect(pinged).toMatchObject({ type: 'ping', data: { endpointId: endpoint.id } });

    const rotated = await durapay.webhookEndpoints.rotateSecret(endpoint.id, { graceSeconds: 3600 });
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.previousSecretExpiresAt!)).toBeGreaterThan(Date.now());
    const second = await durapay.webhookEndpoints.test(endpoint.id);
    const delivery = await receiver.waitForDelivery('the ping after the rotation', '/endpoint', (d) => peek(d).id === second.id);
    const header = String(delivery.headers['durapay-signature']);
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhook(rotated.secret, delivery.rawBody, header).id).toBe(second.id);
    expect(verifyWebhook(endpoint.secret, delivery.rawBody, header).id).toBe(second.id);
    expect(verifyWebhook([rotated.secret, endpoint.secret], delivery.rawBody, header).id).toBe(second.id);
    expect(() => verifyWebhook('whsec_neither', delivery.rawBody, header)).toThrow(WebhookSignatureError);
    endpoint = { ...endpoint, secret: rotated.secret };
  });

  it('lists the endpoint\'s deliveries and resends one', async () => {
    const deliveries = await waitFor('the delivered payment.paid in the endpoint\'s deliveries', async () => {
      const list = await durapay.webhookEndpoints.listDeliveries(endpoint.id, { limit: 50 });
      return list.some((d) => d.type === 'payment.paid' && d.outTradeNo === outTradeNo && d.status === 'delivered') ? list : undefined;
    });
    const paid = deliveries.find((d) => d.type === 'payment.paid' && d.outTradeNo === outTradeNo)!;
    expect(paid.attempts.some((a) => a.delivered)).toBe(true);
    const before = receiver.deliveries.filter((d) => peek(d).id === paid.eventId).length;
    const resent = await durapay.webhookEndpoints.resendDelivery(endpoint.id, paid.eventId);
    expect(resent).toMatchObject({ eventId: paid.eventId, status: 'pending' });
    await waitFor('the resent delivery', () => (receiver.deliveries.filter((d) => peek(d).id === paid.eventId).length > before ? true : undefined));
    const again = receiver.deliveries.filter((d) => peek(d).id === paid.eventId).at(-1)!;
    expect(verifyWebhook(endpoint.secret, again.rawBody, again.headers['durapay-signature']).id).toBe(paid.eventId);
  });

  it('deletes the endpoint; it is then a NotFoundError', async () => {
    expect(await durapay.webhookEndpoints.delete(endpoint.id)).toEqual({ id: endpoint.id, deleted: true });
    const gone = await durapay.webhookEndpoints.get(endpoint.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});
