// Merchants name their notifyUrl, so under WEBHOOK_PRIVATE_TARGETS=deny (the default) the worker
// never posts into the network it runs in: a literal private address is refused at create, and a
// name that resolves to one is refused at delivery, recorded and retried like any failure. The
// receiver here listens on 127.0.0.1 and must never hear a thing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
let receiver: Server;
let port: number;
const heard: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    heard.push(`${req.method} ${req.url}`);
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  stack = await startStack({
    orderTimeout: '60s',
    env: { WEBHOOK_PRIVATE_TARGETS: 'deny', WEBHOOK_RETRY_SCHEDULE: Array(20).fill('200ms').join(','), WEBHOOK_TIMEOUT: '2s' },
  });
});
afterAll(async () => {
  await stack?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

type Attempt = { statusCode: number | null; error: string | null; delivered: boolean; result: string };

async function paidEvent(outTradeNo: string, until: (attempts: Attempt[]) => boolean) {
  return waitFor(
    'payment.paid attempts',
    async () => {
      const answer = await stack.apiCall('GET', `/v1/payments/${outTradeNo}/events`);
      const paid = answer.body.events?.find((e: { type: string }) => e.type === 'payment.paid');
      return paid && until(paid.attempts) ? paid : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

describe('webhook targets under WEBHOOK_PRIVATE_TARGETS=deny', () => {
  it.each([
    ['loopback', 'http://127.0.0.1:8080/hooks'],
    ['loopback written as a number', 'http://2130706433/hooks'],
    ['IPv6 loopback', 'http://[::1]/hooks'],
    ['RFC 1918 10/8', 'http://10.0.0.5:8080/hooks'],
    ['RFC 1918 172.16/12', 'https://172.20.1.1/hooks'],
    ['RFC 1918 192.168/16', 'http://192.168.1.10/hooks'],
    ['the cloud metadata service (link-local)', 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 link-local', 'http://[fe80::1]/hooks'],
    ['unique-local', 'http://[fd12:3456::1]/hooks'],
    ['carrier-grade NAT', 'http://100.64.0.1/hooks'],
    ['unspecified', 'http://0.0.0.0:8080/hooks'],
    ['IPv6 unspecified', 'http://[::]/hooks'],
    ['an IPv4-mapped private address', 'http://[::ffff:10.0.0.5]/hooks'],
  ])('refuses a notifyUrl at %s with a 400 naming notifyUrl, and creates nothing', async (_what, notifyUrl) => {
    const outTradeNo = stack.newOrderNo('private');
    const answer = await stack.createPayment({ outTradeNo, amount: '1.00', subject: 'ssrf', notifyUrl });
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    expect(answer.body.error.details).toEqual([{ field: 'notifyUrl', rule: expect.stringContaining('WEBHOOK_PRIVATE_TARGETS=deny') }]);
    expect((await stack.getPayment(outTradeNo)).status).toBe(404);
  });

  it('refuses at delivery a name that resolves to loopback: recorded as target refused, retried, never sent', async () => {
    const outTradeNo = stack.newOrderNo('by-name');
    const created = await stack.createPayment({ outTradeNo, amount: '2.00', subject: 'ssrf by name', notifyUrl: `http://localhost:${port}/hooks` });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'PAID');

    const paid = await paidEvent(outTradeNo, (attempts) => attempts.length >= 3 || attempts.some((a) => a.delivered));
    expect(heard).toEqual([]);
    expect(paid.status).toBe('pending');
    for (const attempt of paid.attempts as Attempt[]) {
      expect(attempt).toMatchObject({ statusCode: null, delivered: false, error: 'target refused', result: 'refused' });
    }

    // A resend is checked the same way.
    const before = (await paidEvent(outTradeNo, () => true)).attempts.length;
    expect((await stack.apiCall('POST', `/v1/events/${paid.id}/resend`)).status).toBe(202);
    const after = await paidEvent(outTradeNo, (attempts) => attempts.length > before);
    expect((after.attempts as Attempt[]).every((a) => a.result === 'refused')).toBe(true);
    expect(heard).toEqual([]);
  });
});
