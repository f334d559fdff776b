// The merchant CLI's test loop against a whole engine: `pay` pays through the simulator, `trigger`
// makes events happen, `listen` forwards them from the events feed to a local receiver signed with
// the listen secret, and the webhook endpoint commands round-trip through the API.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorQrCode } from '../cli/simulator.js';
import { verifyWebhookSignature } from '../lib/merchants/signing.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

let stack: Stack;
let dataDir: string;

/** A webhook receiver on 127.0.0.1 that keeps every request, raw body included. */
interface Receiver {
  url: string;
  hooks: { headers: IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}
async function startReceiver(): Promise<Receiver> {
  const hooks: Receiver['hooks'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    hooks,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

beforeAll(async () => {
  // Long enough for a CLI started after the order was created to pay it.
  stack = await startStack({ orderTimeout: '2m' });
  dataDir = mkdtempSync(join(tmpdir(), 'durapay-cli-loop-'));
});
afterAll(async () => {
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The CLI as a merchant runs it, signed as the stack's merchant, with a data folder of its own. */
function spawnCli(args: string[]): ChildProcessWithoutNullStreams {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DURAPAY_')));
  return spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    cwd: ROOT,
    env: {
      ...base,
      DURAPAY_API_URL: stack.api.url,
      DURAPAY_MERCHANT_ID: stack.merchant.id,
      DURAPAY_MERCHANT_SECRET: stack.merchant.secret,
      DURAPAY_DATA_DIR: dataDir,
    },
  });
}

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if ((stdout + stderr).includes(stack.merchant.secret)) throw new Error('the CLI printed the merchant secret');
  return { code, stdout, stderr };
}

/** --json: one document on stdout. */
async function cliJson(...args: string[]): Promise<any> {
  const run = await cli(...args, '--json');
  expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
  expect(run.stdout.trim().split('\n'), args.join(' ')).toHaveLength(1);
  return JSON.parse(run.stdout);
}

describe('pay', () => {
  it('pays an AWAITING_PAYMENT order through the simulator and prints it PAID', async () => {
    const no = stack.newOrderNo('cli-pay');
    expect((await stack.createPayment({ outTradeNo: no, amount: '3.20', subject: 'tea' })).status).toBe(201);
    const paid = await cliJson('pay', no);
    expect(paid).toMatchObject({ outTradeNo: no, status: 'PAID', paidAmount: '3.20' });
    expect((await stack.getPayment(no)).body.status).toBe('PAID');

    const again = await cli('pay', no);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`order ${no} is PAID; only an AWAITING_PAYMENT order can be paid`);
  });

  it("knows the simulator's QR codes from the real Alipay's and from other servers", async () => {
    const no = stack.newOrderNo('cli-check');
    const order = (await stack.createPayment({ outTradeNo: no, amount: '0.50', subject: 'tea' })).body;
    expect(await simulatorQrCode(order.qrCode)).toEqual({ ok: true, simulatorUrl: stack.sim.url });
    // The real Alipay's: refused without asking it anything.
    const never = (async () => {
      throw new Error('fetched');
    }) as unknown as typeof fetch;
    expect(await simulatorQrCode('https://qr.alipay.com/bax08431qnpzjqcx4yhc0001', never)).toMatchObject({ ok: false, reason: expect.stringContaining("the real Alipay's") });
    // A server that looks like one (…/qr/<token>) but is not a simulator: the API itself.
    expect(await simulatorQrCode(`${stack.api.url}/qr/abc`)).toMatchObject({ ok: false, reason: expect.stringContaining('is not an Alipay simulator') });
    expect(await simulatorQrCode(undefined)).toMatchObject({ ok: false });
    await stack.cancelPayment(no);
  });
});

describe('trigger and listen', () => {
  let receiver: Receiver;
  let listener: ChildProcessWithoutNullStreams;
  let lines: any[] = [];
  let listenStderr = '';
  let listenSecret: string;
  let listenClosed: Promise<number | null>;

  beforeAll(async () => {
    receiver = await startReceiver();
    listener = spawnCli(['listen', '--forward-to', receiver.url, '--json']);
    let buffered = '';
    listener.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const complete = buffered.split('\n');
      buffered = complete.pop()!;
      lines.push(...complete.filter(Boolean).map((line) => JSON.parse(line)));
    });
    listener.stderr.on('data', (chunk: Buffer) => (listenStderr += chunk.toString()));
    listenClosed = new Promise((resolve) => listener.on('close', resolve));
    const ready = await waitFor('listen to be ready', () => lines.find((line) => line.ready), { timeoutMs: 30_000 });
    expect(ready.ready).toMatchObject({ forwardTo: receiver.url, events: ['*'], listenSecret: expect.stringMatching(/^whsec_/) });
    listenSecret = ready.ready.listenSecret;
  }, 60_000);

