// Merchant webhooks end to end: the real API, worker, Temporal and PostgreSQL post signed events to
// a real HTTP receiver on 127.0.0.1, which checks every delivery as a merchant's code would.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../lib/platform/free-port.js';
import { verifyWebhookSignature } from '../lib/merchants/signing.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { webhookWorkflowId } from '../lib/merchants/webhooks.js';
import { WORKFLOWS_PATH } from '../worker/worker.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/** Compressed: 20 waits of 300 ms, so an event is given up after 21 attempts, in seconds. */
const RETRY_STEPS = 20;

interface Delivery {
  eventId: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: { id: string; type: string; apiVersion: string; created: number; data: any };
  verified: boolean;
  /** What the receiver answered. */
  answered: number;
}

/** A merchant's webhook endpoint: each path answers as its test says, and keeps every request. */
async function startReceiver(secret: () => string) {
  const answers = new Map<string, (delivery: Omit<Delivery, 'answered'>, seen: Delivery[]) => number>();
  const received = new Map<string, Delivery[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const signature = String(req.headers['durapay-signature'] ?? '');
      const delivery = {
        eventId: String(req.headers['durapay-event-id'] ?? ''),
        headers: req.headers,
        rawBody,
        body: JSON.parse(rawBody),
        verified: verifyWebhookSignature(secret(), signature, rawBody),
      };
      const seen = received.get(req.url!) ?? [];
      // A merchant accepts only what verifies.
      const answered = delivery.verified ? (answers.get(req.url!)?.(delivery, seen) ?? 404) : 401;
      seen.push({ ...delivery, answered });
      received.set(req.url!, seen);
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    /** A fresh endpoint answering with `answer`. */
    endpoint(label: string, answer: (delivery: Omit<Delivery, 'answered'>, seen: Delivery[]) => number) {
      const path = `/hooks/${label}`;
      answers.set(path, answer);
      return { url: `${base}${path}`, deliveries: () => received.get(path) ?? [] };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let stack: Stack;
let client: Client;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver(() => stack.merchant.webhookSecret);
  stack = await startStack({
    orderTimeout: '60s',
    pollLadder: '1s',
    env: { WEBHOOK_RETRY_SCHEDULE: Array(RETRY_STEPS).fill('300ms').join(','), WEBHOOK_TIMEOUT: '2s' },
  });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
  await receiver?.close();
});

async function paidOrder(label: string, notifyUrl?: string) {
  const outTradeNo = stack.newOrderNo(label);
  const created = await stack.createPayment({ outTradeNo, amount: '10.00', subject: `webhooks ${label}`, ...(notifyUrl ? { notifyUrl } : {}) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(outTradeNo, 'PAID');
  return outTradeNo;
}

async function refunded(outTradeNo: string, outRequestNo: string, amount: string) {
  const answer = await stack.refund(outTradeNo, { outRequestNo, amount });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return stack.waitForRefund(outTradeNo, outRequestNo, 'SUCCEEDED');
}

type EventResource = {
  id: string;
  type: string;
  created: number;
  sequence: number;
  status: string;
  data: any;
  attempts: { attemptedAt: string; statusCode: number | null; latencyMs: number | null; error: string | null; delivered: boolean; result: string }[];
};

async function eventsOf(outTradeNo: string): Promise<EventResource[]> {
  const answer = await stack.apiCall('GET', `/v1/payments/${outTradeNo}/events`);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.events;
}

/** Waits until the order's events satisfy `done`, and returns them. */
function eventsWhen(outTradeNo: string, what: string, done: (events: EventResource[]) => boolean, timeoutMs = 20_000) {
  return waitFor(what, async () => {
    const events = await eventsOf(outTradeNo);
    return done(events) ? events : undefined;
  }, { timeoutMs, intervalMs: 100 });
}

const byType = (events: EventResource[], type: string) => events.find((e) => e.type === type);

describe('merchant webhooks', () => {
  it('delivers payment.paid once a failing receiver recovers: 3 × 500, then 200, each signed', async () => {
    const hook = receiver.endpoint('recovers', (_d, seen) => (seen.length < 3 ? 500 : 200));
    const outTradeNo = await paidOrder('recovers', hook.url);
    const events = await eventsWhen(outTradeNo, 'payment.paid to be delivered', (all) => byType(all, 'payment.paid')?.status === 'delivered');

    const paid = byType(events, 'payment.paid')!;
    expect(paid.attempts.map((a) => [a.statusCode, a.delivered, a.error, a.result])).toEqual([
      [500, false, 'HTTP 500', 'http 500'],
      [500, false, 'HTTP 500', 'http 500'],
      [500, false, 'HTTP 500', 'http 500'],
      [200, true, null, 'delivered'],
    ]);
    for (const attempt of paid.attempts) {
      expect(attempt.latencyMs).toEqual(expect.any(Number));
      expect(Date.parse(attempt.attemptedAt)).toBeGreaterThan(0);
    }

    const deliveries = hook.deliveries();
    expect(deliveries.map((d) => d.answered)).toEqual([500, 500, 500, 200]);
    for (const d of deliveries) {
      expect(d.verified).toBe(true);
      expect(d.headers['content-type']).toBe('application/json');
      expect(d.headers['durapay-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(d.eventId).toBe(paid.id);
      expect(d.body).toEqual(deliveries[0]!.body); // the same event every time
    }
    // The signature is worth checking: another secret, or another body, does not verify.
    const last = deliveries[3]!;
    expect(verifyWebhookSignature('whsec_someone-else', String(last.headers['durapay-signature']), last.rawBody)).toBe(false);
    expect(verifyWebhookSignature(stack.merchant.webhookSecret, String(last.headers['durapay-signature']), last.rawBody.replace('PAID', 'CLOSED'))).toBe(false);

    // The worker writes webhooks and does not know where buyers reach the API: no cashierUrl.
    const { cashierUrl: _buyersPage, ...payment } = (await stack.getPayment(outTradeNo)).body;
    expect(Object.keys(last.body)).toEqual(['id', 'type', 'apiVersion', 'created', 'data']);
    expect(last.body.apiVersion).toBe('2026-12-07');
    expect(last.body).toMatchObject({ id: paid.id, type: 'payment.paid', created: paid.created });
    expect(last.body.data).toEqual(payment);
    expect(Math.abs(last.body.created - Date.now() / 1000)).toBeLessThan(120);
  });

  it('delivers one order’s events in order, each under one id however often it is retried', async () => {
    // Every event's first attempt fails, so each is sent twice under its id.
    const hook = receiver.endpoint('in-order', (d, seen) => (seen.some((s) => s.eventId === d.eventId) ? 200 : 500));
    const outTradeNo = await paidOrder('in-order', hook.url);
    await eventsWhen(outTradeNo, 'payment.paid to be delivered', (all) => byType(all, 'payment.paid')?.status === 'delivered');
    await refunded(outTradeNo, 'r1', '3.00');
    await refunded(outTradeNo, 'r2', '7.00');
    const expected = ['payment.paid', 'refund.succeeded', 'payment.partially_refunded', 'refund.succeeded', 'payment.refunded'];
    const events = await eventsWhen(outTradeNo, 'all five events to be delivered', (all) => all.length === 5 && all.every((e) => e.status === 'delivered'));

    expect(events.map((e) => [e.sequence, e.type])).toEqual(expected.map((type, i) => [i + 1, type]));
    const deliveries = hook.deliveries();
    // Never a later event before an earlier one is accepted: each id twice, one after the other.
    expect(deliveries.map((d) => d.eventId)).toEqual(events.flatMap((e) => [e.id, e.id]));
    expect(deliveries.map((d) => d.answered)).toEqual(events.flatMap(() => [500, 200]));
    expect(deliveries.every((d) => d.verified)).toBe(true);
    for (let i = 0; i < deliveries.length; i += 2) expect(deliveries[i + 1]!.rawBody).toBe(deliveries[i]!.rawBody);
    expect(deliveries.filter((d) => d.answered === 200).map((d) => d.body.type)).toEqual(expected);

    // Each carries the order as it was then, and refund events the refund too.
    const accepted = deliveries.filter((d) => d.answered === 200).map((d) => d.body.data);
    expect(accepted[0]).toMatchObject({ outTradeNo, status: 'PAID', refundedAmount: '0.00' });
    expect(accepted[1]).toMatchObject({ status: 'PARTIALLY_REFUNDED', refund: { outRequestNo: 'r1', amount: '3.00', status: 'SUCCEEDED' } });
    expect(accepted[2]).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '3.00', refund: { outRequestNo: 'r1' } });
    expect(accepted[3]).toMatchObject({ status: 'REFUNDED', refund: { outRequestNo: 'r2', amount: '7.00' } });
    expect(accepted[4]).toMatchObject({ status: 'REFUNDED', refundedAmount: '10.00', refund: { outRequestNo: 'r2' } });
    expect(accepted[0].refund).toBeUndefined();

    // The order's delivery workflow ends once nothing is pending, and its history replays.
    const handle = client.workflow.getHandle(webhookWorkflowId(stack.workflowId(outTradeNo)));
    await waitFor('the delivery workflow to end', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined));
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, handle.workflowId);

    // The POSTs went to the webhook task queue; a history from before it, with them on the payment
    // task queue, replays all the same (Temporal matches an activity by id and type).
    const posts = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a?.activityType?.name === 'deliverWebhook');
    expect(posts.length).toBeGreaterThanOrEqual(2); // this run's: the workflow ends whenever nothing is pending
    expect(new Set(posts.map((a) => a!.taskQueue?.name))).toEqual(new Set([`${stack.config.temporal.taskQueue}-webhooks`]));
    for (const post of posts) post!.taskQueue = { ...post!.taskQueue, name: stack.config.temporal.taskQueue };
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, handle.workflowId);
  });

  it('tells of a late payment and of its refund, after the close, in that order', async () => {
    const hook = receiver.endpoint('late', () => 200);
    const outTradeNo = stack.newOrderNo('late');
    // Alipay's clock runs behind and it refuses the void: the buyer pays the order we closed.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      clockSkewMs: 60_000,
      refusals: { count: 1, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
    });
    expect((await stack.createPayment({ outTradeNo, amount: '8.80', subject: 'late', notifyUrl: hook.url })).status).toBe(201);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    const events = await eventsWhen(outTradeNo, 'the late refund to be told', (all) => all.length === 3 && all.every((e) => e.status === 'delivered'));
    expect(events.map((e) => e.type)).toEqual(['payment.closed', 'payment.late_payment', 'payment.late_payment_refunded']);
    const bodies = hook.deliveries().map((d) => d.body);
    expect(bodies.map((b) => b.type)).toEqual(['payment.closed', 'payment.late_payment', 'payment.late_payment_refunded']);
    expect(bodies[1]!.data).toMatchObject({ status: 'CLOSED', latePayment: { amount: '8.80', refundStatus: 'PENDING' } });
    expect(bodies[2]!.data).toMatchObject({ status: 'CLOSED', latePayment: { refundStatus: 'SUCCEEDED' }, refund: { amount: '8.80', status: 'SUCCEEDED' } });
  });

  it('never lets a receiver that always fails touch the payment or its refunds, and logs every attempt', async () => {
    const hook = receiver.endpoint('always-fails', () => 503);
    const outTradeNo = await paidOrder('always-fails', hook.url);
    const early = await eventsWhen(outTradeNo, 'three failed attempts', (all) => (byType(all, 'payment.paid')?.attempts.length ?? 0) >= 3);
    expect(byType(early, 'payment.paid')!.status).toBe('pending');

    // The refund goes through while the order's first webhook is still failing.
    expect(await refunded(outTradeNo, 'while-failing', '2.00')).toMatchObject({ status: 'SUCCEEDED', amount: '2.00' });
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '2.00', paidAmount: '10.00' });

    // Attempts keep being logged, and the later events wait their turn behind the failing one.
    const earlyAttempts = byType(early, 'payment.paid')!.attempts.length;
    const blocked = await eventsWhen(outTradeNo, 'more attempts', (all) => byType(all, 'payment.paid')!.attempts.length > earlyAttempts + 1);
    expect(blocked.map((e) => [e.type, e.status])).toEqual([
      ['payment.paid', 'pending'],
      ['refund.succeeded', 'pending'],
      ['payment.partially_refunded', 'pending'],
    ]);
    expect(byType(blocked, 'refund.succeeded')!.attempts).toEqual([]);

    // The schedule runs out: 21 attempts, all logged, then the next event gets its turn.
    const given = await eventsWhen(outTradeNo, 'payment.paid to be given up', (all) => byType(all, 'payment.paid')?.status === 'failed', 60_000);
    const paidAttempts = byType(given, 'payment.paid')!.attempts;
    expect(paidAttempts).toHaveLength(RETRY_STEPS + 1);
    expect(paidAttempts.every((a) => a.statusCode === 503 && !a.delivered && a.error === 'HTTP 503')).toBe(true);
    await eventsWhen(outTradeNo, 'refund.succeeded to be attempted', (all) => (byType(all, 'refund.succeeded')?.attempts.length ?? 0) >= 1);
    expect(hook.deliveries().slice(0, RETRY_STEPS + 1).every((d) => d.body.type === 'payment.paid')).toBe(true);
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('PARTIALLY_REFUNDED');
    expect((await stack.getRefund(outTradeNo, 'while-failing')).body.status).toBe('SUCCEEDED');
  }, 120_000);

  it('delivers once after the worker stopped while the event waited for its next attempt', async () => {
    let receiverUp = false;
    const hook = receiver.endpoint('worker-restart', () => (receiverUp ? 200 : 500));
    const outTradeNo = await paidOrder('worker-restart', hook.url);
    await eventsWhen(outTradeNo, 'a failed attempt', (all) => (byType(all, 'payment.paid')?.attempts.length ?? 0) >= 1);
    await stack.stopWorker();
    try {
      const waiting = byType(await eventsOf(outTradeNo), 'payment.paid')!;
      expect(waiting.status).toBe('pending');
      expect(waiting.attempts.every((a) => !a.delivered)).toBe(true);
      receiverUp = true;
    } finally {
      await stack.startWorker();
    }
    const events = await eventsWhen(outTradeNo, 'payment.paid to be delivered', (all) => byType(all, 'payment.paid')?.status === 'delivered');
    const paid = byType(events, 'payment.paid')!;
    const deliveries = hook.deliveries();
    expect(deliveries.filter((d) => d.answered === 200)).toHaveLength(1);
    expect(deliveries.at(-1)!.answered).toBe(200);
    expect(new Set(deliveries.map((d) => d.eventId))).toEqual(new Set([paid.id]));
    expect(paid.attempts.at(-1)).toMatchObject({ statusCode: 200, delivered: true });
    expect(paid.attempts.filter((a) => a.delivered)).toHaveLength(1);
    expect(paid.attempts).toHaveLength(deliveries.length);
  }, 90_000);

  it('resends an event on request, and another merchant can neither list nor resend it', async () => {
    const hook = receiver.endpoint('resend', () => 200);
    const outTradeNo = await paidOrder('resend', hook.url);
    const events = await eventsWhen(outTradeNo, 'payment.paid to be delivered', (all) => byType(all, 'payment.paid')?.status === 'delivered');
    const paid = byType(events, 'payment.paid')!;

    const other = await stack.newMerchant('Another Tea House');
    expect((await other.call('GET', `/v1/payments/${outTradeNo}/events`)).status).toBe(404);
    const foreign = await other.call('POST', `/v1/events/${paid.id}/resend`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('NOT_FOUND');
    expect((await stack.apiCall('POST', '/v1/events/evt_000000000000000000000000/resend')).status).toBe(404);

    const resent = await stack.apiCall('POST', `/v1/events/${paid.id}/resend`);
    expect(resent.status).toBe(202);
    expect(resent.body).toMatchObject({ id: paid.id, type: 'payment.paid' });
    const again = await eventsWhen(outTradeNo, 'the resend to be delivered', (all) => byType(all, 'payment.paid')!.attempts.length === 2);
    expect(byType(again, 'payment.paid')).toMatchObject({ status: 'delivered' });
    expect(byType(again, 'payment.paid')!.attempts.map((a) => [a.statusCode, a.delivered])).toEqual([[200, true], [200, true]]);
    const deliveries = hook.deliveries();
    expect(deliveries).toHaveLength(2); // the foreign resend sent nothing
    expect(deliveries.map((d) => d.eventId)).toEqual([paid.id, paid.id]);
    expect(deliveries[1]!.rawBody).toBe(deliveries[0]!.rawBody);
    expect(deliveries.every((d) => d.verified)).toBe(true);
  });

  it('shows the merchant coarse attempt results, never the socket’s or the resolver’s message', async () => {
    // An endpoint that accepts the connection and never answers, and a port where nothing listens.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const closedPort = await findFreePort();
    try {
      const slow = await paidOrder('silent', `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hooks`);
      const closed = await paidOrder('closed', `http://127.0.0.1:${closedPort}/hooks`);
      const attemptsOf = async (outTradeNo: string) =>
        byType(await eventsWhen(outTradeNo, 'two attempts', (all) => (byType(all, 'payment.paid')?.attempts.length ?? 0) >= 2), 'payment.paid')!.attempts;
      const timedOut = await attemptsOf(slow);
      const refused = await attemptsOf(closed);
      for (const attempt of timedOut) expect(attempt).toMatchObject({ statusCode: null, delivered: false, error: 'timeout', result: 'timeout' });
      for (const attempt of refused) expect(attempt).toMatchObject({ statusCode: null, delivered: false, error: 'unreachable', result: 'unreachable' });
      expect(JSON.stringify([...timedOut, ...refused])).not.toMatch(/ECONN|127\.0\.0\.1|connect|socket|getaddrinfo|abort/i);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 60_000);

  it('records the events of an order without notifyUrl, lists them, and sends nothing', async () => {
    const outTradeNo = await paidOrder('no-url');
    const events = await eventsWhen(outTradeNo, 'payment.paid to be recorded', (all) => byType(all, 'payment.paid') !== undefined);
    expect(events.map((e) => [e.type, e.status, e.attempts.length])).toEqual([['payment.paid', 'no_endpoint', 0]]);
    expect(events[0]!.data).toMatchObject({ outTradeNo, status: 'PAID' });
    const resend = await stack.apiCall('POST', `/v1/events/${events[0]!.id}/resend`);
    expect(resend.status).toBe(409);
    expect(resend.body.error.code).toBe('NO_NOTIFY_URL');
  });
});
