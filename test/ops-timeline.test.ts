// GET /ops/payments/:paymentId/timeline and `durapay ops-timeline`: one order's story from the
// ledger, the webhook attempts, the Alipay calls in its workflows' histories and the
// reconciliation findings, in time order, against a real API, worker, Temporal and PostgreSQL.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msToTs } from '@temporalio/common/lib/time.js';
import { startApiServer } from '../api/server.js';
import { PAYMENT_WORKFLOW_TYPE } from '../lib/payments/payment.js';
import { loadApiConfig } from '../lib/platform/config.js';
import { createLogger } from '../lib/platform/logger.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const UI = 'http://127.0.0.1:8233';

interface Entry {
  at: string;
  source: 'ledger' | 'webhook' | 'alipay' | 'reconciliation';
  type: string;
  summary: string;
  [field: string]: unknown;
}

let stack: Stack;
let client: Client;
let receiver: Server;
let notifyUrl: string;
const received: string[] = [];

beforeAll(async () => {
  // The merchant's notifyUrl: takes every webhook.
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['durapay-event-id'] ?? ''));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  stack = await startStack({ orderTimeout: '60s', pollLadder: '1s', env: { TEMPORAL_UI_URL: UI } });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

const timelinePath = (paymentId: string) => `/ops/payments/${encodeURIComponent(paymentId)}/timeline`;
const timeline = (paymentId: string, token?: string | null) => stack.ops('GET', timelinePath(paymentId), undefined, token);