  afterAll(async () => {
    listener?.kill('SIGKILL');
    await receiver?.close();
  });

  /** The events listen forwarded for one order, as the receiver got them (body verified first). */
  async function forwardedFor(outTradeNo: string, types: string[]) {
    return waitFor(
      `${types.join(', ')} of ${outTradeNo} forwarded`,
      () => {
        const mine = receiver.hooks.filter((hook) => JSON.parse(hook.body).data?.outTradeNo === outTradeNo);
        const got = mine.map((hook) => JSON.parse(hook.body).type as string);
        return types.every((type) => got.includes(type)) ? mine : undefined;
      },
      { timeoutMs: 30_000 },
    );
  }

  it('trigger payment.paid fires payment.paid, which listen forwards signed with the listen secret', async () => {
    const triggered = await cliJson('trigger', 'payment.paid');
    expect(triggered).toMatchObject({ type: 'payment.paid', status: 'PAID', steps: ['created', 'paid'] });
    expect(triggered.outTradeNo).toMatch(/^trigger-payment-paid-[0-9a-f]{8}$/);
    const amount = Number(triggered.order.amount);
    expect(amount >= 0.01 && amount <= 1).toBe(true);

    const [hook] = await forwardedFor(triggered.outTradeNo, ['payment.paid']);
    const body = JSON.parse(hook!.body);
    expect(Object.keys(body)).toEqual(['id', 'type', 'apiVersion', 'created', 'data']);
    expect(body).toMatchObject({ type: 'payment.paid', apiVersion: '2026-12-07', data: { outTradeNo: triggered.outTradeNo, status: 'PAID' } });
    expect(hook!.headers['content-type']).toBe('application/json');
    expect(hook!.headers['durapay-event-id']).toBe(body.id);
    // What the merchant's receiver does, with the secret listen printed.
    expect(verifyWebhookSignature(listenSecret, String(hook!.headers['durapay-signature']), hook!.body)).toBe(true);
    expect(verifyWebhookSignature(stack.merchant.webhookSecret, String(hook!.headers['durapay-signature']), hook!.body)).toBe(false);

    const line = lines.find((l) => l.event?.id === body.id);
    expect(line).toEqual({ event: body, forward: { status: 200 } });
  });

  it('trigger payment.closed cancels its order, and says what it did', async () => {
    const run = await cli('trigger', 'payment.closed');
    expect(run.code, run.stderr).toBe(0);
    const outTradeNo = /^created (trigger-payment-closed-[0-9a-f]{8}) \(\d\.\d\d yuan\): AWAITING_PAYMENT$/m.exec(run.stdout)?.[1];
    expect(outTradeNo, run.stdout).toBeDefined();
    expect(run.stdout).toContain(`cancelled ${outTradeNo}: CLOSED`);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe(`triggered payment.closed: order ${outTradeNo} is CLOSED`);
    await forwardedFor(outTradeNo!, ['payment.closed']);
  });

  it('trigger refund.succeeded refunds part of a paid order: refund.succeeded and payment.partially_refunded', async () => {
    const triggered = await cliJson('trigger', 'refund.succeeded');
    expect(triggered).toMatchObject({ status: 'PARTIALLY_REFUNDED', refund: { status: 'SUCCEEDED' } });
    const hooks = await forwardedFor(triggered.outTradeNo, ['payment.paid', 'refund.succeeded', 'payment.partially_refunded']);
    for (const hook of hooks) expect(verifyWebhookSignature(listenSecret, String(hook.headers['durapay-signature']), hook.body)).toBe(true);
  });

  it('trigger payment.refunded refunds all of it', async () => {
    const triggered = await cliJson('trigger', 'payment.refunded');
    expect(triggered).toMatchObject({ status: 'REFUNDED', refund: { status: 'SUCCEEDED', amount: triggered.order.amount } });
    await forwardedFor(triggered.outTradeNo, ['refund.succeeded', 'payment.refunded']);
  });

