// PostgreSQL goes away under a running durapay: black-holed (every process SIGSTOPped, so sockets
// connect but nothing ever answers) or stopped (connections refused). The API must answer
// 503 TRY_AGAIN promptly instead of hanging or answering 500, and PostgreSQL writes in activities
// must fail in bounded time so Temporal retries them. This file runs its own PostgreSQL cluster:
// freezing or stopping the shared one would break every test file running beside it.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLedgerActivities } from '../activities/ledger.js';
import { PRECREATE_GIVE_UP } from '../activities/order-opening.js';
import { signRequest } from '../lib/merchants/signing.js';
import { createPaymentUpdate, PAYMENT_WORKFLOW_TYPE } from '../lib/payments/payment.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { freezePostgres, startEmbeddedPostgres, type RunningPostgres } from '../scripts/embedded/postgres.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

// The stack runs with 1 s PostgreSQL timeouts, so an outage should surface within ~2 s. The bound
// leaves room for a loaded CI machine and is still far from a hang; a request that gets no answer
// at all is abandoned at HANG_MS so the test fails instead of waiting for vitest's own timeout.
const PROMPT_MS = 8_000;
const HANG_MS = 15_000;

let workDir: string;
let dataDir: string;
let port: number;
let postgres: RunningPostgres | undefined;
let stack: Stack;
let thawPostgres: (() => void) | undefined;

beforeAll(async () => {
  // As root, postgres runs as the `postgres` OS user, who must be able to enter the directory.
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'durapay-outage-'));
  await fs.chmod(workDir, 0o755);
  dataDir = path.join(workDir, 'pg');
  // Persistent, so it can be stopped and started again on the same data.
  postgres = await startEmbeddedPostgres({ dataDir, persistent: true });
  port = Number(new URL(postgres.url).port);
  stack = await startStack({
    postgresUrl: postgres.url,
    // Orders wait, and no poll comes before the test is over: a notify is the only way to PAID.
    orderTimeout: '10m',
    pollLadder: '10m',
    databaseConnectTimeout: '1s',
    databaseStatementTimeout: '1s',
  });
});

afterAll(async () => {
  thawPostgres?.(); // never leave a frozen cluster behind, whatever failed
  await stack?.stop();
  await postgres?.stop();
  if (workDir) await fs.rm(workDir, { recursive: true, force: true });
});

async function stopPostgres(): Promise<void> {
  await postgres!.stop();
  postgres = undefined;
}

/** Starts the same cluster again on the same port, as a restarted server would come back. */
async function restartPostgres(): Promise<void> {
  if (postgres) return;
  postgres = await startEmbeddedPostgres({ dataDir, persistent: true, port });
}

/** Freezes this file's cluster (every process SIGSTOPped); returns the function that thaws it. */
async function freezeOurPostgres(): Promise<() => void> {
  const frozen = await freezePostgres(dataDir);
  const thaw = () => {
    frozen.thaw();
    thawPostgres = undefined;
  };
  thawPostgres = thaw;
  expect(frozen.pids.length).toBeGreaterThan(1); // the postmaster and at least its background workers
  return thaw;
}

interface TimedAnswer {
  status: number;
  body: any;
  ms: number;
}

/** One API request, timed; one that does not answer within HANG_MS fails the test as a hang. */
async function timedCall(method: string, urlPath: string, body?: unknown): Promise<TimedAnswer> {
  const started = Date.now();
  let res: Response;
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    res = await fetch(`${stack.api.url}${urlPath}`, {
      method,
      headers: {
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        ...(urlPath.startsWith('/v1') ? signRequest(stack.merchant.id, stack.merchant.secret, { method, pathWithQuery: urlPath, body: payload }) : {}),
      },
      body: payload,
      signal: AbortSignal.timeout(HANG_MS),
    });
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`${method} ${urlPath} hung: no answer within ${HANG_MS} ms`);
    throw err;
  }
  const text = await res.text();
  const ms = Date.now() - started;
  console.log(`[timing] ${method} ${urlPath}: ${res.status} in ${ms} ms`);
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed, ms };
}

