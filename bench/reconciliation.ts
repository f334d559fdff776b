// `npm run bench:bill`: one day's reconciliation with a 200 000-row Alipay trade bill, through the
// real workflow, on a throwaway embedded stack (Temporal dev server, PostgreSQL, the simulator, the
// API) with the worker in a process of its own, so its memory is its own. Prints the time and the
// worker's RSS; asserts nothing.
//
// The day: 180 000 payments and 20 000 partial refunds (BENCH_BILL_ROWS sets the total), put into
// the simulator's ledger (simulator/synthetic.ts) and, the same trades, into durapay's read model
// with SQL (running 180 000 payment workflows first would measure them, not the reconciliation).
// A few differences are planted so the mismatch paths run too: 20 payments durapay has no record
// of, and 20 recorded with another amount (those orders go to REVIEW through their findings).
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pg from 'pg';
import { createLogger } from '../lib/platform/logger.js';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { paymentWorkflowId } from '../lib/payments/payment.js';
import { beijingDay, reconciliationWorkflowId } from '../lib/payments/reconciliation.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { syntheticTrades, type SyntheticDay, type SyntheticTrade } from '../simulator/synthetic.js';

const ROWS = Number(process.env.BENCH_BILL_ROWS ?? 200_000);
const REFUND_EVERY = 9; // one refund row per 9 payments: 180 000 + 20 000 = 200 000 rows
const PAYMENTS = Math.round((ROWS * REFUND_EVERY) / (REFUND_EVERY + 1));
const UNKNOWN = 20; // indexes 1..20 (index 0 has a refund too): not in durapay's record at all
const OTHER_AMOUNT = 20; // indexes 100..119: recorded 1 fen more than Alipay took
const MIB = 2 ** 20;

Runtime.install({ logger: new DefaultLogger('WARN') });
const dir = mkdtempSync(join(tmpdir(), 'durapay-bench-bill-'));
chmodSync(dir, 0o755); // PostgreSQL runs as its own OS user when we are root
const stack = await startLocalStack({
  dataDir: dir,
  persistent: false,
  env: { RATE_LIMIT_MERCHANT_PER_MINUTE: '1000000', RATE_LIMIT_IP_PER_MINUTE: '1000000', LOG_LEVEL: 'warn' },
  logger: createLogger('bench', 'silent'),
  say: () => {},
  engineOutput: () => {},
});
const env = stack.engineEnv;
const appId = env.ALIPAY_APP_ID!;
const merchantId = stack.devMerchant.merchantId;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 });
const rssMiB = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: (kb('VmRSS') * 1024) / MIB, hwm: (kb('VmHWM') * 1024) / MIB };
};

/** The same trades in durapay's read model, as the payment and refund workflows would have left them. */
async function recordLocally(spec: SyntheticDay) {
  let batch: SyntheticTrade[] = [];
  const flush = async () => {
    const pays = batch.filter((t) => t.index < 1 || t.index > UNKNOWN);
    const alipayNo = (t: SyntheticTrade) => t.outTradeNo;
    const paid = (t: SyntheticTrade) => t.totalCents + (t.index >= 100 && t.index < 100 + OTHER_AMOUNT ? 1 : 0);
    await pool.query(
      `INSERT INTO payments (id, app_id, out_trade_no, alipay_out_trade_no, merchant_id, amount_fen, subject, status, alipay_status,
                             alipay_trade_no, expires_at, paid_amount_fen, paid_at, refunded_amount_fen, created_at, updated_at)
       SELECT u.id, $1, u.order_no, u.alipay_no, $2, u.amount, '批量测试', u.status, 'TRADE_SUCCESS', u.trade_no,
              u.paid_at + interval '1 hour', u.amount, u.paid_at, u.refunded, u.paid_at - interval '30 seconds', u.paid_at
       FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::timestamptz[], $10::bigint[])
         AS u(id, order_no, alipay_no, amount, status, trade_no, paid_at, refunded)`,
      [
        appId,
        merchantId,
        pays.map((t) => paymentWorkflowId(appId, alipayNo(t))),
        pays.map((t) => `bench${t.index}`),
        pays.map(alipayNo),
        pays.map(paid),
        pays.map((t) => (t.refund ? 'PARTIALLY_REFUNDED' : 'PAID')),
        pays.map((t) => t.tradeNo),
        pays.map((t) => new Date(t.paidAt)),
        pays.map((t) => t.refund?.amountCents ?? 0),
      ],
    );
    const refunded = pays.filter((t) => t.refund);
    await pool.query(
      `INSERT INTO refunds (payment_id, out_request_no, kind, amount_fen, status, created_at, settled_at, alipay_refunded_at, alipay_fund_change)
       SELECT u.payment_id, u.request_no, 'merchant', u.amount, 'SUCCEEDED', u.at, u.at, u.at, 'Y'
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[]) AS u(payment_id, request_no, amount, at)`,
      [
        refunded.map((t) => paymentWorkflowId(appId, alipayNo(t))),
        refunded.map((t) => t.refund!.outRequestNo),
        refunded.map((t) => t.refund!.amountCents),
        refunded.map((t) => new Date(t.refund!.at)),
      ],
    );
    batch = [];
  };
  for (const t of syntheticTrades(spec)) {
    batch.push(t);
    if (batch.length >= 10_000) await flush();
  }
  await flush();
}