  it('forwards each event once, and listen stops cleanly on SIGINT', async () => {
    // Every forward attempted has its line (the receiver may answer before the line is printed).
    await waitFor('a line for every forward', () => (lines.filter((l) => l.event).length >= receiver.hooks.length ? true : undefined));
    const ids = receiver.hooks.map((hook) => JSON.parse(hook.body).id);
    const printed = lines.filter((l) => l.event).map((l) => l.event.id);
    const detail = JSON.stringify({ received: receiver.hooks.map((h) => [JSON.parse(h.body).id, JSON.parse(h.body).type]), printed, listenStderr });
    expect(new Set(ids).size, detail).toBe(ids.length);
    expect(printed, detail).toEqual(ids);
    // The feed itself never gave an event twice (listen would have said so).
    expect(listenStderr).not.toContain('"repeated"');
    listener.kill('SIGINT');
    expect(await listenClosed, listenStderr).toBe(0);
  });

  it('trigger refuses an event type it cannot drive', async () => {
    const run = await cli('trigger', 'payment.late_payment');
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('supported: payment.paid, payment.closed, refund.succeeded, payment.partially_refunded, payment.refunded');
  });
});

describe('webhook endpoint commands', () => {
  it('create, list, get, update, test, deliveries, resend, rotate-secret and delete round-trip through the API', async () => {
    const receiver = await startReceiver();
    try {
      const created = await cliJson('endpoint-create', '--url', receiver.url, '--events', 'payment.paid,refund.succeeded', '--description', 'CLI test');
      expect(created).toMatchObject({ url: receiver.url, events: ['payment.paid', 'refund.succeeded'], description: 'CLI test', enabled: true, secret: expect.stringMatching(/^whsec_/) });
      const id: string = created.id;
      expect(id).toMatch(/^we_[0-9a-f]{24}$/);

      const list = await cliJson('endpoint-list');
      expect(list.endpoints.map((e: { id: string }) => e.id)).toContain(id);
      expect(JSON.stringify(list)).not.toContain(created.secret);
      expect(await cliJson('endpoint-get', id)).toMatchObject({ id, enabled: true });

      expect(await cliJson('endpoint-update', id, '--disable')).toMatchObject({ id, enabled: false });
      expect(await cliJson('endpoint-update', id, '--enable', '--events', '*', '--description', 'all of them')).toMatchObject({ id, enabled: true, events: ['*'], description: 'all of them' });

      const ping = await cliJson('endpoint-test', id);
      expect(ping).toMatchObject({ id: expect.stringMatching(/^evt_/), type: 'ping' });
      const hook = await waitFor('the ping', () => receiver.hooks.find((h) => JSON.parse(h.body).id === ping.id));
      expect(verifyWebhookSignature(created.secret, String(hook.headers['durapay-signature']), hook.body)).toBe(true);
      expect(JSON.parse(hook.body)).toMatchObject({ type: 'ping', data: { endpointId: id } });

      const deliveries = await waitFor('the ping delivered', async () => {
        const answer = await cliJson('endpoint-deliveries', id, '--limit', '5');
        return answer.deliveries.find((d: { eventId: string; status: string }) => d.eventId === ping.id && d.status === 'delivered') ? answer : undefined;
      });
      expect(deliveries.deliveries.length).toBeLessThanOrEqual(5);
      expect(await cliJson('endpoint-resend', id, ping.id)).toMatchObject({ eventId: ping.id, status: 'pending' });

      const rotated = await cliJson('endpoint-rotate-secret', id, '--grace-seconds', '60');
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(created.secret);
      expect(new Date(rotated.previousSecretExpiresAt).getTime()).toBeGreaterThan(Date.now());

      expect(await cliJson('endpoint-delete', id)).toEqual({ id, deleted: true });
      const gone = await cli('endpoint-get', id, '--json');
      expect(gone.code).toBe(1);
      expect(gone.stdout).toBe('');
      expect(JSON.parse(gone.stderr)).toMatchObject({ error: { code: 'NOT_FOUND', httpStatus: 404 } });
    } finally {
      await receiver.close();
    }
  });
});