/** Runs `durapay ops-timeline` as an operator runs it, against the stack's API. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DURAPAY_API_URL: stack.api.url, OPS_TOKEN: stack.opsToken, DURAPAY_DATA_DIR: '/nonexistent' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe("an order's timeline", () => {
  let paymentId: string;
  let outTradeNo: string;
  let entries: Entry[];
  let body: any;

  it('tells a paid, partly refunded QR order in time order: ledger, Alipay calls, webhook attempts', async () => {
    outTradeNo = stack.newOrderNo('timeline');
    paymentId = stack.workflowId(outTradeNo);
    const created = await stack.createPayment({ outTradeNo, amount: '10.00', subject: 'timeline tea', notifyUrl });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const refund = await stack.refund(outTradeNo, { outRequestNo: 'r1', amount: '3.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    await stack.waitForRefund(outTradeNo, 'r1', 'SUCCEEDED');

    // The webhooks of the payment and of the refund have reached the notifyUrl.
    const answer = await waitFor('the delivered webhooks in the timeline', async () => {
      const got = await timeline(paymentId);
      const delivered = (got.body.entries as Entry[] | undefined)?.filter((e) => e.source === 'webhook' && e.outcome === 'delivered').map((e) => e.type) ?? [];
      return delivered.includes('payment.paid') && delivered.includes('refund.succeeded') ? got : undefined;
    }, { timeoutMs: 30_000 });
    expect(answer.status).toBe(200);
    body = answer.body;
    entries = body.entries;

    const description = await client.workflow.getHandle(paymentId).describe();
    expect(body).toMatchObject({
      paymentId,
      outTradeNo,
      merchantId: stack.merchant.id,
      status: 'PARTIALLY_REFUNDED',
      amount: '10.00',
      workflowId: paymentId,
      traceId: null,
      historyAvailable: true,
      temporalUiUrl: `${UI}/namespaces/${stack.config.temporal.namespace}/workflows/${encodeURIComponent(paymentId)}/${description.runId}/history`,
    });
    const refundWorkflow = `refund:${stack.appId}:${stack.alipayNo(outTradeNo)}:r1`;
    // Alipay's notify of the refund came after the payment workflow ended: a late-notify workflow took it.
    expect(body.workflows).toEqual([
      expect.objectContaining({ workflowId: paymentId, kind: 'payment', historyAvailable: true, runId: description.runId }),
      expect.objectContaining({ workflowId: refundWorkflow, kind: 'refund', historyAvailable: true, status: 'COMPLETED' }),
      ...body.workflows.slice(2).map(() => expect.objectContaining({ kind: 'late-notify', historyAvailable: true })),
    ]);

    // Time order, never backwards.
    const times = entries.map((e) => Date.parse(e.at));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);

    // The ledger: created, paid, the refund asked for and done.
    const ledger = entries.filter((e) => e.source === 'ledger').map((e) => e.type);
    expect(ledger).toEqual(expect.arrayContaining(['created', 'qr_issued', 'paid', 'refund_requested', 'refund_succeeded']));
    expect(ledger.indexOf('created')).toBeLessThan(ledger.indexOf('paid'));
    expect(ledger.indexOf('paid')).toBeLessThan(ledger.indexOf('refund_succeeded'));
    const requested = entries.find((e) => e.source === 'ledger' && e.type === 'refund_requested')!;
    expect(requested.data).toMatchObject({ outRequestNo: 'r1', amount: '3.00' });
    expect(requested.data).not.toHaveProperty('amountFen');

    // The Alipay calls, from the payment workflow's and the refund workflow's histories.
    const precreate = entries.find((e) => e.source === 'alipay' && e.type === 'alipay.trade.precreate');
    expect(precreate).toMatchObject({ workflowId: paymentId, activity: 'openOrder', outcome: 'completed', result: 'qr_code_issued', attempt: 1 });
    const refundCall = entries.find((e) => e.source === 'alipay' && e.type === 'alipay.trade.refund');
    expect(refundCall).toMatchObject({ workflowId: refundWorkflow, activity: 'refundTrade', outcome: 'completed', result: 'succeeded' });
    expect(Date.parse(refundCall!.finishedAt as string)).toBeGreaterThanOrEqual(Date.parse(refundCall!.at));
    // The refund call comes before the refund's success is recorded.
    expect(entries.indexOf(refundCall!)).toBeLessThan(entries.findIndex((e) => e.type === 'refund_succeeded'));

    // The webhook attempts at the notifyUrl, with their outcome.
    const paidHook = entries.find((e) => e.source === 'webhook' && e.type === 'payment.paid')!;
    expect(paidHook).toMatchObject({ endpointId: null, attempt: 1, outcome: 'delivered', httpStatus: 200 });
    expect(paidHook.eventId).toMatch(/^evt_[0-9a-f]{24}$/);
    expect(received).toContain(paidHook.eventId);
    expect(entries.indexOf(paidHook)).toBeGreaterThan(entries.findIndex((e) => e.source === 'ledger' && e.type === 'paid'));
    for (const entry of entries) expect(entry.summary.length, JSON.stringify(entry)).toBeGreaterThan(0);
  }, 60_000);

  it('says nothing secret', () => {
    const text = JSON.stringify(body);
    const { alipay, masterKey } = stack.config;
    const pem = alipay.privateKey.split('\n').filter((line) => line.length >= 32 && !line.startsWith('-----'));
    const secrets: [string, string][] = [
      ['the app private key', alipay.privateKey],
      ...pem.map((line, i): [string, string] => [`the app private key (line ${i + 1})`, line]),
      ['the merchant secret', stack.merchant.secret],
      ['the webhook secret', stack.merchant.webhookSecret],
      ['the ops token', stack.opsToken],
      ['the master key (hex)', masterKey!.toString('hex')],
      ['the master key (base64)', masterKey!.toString('base64')],
    ];
    expect(secrets.filter(([, secret]) => text.includes(secret)).map(([name]) => name)).toEqual([]);
    // No signature, key, buyer or QR code field anywhere.
    expect(text).not.toMatch(/"[^"]*(sign|secret|buyer|qr_?code|auth_?code|private)[^"]*":/i);
  });

  it('lists a reconciliation finding of the order', async () => {
    await stack.pool.query(
      `INSERT INTO reconciliation_mismatches (app_id, bill_date, run_id, type, payment_id, out_trade_no, out_request_no, alipay_trade_no,
                                              local_amount_fen, gateway_amount_fen, detail, dispatched_at)
       VALUES ($1, '2025-01-30', 'run-timeline', 'refund_mismatch', $2, $3, 'r1', NULL, 300, 200, 'the bill lists the refund with 2.00', now())`,
      [stack.appId, paymentId, stack.alipayNo(outTradeNo)],
    );
    const answer = await timeline(paymentId);
    expect(answer.status).toBe(200);
    const found = (answer.body.entries as Entry[]).filter((e) => e.source === 'reconciliation');
    expect(found).toEqual([
      expect.objectContaining({
        type: 'refund_mismatch',
        billDate: '2025-01-30',
        runId: 'run-timeline',
        outRequestNo: 'r1',
        localAmount: '3.00',
        gatewayAmount: '2.00',
        detail: 'the bill lists the refund with 2.00',
      }),
    ]);
    // The latest entry: the finding was handed over just now.
    expect(answer.body.entries.at(-1)).toEqual(found[0]);
    // No findings workflow ran for it (the order's own workflow had it): none is listed.
    expect(answer.body.workflows.map((w: { kind: string }) => w.kind)).not.toContain('reconciliation');
  });

  it('is printed by `durapay ops-timeline`, and as the raw answer with --json', async () => {
    const people = await cli(['ops-timeline', paymentId]);
    expect(people.code, people.stderr).toBe(0);
    expect(people.stdout).toContain(`order ${outTradeNo} of ${stack.merchant.id}: PARTIALLY_REFUNDED, 10.00`);
    expect(people.stdout).toContain(`${UI}/namespaces/`);
    expect(people.stdout).toMatch(/\n\S+Z {2}ledger +created: 10\.00\n/);
    expect(people.stdout).toMatch(/alipay +alipay\.trade\.precreate: completed/);
    expect(people.stdout).toMatch(/webhook +payment\.paid to notifyUrl, attempt 1: delivered/);
    expect(people.stdout).toMatch(/reconciliation +refund_mismatch/);
    expect(people.stdout + people.stderr).not.toContain(stack.opsToken);

    const json = await cli(['ops-timeline', paymentId, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ paymentId, outTradeNo, entries: expect.any(Array) });

    const missing = await cli(['ops-timeline', `payment:${stack.appId}:nobody_1`, '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toMatchObject({ error: { code: 'NOT_FOUND', httpStatus: 404 } });
  }, 30_000);
});

describe('the trace and a forgotten history', () => {
  it("reads the trace id from the payment workflow's memo", async () => {
    const outTradeNo = stack.newOrderNo('timeline-trace');
    const paymentId = stack.workflowId(outTradeNo);
    const traceId = randomBytes(16).toString('hex');
    const handle = await client.workflow.start(PAYMENT_WORKFLOW_TYPE, {
      workflowId: paymentId,
      taskQueue: stack.config.temporal.taskQueue,
      args: [stack.paymentWorkflowInput(outTradeNo)],
      memo: { traceId },
    });
    try {
      await waitFor(`${outTradeNo} to have its QR code`, async () => ((await stack.events(outTradeNo)).some((e) => e.type === 'qr_issued') ? true : undefined));
      const live = await timeline(paymentId);
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({ traceId, historyAvailable: true, status: 'AWAITING_PAYMENT' });
      expect(live.body.workflows[0]).toMatchObject({ kind: 'payment', status: 'RUNNING', runId: handle.firstExecutionRunId });
    } finally {
      await handle.terminate('the test is done with it');
    }
  }, 30_000);

  it('answers from the record once Temporal has forgotten the workflows (retention), and says so', async () => {
    const outTradeNo = stack.newOrderNo('timeline-forgotten');
    const paymentId = stack.workflowId(outTradeNo);
    expect((await stack.createPayment({ outTradeNo, amount: '2.00', subject: 'forgotten' })).status).toBe(201);
    // An API on a namespace that has never heard of the order: what it sees once retention has passed.
    const namespace = `forgotten-${randomBytes(4).toString('hex')}`;
    await client.connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    await waitFor(`namespace ${namespace}`, async () => {
      await client.connection.workflowService.describeNamespace({ namespace });
      return true;
    });
    const api = await startApiServer(loadApiConfig({ ...stack.engineEnv(), TEMPORAL_NAMESPACE: namespace, PORT: '0', TEMPORAL_UI_URL: UI }), createLogger('test', 'silent'));
    try {
      const answer = await fetch(`${api.url}${timelinePath(paymentId)}`, { headers: { authorization: `Bearer ${stack.opsToken}` } });
      const body = (await answer.json()) as any;
      expect(answer.status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({
        paymentId,
        status: 'AWAITING_PAYMENT',
        traceId: null,
        historyAvailable: false,
        temporalUiUrl: `${UI}/namespaces/${namespace}/workflows?query=${encodeURIComponent(`WorkflowId="${paymentId}"`)}`,
        workflows: [{ workflowId: paymentId, kind: 'payment', runId: null, status: null, historyAvailable: false, temporalUiUrl: expect.any(String) }],
      });
      expect(new Set((body.entries as Entry[]).map((e) => e.source))).toEqual(new Set(['ledger']));
      expect((body.entries as Entry[]).map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'qr_issued']));
    } finally {
      await api.close();
      await stack.cancelPayment(outTradeNo);
    }
  }, 30_000);
});

describe('refusals', () => {
  it('answers 404 NOT_FOUND for an unknown order, with the request id', async () => {
    const answer = await timeline(`payment:${stack.appId}:nobody_1`);
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatchObject({ code: 'NOT_FOUND', requestId: expect.any(String) });
  });

  it('names the field and the rule of a bad paymentId or an unknown parameter', async () => {
    const bad = await timeline('not-a-payment');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: [{ field: 'paymentId', rule: expect.stringMatching(/^must be a payment id/) }] });
    const extra = await stack.ops('GET', `${timelinePath(`payment:${stack.appId}:nobody_1`)}?since=1`);
    expect(extra.status).toBe(400);
    expect(extra.body.error.details).toEqual([{ field: '(body)', rule: 'unknown field(s): since' }]);
  });

  it('refuses a request without the ops token, or with another, as every /ops route', async () => {
    for (const token of [null, 'x'.repeat(64)]) {
      const answer = await timeline(`payment:${stack.appId}:nobody_1`, token);
      expect(answer.status).toBe(401);
      expect(answer.body.error).toMatchObject({ code: 'OPS_UNAUTHORIZED', requestId: expect.any(String) });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="durapay-ops"');
    }
  });
});