/** An /ops request; repeated on a dropped connection (the simulator shares this process, and
 *  building a 200 000-row bill holds its event loop for a moment) or a 503. Both are idempotent. */
async function ops(method: string, path: string, body?: unknown): Promise<any> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${stack.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${stack.ops.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      // 503 TRY_AGAIN: the API's read did not get PostgreSQL in time while the day is compared.
      if (res.status === 503 && attempt < 5) throw new Error('TRY_AGAIN');
      return await res.json();
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

try {
  const date = beijingDay(Date.now() - 2 * 86_400_000);
  const spec: SyntheticDay = { date, appId, prefix: toAlipayOutTradeNo(merchantId, 'bench'), payments: PAYMENTS, refundEvery: REFUND_EVERY };
  console.log(`durapay reconciliation bench: ${date}, ${PAYMENTS} payments, refunds every ${REFUND_EVERY}`);
  let started = performance.now();
  const seeded = await fetch(`${stack.simulatorUrl}/sim/ledger/synthetic`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  if (!seeded.ok) throw new Error(`seeding the simulator failed: ${await seeded.text()}`);
  await recordLocally(spec);
  await pool.query('ANALYZE payments; ANALYZE refunds');
  console.log(`${'setup (ledger and read model)'.padEnd(40)} ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // The worker runs in a process of its own, as under npm start.
  const pid = stack.enginePids.worker;
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // let the fresh worker settle
  const before = rssMiB(pid);
  console.log(`${'worker RSS before (after start-up)'.padEnd(40)} ${before.rss.toFixed(0)} MiB (peak so far ${before.hwm.toFixed(0)} MiB)`);

  let peak = before.rss;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid).rss);
    } catch {
      // the worker is gone
    }
  }, 50);
  started = performance.now();
  const accepted = await ops('POST', '/ops/reconciliations', { date });
  if (accepted.error) throw new Error(JSON.stringify(accepted.error));
  let result: any;
  for (;;) {
    result = await ops('GET', `/ops/reconciliations/${date}?limit=50`);
    if (result.error) throw new Error(`GET answered ${JSON.stringify(result.error)}`);
    if (result.status !== 'RUNNING') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stored = performance.now() - started;
  // The run ends once each order's findings are delivered.
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS! });
  try {
    await new Client({ connection }).workflow.getHandle(reconciliationWorkflowId(appId, date)).result();
  } finally {
    await connection.close();
  }
  const completed = performance.now() - started;
  clearInterval(sampler);
  const after = rssMiB(pid);

  const rows = result.totals ? result.totals.payments.gateway.count + result.totals.refunds.gateway.count : 0;
  const byType: Record<string, number> = {};
  for (const m of result.mismatches) byType[m.type] = (byType[m.type] ?? 0) + 1;
  console.log(`${'status'.padEnd(40)} ${result.status}${result.reason ? `: ${result.reason}` : ''}`);
  console.log(`${'bill rows'.padEnd(40)} ${rows} (${result.totals?.payments.gateway.count} payments, ${result.totals?.refunds.gateway.count} refunds)`);
  console.log(`${'totals, gateway / local'.padEnd(40)} payments ${result.totals?.payments.gateway.amount} / ${result.totals?.payments.local.amount}, refunds ${result.totals?.refunds.gateway.amount} / ${result.totals?.refunds.local.amount}`);
  console.log(`${'mismatches'.padEnd(40)} ${result.mismatchCount} ${JSON.stringify(byType)}`);
  console.log(`${'POST → DONE (download, parse, compare)'.padEnd(40)} ${(stored / 1000).toFixed(1)} s`);
  console.log(`${'POST → workflow completed (findings)'.padEnd(40)} ${(completed / 1000).toFixed(1)} s`);
  console.log(`${'worker RSS, peak during the run'.padEnd(40)} ${peak.toFixed(0)} MiB (sampled every 50 ms; after: ${after.rss.toFixed(0)} MiB)`);
  console.log(`${'worker RSS, peak of the process (VmHWM)'.padEnd(40)} ${after.hwm.toFixed(0)} MiB (start-up included)`);
} finally {
  await pool.end();
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
