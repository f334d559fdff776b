// A merchant's receiver that never answers holds a webhook attempt for WEBHOOK_TIMEOUT. Those
// attempts must not take the slots the payment task queue needs: here the worker has 4 activity
// slots, a receiver holds every webhook slot open, and a payment and a refund still settle at once.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const SLOTS = 4;

let stack: Stack;
let receiver: Server;
let url: string;
const open = new Set<IncomingMessage>();
let mostOpen = 0;

beforeAll(async () => {
  // Takes every request and never answers it.
  receiver = createServer((req) => {
    open.add(req);
    mostOpen = Math.max(mostOpen, open.size);
    req.on('close', () => open.delete(req));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  stack = await startStack({
    orderTimeout: '60s',
    env: { WORKER_ACTIVITY_CONCURRENCY: String(SLOTS), WEBHOOK_CONCURRENCY: String(SLOTS), WEBHOOK_TIMEOUT: '30s' },
  });
});
afterAll(async () => {
  // The held attempts fail at once rather than keep the worker's shutdown waiting.
  receiver?.closeAllConnections();
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function pay(outTradeNo: string, notifyUrl?: string) {
  const created = await stack.createPayment({ outTradeNo, amount: '10.00', subject: 'slots', ...(notifyUrl ? { notifyUrl } : {}) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
}

describe('webhook slots', () => {
  it('settles a payment and a refund on time while a receiver that never answers holds every webhook slot', async () => {
    const refundable = stack.newOrderNo('refundable');
    await pay(refundable);
    await stack.waitForStatus(refundable, 'PAID');

    // Twice as many orders as slots tell the silent receiver they were paid.
    await Promise.all(Array.from({ length: 2 * SLOTS }, (_, i) => pay(stack.newOrderNo(`silent-${i}`), url)));
    await waitFor(`${SLOTS} webhook attempts held open`, () => (open.size >= SLOTS ? true : undefined), { timeoutMs: 20_000 });

    const meanwhile = stack.newOrderNo('meanwhile');
    await pay(meanwhile);
    await stack.waitForStatus(meanwhile, 'PAID', 5_000);
    const refund = await stack.refund(refundable, { outRequestNo: 'while-held', amount: '4.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    await stack.waitForRefund(refundable, 'while-held', 'SUCCEEDED', 5_000);

    // All of that while the receiver still held its attempts, never more at once than the slots.
    expect(open.size).toBe(SLOTS);
    expect(mostOpen).toBe(SLOTS);
  }, 60_000);
});
