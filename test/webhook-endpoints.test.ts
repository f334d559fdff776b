// Webhook endpoints a merchant manages, end to end: the real API, worker, Temporal and PostgreSQL
// post every order's events to each enabled endpoint whose events match, each signed with that
// endpoint's secret (two during a rotation), each endpoint's deliveries independent of the
// others'; a ping, deliveries and a resend; and the merchant's event feed that `listen` reads.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWebhookSignature, verifyWebhookSignature } from '../lib/merchants/signing.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

interface Received {
  path: string;
  eventId: string;
  signature: string;
  rawBody: string;
  body: { id: string; type: string; apiVersion: string; created: number; data: any };
}

/** Endpoints on 127.0.0.1: each path answers with its own status (200 unless set), and keeps what it got. */
async function startReceiver() {
  const received: Received[] = [];
  const statuses = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      received.push({
        path: req.url!,
        eventId: String(req.headers['durapay-event-id'] ?? ''),
        signature: String(req.headers['durapay-signature'] ?? ''),
        rawBody,
        body: JSON.parse(rawBody),
      });
      res.writeHead(statuses.get(req.url!) ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (path: string) => `${base}${path}`,
    answer: (path: string, status: number) => statuses.set(path, status),
    at: (path: string) => received.filter((r) => r.path === path),
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

let stack: Stack;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  // Compressed retries: an endpoint that fails is tried again within a second, 30 times.
  stack = await startStack({ env: { WEBHOOK_RETRY_SCHEDULE: Array(30).fill('400ms').join(','), WEBHOOK_TIMEOUT: '2s' } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.stop();
  await stack?.stop();
});

const call = (method: string, path: string, body?: unknown) => stack.apiCall(method, path, body);

async function createEndpoint(path: string, events: string[]) {
  const answer = await call('POST', '/v1/webhook-endpoints', { url: receiver.url(path), events });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body as { id: string; secret: string; events: string[]; enabled: boolean };
}

/** A QR order paid through the simulator, waited for until PAID. */
async function paidOrder(label: string, extra: Record<string, unknown> = {}) {
  const outTradeNo = stack.newOrderNo(label);
  const created = await stack.createPayment({ outTradeNo, amount: '10.00', subject: label, ...extra });
  expect(created.status).toBe(201);
  await fetch(`${created.body.qrCode}/pay`, { method: 'POST' });
  await stack.waitForStatus(outTradeNo, 'PAID');
  return outTradeNo;
}

const typesAt = (path: string, outTradeNo: string) =>
  receiver
    .at(path)
    .filter((r) => r.body.data?.outTradeNo === outTradeNo)
    .map((r) => r.body.type);

describe('webhook endpoints', () => {
  it("sends every order's events to each enabled endpoint whose events match, beside the order's notifyUrl", async () => {
    const paidOnly = await createEndpoint('/paid-only', ['payment.paid']);
    const everything = await createEndpoint('/everything', ['*']);
    const refundsOnly = await createEndpoint('/refunds-only', ['refund.succeeded']);
    const disabled = await createEndpoint('/disabled', ['*']);
    expect((await call('PATCH', `/v1/webhook-endpoints/${disabled.id}`, { enabled: false })).body.enabled).toBe(false);
    // Another merchant's endpoint hears nothing of this merchant's orders.
    const other = await stack.newMerchant('another shop');
    expect((await other.call('POST', '/v1/webhook-endpoints', { url: receiver.url('/other-merchant'), events: ['*'] })).status).toBe(201);

    // An order with its own notifyUrl, and one without: both reach the endpoints.
    const hooked = await paidOrder('hooked', { notifyUrl: receiver.url('/order-notify') });
    const bare = await paidOrder('bare');
    expect((await stack.refund(bare, { outRequestNo: 'r-1', amount: '4.00' })).status).toBe(201);
    await stack.waitForRefund(bare, 'r-1', 'SUCCEEDED');

    await waitFor('every delivery', async () =>
      typesAt('/everything', bare).length === 3 && typesAt('/refunds-only', bare).length === 1 && typesAt('/paid-only', bare).length === 1 && typesAt('/order-notify', hooked).length === 1
        ? true
        : undefined,
    );
    expect(typesAt('/paid-only', hooked)).toEqual(['payment.paid']);
    expect(typesAt('/paid-only', bare)).toEqual(['payment.paid']);
    expect(typesAt('/everything', hooked)).toEqual(['payment.paid']);
    // In the order they happened, per endpoint.
    expect(typesAt('/everything', bare)).toEqual(['payment.paid', 'refund.succeeded', 'payment.partially_refunded']);
    expect(typesAt('/refunds-only', bare)).toEqual(['refund.succeeded']);
    expect(typesAt('/order-notify', hooked)).toEqual(['payment.paid']);
    expect(typesAt('/order-notify', bare)).toEqual([]);

    // Each signed with its own endpoint's secret (the order's notifyUrl with the merchant's); one event, one id everywhere.
    const secretOf: Record<string, string> = { '/paid-only': paidOnly.secret, '/everything': everything.secret, '/refunds-only': refundsOnly.secret, '/order-notify': stack.merchant.webhookSecret };
    for (const [path, secret] of Object.entries(secretOf)) {
      for (const delivery of receiver.at(path)) {
        expect(verifyWebhookSignature(secret, delivery.signature, delivery.rawBody), `${path} ${delivery.body.type}`).toBe(true);
        expect(verifyWebhookSignature(everything.secret === secret ? paidOnly.secret : everything.secret, delivery.signature, delivery.rawBody)).toBe(false);
        expect(delivery.eventId).toBe(delivery.body.id);
        expect(delivery.body.apiVersion).toBe('2026-12-07');
      }
    }
    const paidEvent = receiver.at('/everything').find((r) => r.body.data.outTradeNo === bare && r.body.type === 'payment.paid')!;
    expect(receiver.at('/paid-only').find((r) => r.body.data.outTradeNo === bare)!.rawBody).toBe(paidEvent.rawBody);
    expect(receiver.at('/disabled')).toEqual([]);
    expect(receiver.at('/other-merchant')).toEqual([]);

    // The endpoint lists what it got, with each attempt.
    // (Recorded once the receiver has answered: wait for the record, not only the receipt.)
    const forBare = await waitFor('the deliveries recorded', async () => {
      const listed = (await call('GET', `/v1/webhook-endpoints/${everything.id}/deliveries?limit=10`)).body.deliveries;
      const ofBare = listed.filter((d: { outTradeNo: string; status: string }) => d.outTradeNo === bare);
      return ofBare.every((d: { status: string }) => d.status === 'delivered') ? ofBare : undefined;
    });
    expect(forBare.map((d: { type: string }) => d.type)).toEqual(['payment.partially_refunded', 'refund.succeeded', 'payment.paid']);
    expect(forBare.every((d: { status: string; attempts: { result: string }[] }) => d.status === 'delivered' && d.attempts.length === 1 && d.attempts[0]!.result === 'delivered')).toBe(true);
    // The list never shows a secret.
    const listed = (await call('GET', '/v1/webhook-endpoints')).body.endpoints;
    expect(JSON.stringify(listed)).not.toContain('whsec_');
    expect(listed.map((e: { id: string }) => e.id)).toEqual(expect.arrayContaining([paidOnly.id, everything.id, refundsOnly.id, disabled.id]));
  });

  it("keeps each endpoint's deliveries independent: one that fails neither holds up nor loses another's, and a resend sends again", async () => {
    const failing = await createEndpoint('/failing', ['payment.paid']);
    const healthy = await createEndpoint('/healthy', ['payment.paid']);
    receiver.answer('/failing', 503);
    const order = await paidOrder('independent');
    await waitFor('the healthy endpoint', async () => (typesAt('/healthy', order).length === 1 ? true : undefined));
    // The failing one is still being tried, on its own schedule.
    await waitFor('three attempts at the failing endpoint', async () => (typesAt('/failing', order).length >= 3 ? true : undefined));
    const pending = (await call('GET', `/v1/webhook-endpoints/${failing.id}/deliveries`)).body.deliveries.find((d: { outTradeNo: string }) => d.outTradeNo === order);
    expect(pending.status).toBe('pending');
    expect(pending.attempts[0]).toMatchObject({ delivered: false, statusCode: 503, result: 'http 503' });

    receiver.answer('/failing', 200);
    const delivered = await waitFor('the failing endpoint to recover', async () => {
      const d = (await call('GET', `/v1/webhook-endpoints/${failing.id}/deliveries`)).body.deliveries.find((x: { outTradeNo: string }) => x.outTradeNo === order);
      return d.status === 'delivered' ? d : undefined;
    });
    expect(delivered.attempts.at(-1)).toMatchObject({ delivered: true, statusCode: 200 });
    expect(typesAt('/healthy', order)).toEqual(['payment.paid']);

    // A resend of a delivered event: the same event, same id and body, once more to that endpoint only.
    const before = receiver.at('/healthy').length;
    const resent = await call('POST', `/v1/webhook-endpoints/${healthy.id}/deliveries/${delivered.eventId}/resend`);
    expect(resent.status).toBe(202);
    expect(resent.body).toMatchObject({ eventId: delivered.eventId, status: 'pending' });
    await waitFor('the resend', async () => (receiver.at('/healthy').length === before + 1 ? true : undefined));
    const [first, again] = receiver.at('/healthy').filter((r) => r.eventId === delivered.eventId);
    expect(again!.rawBody).toBe(first!.rawBody);
    expect(typesAt('/failing', order).filter((t) => t === 'payment.paid').length).toBe(typesAt('/failing', order).length);
  });

  it('cancels what a disabled endpoint was still due, and sends nothing more to it', async () => {
    const flaky = await createEndpoint('/disabled-while-failing', ['*']);
    receiver.answer('/disabled-while-failing', 500);
    const order = await paidOrder('disabled');
    await waitFor('a failed attempt', async () => (typesAt('/disabled-while-failing', order).length >= 1 ? true : undefined));
    expect((await call('PATCH', `/v1/webhook-endpoints/${flaky.id}`, { enabled: false })).status).toBe(200);
    const cancelled = await waitFor('the delivery to be cancelled', async () => {
      const d = (await call('GET', `/v1/webhook-endpoints/${flaky.id}/deliveries`)).body.deliveries[0];
      return d?.status === 'cancelled' ? d : undefined;
    });
    const attempts = typesAt('/disabled-while-failing', order).length;
    // A next order's events are not even queued for it.
    const next = await paidOrder('after-disable');
    await waitFor('the next order to be told elsewhere', async () => ((await call('GET', `/v1/payments/${next}/events`)).body.events.length > 0 ? true : undefined));
    const later = (await call('GET', `/v1/webhook-endpoints/${flaky.id}/deliveries`)).body.deliveries;
    expect(later.map((d: { eventId: string }) => d.eventId)).toEqual([cancelled.eventId]);
    expect(typesAt('/disabled-while-failing', order).length).toBe(attempts);
    expect(typesAt('/disabled-while-failing', next)).toEqual([]);
  });

  it('rotates a secret: two v1 values verify during the grace period, only the new one after', async () => {
    const endpoint = await createEndpoint('/rotating', ['payment.paid']);
    const rotated = await call('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { graceSeconds: 3600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(3500_000);
    expect((await call('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previousSecretExpiresAt).toBe(rotated.body.previousSecretExpiresAt);

    const during = await paidOrder('rotation-grace');
    const [graced] = await waitFor('a delivery under two secrets', async () => {
      const got = receiver.at('/rotating').filter((r) => r.body.data.outTradeNo === during);
      return got.length ? got : undefined;
    });
    expect(parseWebhookSignature(graced!.signature)!.v1).toHaveLength(2);
    expect(verifyWebhookSignature(rotated.body.secret, graced!.signature, graced!.rawBody)).toBe(true);
    expect(verifyWebhookSignature(endpoint.secret, graced!.signature, graced!.rawBody)).toBe(true);

    // No grace: the previous secret stops signing at once.
    const again = await call('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { graceSeconds: 0 });
    const after = await paidOrder('rotation-done');
    const [single] = await waitFor('a delivery under one secret', async () => {
      const got = receiver.at('/rotating').filter((r) => r.body.data.outTradeNo === after);
      return got.length ? got : undefined;
    });
    expect(parseWebhookSignature(single!.signature)!.v1).toHaveLength(1);
    expect(verifyWebhookSignature(again.body.secret, single!.signature, single!.rawBody)).toBe(true);
    expect(verifyWebhookSignature(rotated.body.secret, single!.signature, single!.rawBody)).toBe(false);
    expect((await call('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previousSecretExpiresAt).toBeNull();
  });

  it('sends a signed ping to one endpoint, once, and lists it with its attempt', async () => {
    const up = await createEndpoint('/ping-up', ['payment.paid']);
    const down = await createEndpoint('/ping-down', ['payment.paid']);
    receiver.answer('/ping-down', 500);
    const ping = await call('POST', `/v1/webhook-endpoints/${up.id}/test`);
    expect(ping.status).toBe(202);
    expect(ping.body).toEqual({ id: expect.stringMatching(/^evt_/), type: 'ping' });
    const [got] = await waitFor('the ping', async () => (receiver.at('/ping-up').length ? receiver.at('/ping-up') : undefined));
    expect(got!.body).toMatchObject({ id: ping.body.id, type: 'ping', apiVersion: '2026-12-07', data: { endpointId: up.id } });
    expect(verifyWebhookSignature(up.secret, got!.signature, got!.rawBody)).toBe(true);
    const listed = await waitFor('the ping delivered', async () => {
      const d = (await call('GET', `/v1/webhook-endpoints/${up.id}/deliveries`)).body.deliveries[0];
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(listed).toMatchObject({ eventId: ping.body.id, type: 'ping', outTradeNo: null });

    // A ping that fails is tried once, and shows as failed.
    const failed = await call('POST', `/v1/webhook-endpoints/${down.id}/test`);
    const failure = await waitFor('the failed ping', async () => {
      const d = (await call('GET', `/v1/webhook-endpoints/${down.id}/deliveries`)).body.deliveries[0];
      return d?.status === 'failed' ? d : undefined;
    });
    expect(failure.eventId).toBe(failed.body.id);
    expect(failure.attempts).toHaveLength(1);
    expect(receiver.at('/ping-down')).toHaveLength(1);
    // Pings are an endpoint's own: no other endpoint gets them, and the feed does not list them.
    expect(receiver.at('/ping-up').map((r) => r.body.id)).not.toContain(failed.body.id);
  });

  it("feeds the merchant's events, as webhook bodies, to a long poll; another merchant's are not in it", async () => {
    const start = await call('GET', '/v1/events');
    expect(start.status).toBe(200);
    expect(start.body.events).toEqual([]);
    const outTradeNo = stack.newOrderNo('feed');
    const created = await stack.createPayment({ outTradeNo, amount: '3.00', subject: 'feed' });
    // The long poll waits for the event the payment writes.
    const [polled] = await Promise.all([
      call('GET', `/v1/events?after=${start.body.nextCursor}&waitSeconds=20`),
      fetch(`${created.body.qrCode}/pay`, { method: 'POST' }),
    ]);
    expect(polled.status).toBe(200);
    expect(polled.body.events.map((e: { type: string; data: { outTradeNo: string } }) => [e.type, e.data.outTradeNo])).toEqual([['payment.paid', outTradeNo]]);
    const event = polled.body.events[0];
    expect(Object.keys(event)).toEqual(['id', 'type', 'apiVersion', 'created', 'data']);
    // What the feed gives is what an endpoint gets, byte for byte.
    const delivered = receiver.at('/everything').find((r) => r.body.id === event.id);
    if (delivered) expect(delivered.rawBody).toBe(JSON.stringify(event));
    // After its cursor: nothing more, at once.
    const next = await call('GET', `/v1/events?after=${polled.body.nextCursor}`);
    expect(next.body).toEqual({ events: [], nextCursor: polled.body.nextCursor });
    // Pages follow the position as a number: two events of one transaction at 9999999 and 10000000
    // (10000000 sorts first as text) come one page each, in that order, neither lost nor repeated.
    const paymentId = (await stack.pool.query('SELECT id FROM payments WHERE merchant_id = $1 AND out_trade_no = $2', [stack.merchant.id, outTradeNo])).rows[0].id;
    const { rows } = await stack.pool.query(
      `INSERT INTO webhook_events (id, payment_id, merchant_id, sequence, type, payload, status, position) OVERRIDING SYSTEM VALUE
       VALUES ($1, $3, $4, 1001, 'payment.paid', '{}', 'delivered', 9999999), ($2, $3, $4, 1002, 'payment.closed', '{}', 'delivered', 10000000)
       RETURNING writer_xid::text AS xid`,
      [`evt_${'9'.repeat(24)}`, `evt_${'a'.repeat(24)}`, paymentId, stack.merchant.id],
    );
    let cursor = `${rows[0].xid}.9999998`;
    const paged: string[] = [];
    for (let page = 0; page < 3; page++) {
      const answer = await call('GET', `/v1/events?after=${cursor}&limit=1`);
      paged.push(...answer.body.events.map((e: { id: string }) => e.id));
      cursor = answer.body.nextCursor;
    }
    expect(paged.slice(0, 2)).toEqual([`evt_${'9'.repeat(24)}`, `evt_${'a'.repeat(24)}`]);

    // From the beginning of time, the merchant sees its own events and never another's.
    const other = await stack.newMerchant('feed neighbour');
    const theirs = await other.call('GET', '/v1/events?after=0.0&limit=100');
    expect(theirs.body.events).toEqual([]);
    const ours = await call('GET', '/v1/events?after=0.0&limit=100');
    expect(ours.body.events.length).toBeGreaterThan(1);
    expect(ours.body.events.some((e: { type: string }) => e.type === 'ping')).toBe(false);
  });
});