/** A merchant-facing 503 that says the same request can be retried, answered promptly. */
function expectTryAgain(answer: TimedAnswer, what: string): void {
  expect(answer.status, `${what}: ${JSON.stringify(answer.body)}`).toBe(503);
  expect(answer.body, what).toMatchObject({ error: { code: 'TRY_AGAIN', message: expect.stringMatching(/retried safely/) } });
  expect(answer.body.error, what).toHaveProperty('details');
  expect(answer.ms, `${what} answered in ${answer.ms} ms`).toBeLessThan(PROMPT_MS);
}

async function createOrder(label: string, amount = '3.21') {
  const outTradeNo = stack.newOrderNo(label);
  const created = await stack.createPayment({ outTradeNo, amount, subject: `outage test ${label}` });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return outTradeNo;
}

describe('PostgreSQL black-holed (every process SIGSTOPped)', () => {
  it('answers 503 TRY_AGAIN promptly on GET, create, cancel and /readyz, and 200 again once PostgreSQL answers', async () => {
    const outTradeNo = await createOrder('frozen');
    // A GET now leaves the API a pooled connection: the frozen server is met on a live socket
    // (query timeout) as well as by new connections (connect timeout).
    expect((await timedCall('GET', `/v1/payments/${outTradeNo}`)).status).toBe(200);
    const newOrder = { outTradeNo: stack.newOrderNo('frozen-create'), amount: '4.56', subject: 'created while PostgreSQL is frozen' };

    const thaw = await freezeOurPostgres();
    try {
      expectTryAgain(await timedCall('GET', `/v1/payments/${outTradeNo}`), 'GET');
      expectTryAgain(await timedCall('POST', `/v1/payments/${outTradeNo}/cancel`), 'cancel');
      expectTryAgain(await timedCall('POST', '/v1/payments', newOrder), 'create');
      const ready = await timedCall('GET', '/readyz');
      expect(ready.status).toBe(503);
      // Which part is down, never the driver's message (addresses, ports, what timed out).
      expect(ready.body).toEqual({ status: 'not ready', postgres: 'down', temporal: 'ok' });
      expect(ready.ms).toBeLessThan(PROMPT_MS);
    } finally {
      thaw();
    }

    // The very next request works: nothing stuck was handed back to the pool.
    const read = await timedCall('GET', `/v1/payments/${outTradeNo}`);
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.status).toBe('AWAITING_PAYMENT');
    expect((await timedCall('GET', '/readyz')).status).toBe(200);
    // "Retried safely": the merchant repeats the create until it answers (the workflow's first
    // write is itself retrying on Temporal's back-off), and gets one order, precreated once.
    const retried = await waitFor('the repeated create to answer 201', async () => {
      const answer = await timedCall('POST', '/v1/payments', newOrder);
      if (answer.status === 503) return undefined;
      return answer;
    });
    expect(retried.status, JSON.stringify(retried.body)).toBe(201);
    expect(retried.body).toMatchObject({ outTradeNo: newOrder.outTradeNo, status: 'AWAITING_PAYMENT', amount: '4.56' });
    const precreates = (await stack.ledger(newOrder.outTradeNo)).calls.filter((c: { method: string }) => c.method === 'alipay.trade.precreate');
    expect(precreates).toHaveLength(1);
    for (const order of [outTradeNo, newOrder.outTradeNo]) {
      expect((await stack.cancelPayment(order)).body.status).toBe('CLOSED');
    }
  });

  it('fails a PostgreSQL write in an activity within a bounded time, so Temporal retries it; the retry lands once', async () => {
    const outTradeNo = await createOrder('frozen-write');
    const ledger = createLedgerActivities(stack.pool); // the worker's activities use this pool
    const event = {
      paymentId: stack.workflowId(outTradeNo),
      eventKey: `outage-test:${randomUUID()}`,
      type: 'query_result' as const,
      data: { note: 'written by the PostgreSQL outage test' },
    };
    // Two events in one transaction: the write that opens a transaction and may leave it open.
    const events = [event, { ...event, eventKey: `outage-test:${randomUUID()}` }];
    await stack.pool.query('SELECT 1'); // leaves an idle pooled connection for the write to take

    const thaw = await freezeOurPostgres();
    let outcome: { settled: 'resolved' | 'rejected' | 'hung'; error?: Error; ms: number };
    try {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS)));
      const settled = await Promise.race([
        ledger.recordPaymentEvents(events).then(
          () => 'resolved' as const,
          (error: Error) => ({ error }),
        ),
        hung,
      ]);
      clearTimeout(timer);
      outcome = typeof settled === 'string' ? { settled, ms: Date.now() - started } : { settled: 'rejected', error: settled.error, ms: Date.now() - started };
      console.log(`[timing] recordPaymentEvents while frozen: ${outcome.settled} in ${outcome.ms} ms (${outcome.error?.message ?? ''})`);
    } finally {
      thaw();
    }
    expect(outcome.settled).toBe('rejected');
    expect(outcome.ms).toBeLessThan(PROMPT_MS);

    // The failed attempt's connection was closed, not handed back to the pool: PostgreSQL, thawed,
    // runs the BEGIN it had received and would otherwise keep that transaction open on an idle
    // pooled connection (and the locks it takes) until the pool's idle timeout.
    const observer = new pg.Client({ connectionString: stack.config.databaseUrl });
    await observer.connect();
    try {
      await waitFor(
        'no session of the stack to be left idle in a transaction',
        async () => {
          const { rows } = await observer.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`,
          );
          return rows[0].n === 0 ? true : undefined;
        },
        { timeoutMs: 3_000 },
      );
    } finally {
      await observer.end();
    }

    // Temporal's retry of the same write, now that PostgreSQL answers: it lands, exactly once.
    expect(await ledger.recordPaymentEvents(events)).toEqual({ applied: 2 });
    expect(await ledger.recordPaymentEvents(events)).toEqual({ applied: 0 });
    const written = await stack.events(outTradeNo);
    expect(written.filter((e) => e.data?.note === event.data.note)).toHaveLength(2);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  });
});

describe('PostgreSQL stopped (connections refused)', () => {
  it('answers 503 TRY_AGAIN promptly on GET, create, cancel and /readyz, and 200 once it is back on the same port', async () => {
    const outTradeNo = await createOrder('stopped');
    const urlBefore = postgres!.url;
    await stopPostgres();
    try {
      expectTryAgain(await timedCall('GET', `/v1/payments/${outTradeNo}`), 'GET');
      expectTryAgain(await timedCall('POST', `/v1/payments/${outTradeNo}/cancel`), 'cancel');
      const create = await timedCall('POST', '/v1/payments', {
        outTradeNo: stack.newOrderNo('stopped-create'),
        amount: '7.89',
        subject: 'created while PostgreSQL is stopped',
      });
      expectTryAgain(create, 'create');
      const ready = await timedCall('GET', '/readyz');
      expect(ready.status).toBe(503);
      // Which part is down, never the driver's message (addresses, ports, what timed out).
      expect(ready.body).toEqual({ status: 'not ready', postgres: 'down', temporal: 'ok' });
      expect(ready.ms).toBeLessThan(PROMPT_MS);
    } finally {
      await restartPostgres();
    }
    expect(postgres!.url).toBe(urlBefore);

    const read = await timedCall('GET', `/v1/payments/${outTradeNo}`);
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.status).toBe('AWAITING_PAYMENT');
    expect((await timedCall('GET', '/readyz')).status).toBe(200);
    expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
  });

  it('takes a payment whose notify arrives while PostgreSQL is stopped: Alipay hears success, and the order ends PAID', async () => {
    const outTradeNo = await createOrder('notify-while-stopped', '6.66');
    await stopPostgres();
    try {
      expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
      // The notify needs only Temporal: the workflow holds it until it can write the payment.
      await waitFor(
        'the notify to be answered success while PostgreSQL is stopped',
        async () => {
          const ledger = await stack.ledger(outTradeNo);
          return ledger.notifies.some((n: { answer: string | null }) => n.answer?.trim() === 'success') ? true : undefined;
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      await restartPostgres();
    }
    const paid = await stack.waitForStatus(outTradeNo, 'PAID', 30_000);
    expect(paid).toMatchObject({ status: 'PAID', paidAmount: '6.66', alipayStatus: 'TRADE_SUCCESS' });
    const events = await stack.events(outTradeNo);
    expect(events.find((e) => e.type === 'paid')?.data).toMatchObject({ source: 'notify' });
  });

  it("opens an order once PostgreSQL is back, however many attempts the outage took: only Alipay's own failures count toward giving up on it", async () => {
    const outTradeNo = stack.newOrderNo('opened-after-outage');
    const subject = 'opened after an outage';
    // One transient failure at Alipay once PostgreSQL is back: far below PRECREATE_GIVE_UP on its
    // own, but enough to give up if the attempts lost to PostgreSQL counted too.
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { systemErrors: { count: 1, methods: ['alipay.trade.precreate'] } });
    // A worker whose log tells each failed attempt of the order opening, so the outage lasts for as
    // many attempts as the test needs, whatever the machine's speed.
    let failedOpenings = 0;
    const workflowId = stack.workflowId(outTradeNo);
    await stack.stopWorker();
    const worker = await stack.spawnWorkerProcess({ WORKFLOW_BUNDLE: inject('workflowBundlePath') }, (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'Activity failed' && entry.activityType === 'openOrder' && entry.workflowId === workflowId) failedOpenings += 1;
      } catch {
        // not a log line
      }
    });
    const client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
    try {
      await stopPostgres();
      let restarting: number;
      try {
        // Started on Temporal as the API starts it: with PostgreSQL stopped, the API cannot even
        // authenticate a merchant, so the outage that matters meets a create already running.
        const input = stack.paymentWorkflowInput(outTradeNo, { amountFen: 321, subject });
        await client.workflow.start(PAYMENT_WORKFLOW_TYPE, { workflowId, taskQueue: stack.config.temporal.taskQueue, args: [input] });
        await waitFor(
          `more than ${PRECREATE_GIVE_UP.attempts} attempts of the order opening to fail on the stopped PostgreSQL`,
          () => (failedOpenings > PRECREATE_GIVE_UP.attempts ? true : undefined),
          { timeoutMs: 30_000 },
        );
      } finally {
        restarting = Date.now();
        await restartPostgres();
      }

      // The create's answer: the QR code, never PRECREATE_FAILED blaming Alipay for our outage.
      const answer = await client.workflow.getHandle(workflowId).executeUpdate(createPaymentUpdate, { args: [{ amountFen: 321, subject }] });
      expect(answer, JSON.stringify(answer)).toMatchObject({ status: 'AWAITING_PAYMENT', qrCode: expect.any(String) });
      const read = await stack.getPayment(outTradeNo);
      expect(read.body).toMatchObject({ status: 'AWAITING_PAYMENT', qrCode: answer.qrCode, reason: null });
      const events = await stack.events(outTradeNo);
      expect(events.map((e) => e.type)).toEqual(['created', 'qr_issued']);
      // Alipay heard of the order only once PostgreSQL was back: the precreate that failed, and
      // the one that answered.
      const calls = (await stack.simCall('GET', '/sim/calls')).body as { at: string; method: string; outTradeNo: string; subCode: string | null }[];
      const precreates = calls.filter((c) => c.outTradeNo === outTradeNo && c.method === 'alipay.trade.precreate');
      expect(precreates.map((c) => c.subCode)).toEqual(['ACQ.SYSTEM_ERROR', null]);
      for (const call of precreates) expect(Date.parse(call.at)).toBeGreaterThanOrEqual(restarting);
      expect((await stack.cancelPayment(outTradeNo)).body.status).toBe('CLOSED');
    } finally {
      await client.connection.close();
      await worker.stop();
      await stack.startWorker();
    }
  }, 90_000);
});
