// `npm run bench`: issue 13's goals measured side by side in one run, printed as one table.
//
// The bench is only a client. The engine runs in a child process (bench/stack-process.ts: whatever
// scripts/local-stack.ts starts, with the Temporal dev server on its SQLite file as `npm start`
// runs it), reached through its public HTTP API and the simulator's control API. A reference
// worker (bench/reference-worker.ts) runs a no-op workflow on the same Temporal server.
//
// Two stacks, one after the other, each on a fresh data folder removed at the end:
//   A, a quiet engine (no poll falls due during the run, so earlier phases add no load to later
//     ones): 1 create latency, 2 create throughput, 3 pay → PAID (quiet), 6 notify endpoint,
//     5a gateway calls with notifies working.
//   B, the default poll ladder and timeout scaled by one factor, chosen so that all the waiting
//     orders wait at once: 4 waiting orders, 3 pay → PAID while they wait, 5b notifies lost,
//     5c abandoned orders over their whole life.
import { mkdtempSync, chmodSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { DEFAULT_TIMINGS } from '../lib/payments/payment.js';
import { type Child, startChild } from './children.js';
import type { CallRecord } from '../simulator/trades.js';
import { countCalls, DurapayApi, type Payment, signedPaymentNotify, SimulatorControl } from './clients.js';
import { runPaced, runPool, timed, waitFor } from './load.js';
import { GET_EVERY_MS, PaidWatcher } from './paid-watcher.js';
import { CpuMeter, cpuPer, type CpuUse } from './cpu.js';
import { MemorySampler, type ProcMemory, workerProcess } from './memory.js';
import { Reference } from './reference.js';
import type { StackInfo, StackMessage } from './stack-process.js';
import { latency, mb, ms, perSecond, ratio, summarize } from './stats.js';

// ---------------------------------------------------------------- settings

const QUICK = process.env.BENCH_QUICK === '1';
function setting(name: string, full: number, quick: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return QUICK ? quick : full;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${text}: must be a positive number`);
  return value;
}
function layoutSetting(text: string | undefined): 'processes' | 'one-process' | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === 'processes' || text === 'one-process') return text;
  throw new Error(`BENCH_LAYOUT=${text}: must be processes or one-process`);
}
function optionalSetting(name: string): number | undefined {
  const text = process.env[name];
  return text === undefined || text === '' ? undefined : setting(name, 0, 0);
}

const S = {
  warmup: setting('BENCH_WARMUP', 30, 10),
  sequential: setting('BENCH_SEQUENTIAL', 200, 30),
  concurrent: setting('BENCH_CONCURRENT', 20, 20),
  /** Creates per side (durapay, reference) in the throughput phase. */
  throughput: setting('BENCH_THROUGHPUT', 400, 40),
  payRate: setting('BENCH_PAY_RATE', 10, 10),
  payments: setting('BENCH_PAYMENTS', 200, 20),
  notifies: setting('BENCH_NOTIFIES', 400, 40),
  waiting: setting('BENCH_WAITING', 10_000, 100),
  /** Creates per second while filling the waiting orders; default 70% of stack A's throughput. */
  waitingRate: optionalSetting('BENCH_WAITING_RATE'),
  /** Fixed compression of the default timeout and ladder; default: the largest that still lets
   *  every waiting order wait at once. */
  compress: optionalSetting('BENCH_COMPRESS'),
  lostNotifies: setting('BENCH_LOST_NOTIFIES', 50, 5),
  stackLogLevel: process.env.BENCH_STACK_LOG ?? 'warn',
  /** processes or one-process (scripts/local-stack.ts); unset: what npm start uses. */
  layout: layoutSetting(process.env.BENCH_LAYOUT),
  verbose: process.env.BENCH_VERBOSE === '1',
  /** A: only the quiet stack (goals 1, 2, 3 quiet, 5a, 6), for a quick look at the create path. */
  only: process.env.BENCH_ONLY === 'A' ? ('A' as const) : undefined,
};

/** Every stack's engine: rate limits out of the way, and the bench's log level (the worker's and
 *  the API's lines reach the bench through the stack process's output). */
/** BENCH_TEMPORAL: the stacks' Temporal, the dev server (default) or a Temporal server on PostgreSQL. */
function temporalSetting(text: string | undefined): 'dev' | 'cluster' {
  if (text === undefined || text === '' || text === 'dev') return 'dev';
  if (text === 'cluster') return 'cluster';
  throw new Error(`BENCH_TEMPORAL=${text}: must be dev or cluster`);
}
const TEMPORAL = temporalSetting(process.env.BENCH_TEMPORAL);
const ENGINE_ENV = {
  RATE_LIMIT_MERCHANT_PER_MINUTE: '1000000',
  RATE_LIMIT_IP_PER_MINUTE: '1000000',
  LOG_LEVEL: S.stackLogLevel,
  TEMPORAL_MODE: TEMPORAL,
};
const PAID_DEADLINE_MS = 30_000;
const RSS_GOAL_BYTES = 500 * 2 ** 20;
const CLOSE_LATENESS_GOAL_MS = 5_000;

// ---------------------------------------------------------------- the table

interface Row {
  goal: string;
  measured: string;
  reference: string;
  bound: string;
  /** undefined: reported, no pass/fail. */
  pass?: boolean;
}
const rows: Row[] = [];
const notes: string[] = [];
const processReports: { stack: string; procs: ProcMemory[] }[] = [];
const logReports: { stack: string; child: Child<StackInfo> }[] = [];
const engineSettings: string[] = [];

/** Adds a row to the table, and prints it at once: a run cut short still leaves its figures. */
function record(row: Row): void {
  rows.push(row);
  say(`result: ${row.goal} | ${row.measured} | ${row.reference} | ${row.bound} | ${passText(row)}`);
}
const passText = (row: Row) => (row.pass === undefined ? 'info' : row.pass ? 'PASS' : 'FAIL');

let createRetries = 0;
const say = (message: string) => console.log(`[bench] ${message}`);

/** Runs one phase; a failure becomes a failed row and the run goes on. */
async function phase(goal: string, run: () => Promise<void>): Promise<void> {
  if (interrupted) return;
  say(`${goal}…`);
  const started = performance.now();
  try {
    await run();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    say(`${goal} failed: ${message}`);
    record({ goal, measured: `error: ${message.split('\n')[0]!.slice(0, 200)}`, reference: '', bound: '', pass: false });
  }
  say(`${goal}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

// ---------------------------------------------------------------- children and cleanup

const liveChildren = new Set<Child<unknown>>();
const tempDirs = new Set<string>();

function freshDataDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `durapay-bench-${name}-`));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own OS user when we are root
  tempDirs.add(dir);
  return dir;
}

async function stopChild(child: Child<unknown>): Promise<void> {
  await child.stop();
  liveChildren.delete(child);
}

let cleaning: Promise<void> | undefined;
let interrupted = false;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // The reference worker before the stack whose server it polls.
    for (const child of [...liveChildren].reverse()) await stopChild(child);
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping everything`);
    interrupted = true;
    void cleanup().finally(() => process.exit(130));
  });
}

async function startStack(name: string, env: Record<string, string>): Promise<Child<StackInfo>> {
  const dataDir = freshDataDir(name);
  say(`starting stack ${name} (the first start may build the Temporal CLI)`);
  const child = await startChild<StackInfo>(
    `stack ${name}`,
    'bench/stack-process.ts',
    { BENCH_STACK_OPTIONS: JSON.stringify({ dataDir, env, logLevel: S.stackLogLevel, layout: S.layout }) },
    {
      readyDeadlineMs: 10 * 60_000,
      onMessage: (message) => {
        if (message.type === 'log' && S.verbose) say(`stack ${name}: ${(message as Extract<StackMessage, { type: 'log' }>).message}`);
      },
    },
  );
  liveChildren.add(child);
  logReports.push({ stack: name, child });
  return child;
}

async function stopStack(name: string, stack: Child<StackInfo>): Promise<void> {
  processReports.push({ stack: name, procs: new MemorySampler(stack.tree).stop() });
  await stopChild(stack);
  rmSync(stack.ready.dataDir, { recursive: true, force: true });
  tempDirs.delete(stack.ready.dataDir);
}

// ---------------------------------------------------------------- shared steps

/** Creates the orders, then pays them open-loop at payRate (one every 1/rate s whatever the
 *  completions), each timed from the simulator's pay to the first GET that says PAID. */
async function payToPaid(api: DurapayApi, sim: SimulatorControl, prefix: string) {
  const wanted = Array.from({ length: S.payments }, (_, i) => `${prefix}${i}`);
  const failed = new Map<string, string>();
  await runPool(wanted.length, S.concurrent, (i) => api.create(wanted[i]!).catch((err: Error) => failed.set(wanted[i]!, err.message)));
  const orders = wanted.filter((no) => !failed.has(no));
  if (orders.length === 0) throw new Error(`no order created: ${[...failed.values()][0]}`);
  const watcher = new PaidWatcher(api, PAID_DEADLINE_MS);
  const run = await runPaced(orders.length, S.payRate, async (i) => {
    const started = performance.now();
    await sim.pay(api.alipayOutTradeNo(orders[i]!));
    return watcher.watch(orders[i]!, started);
  });
  return {
    summary: summarize(run.results.filter(Number.isFinite)),
    orders,
    unpaid: run.results.filter((x) => !Number.isFinite(x)).length,
    lagMs: run.maxStartLagMs,
    spacingMs: watcher.meanSpacingMs(),
    createFailures: failed.size,
  };
}

function payRow(goal: string, result: Awaited<ReturnType<typeof payToPaid>>): Row {
  const { summary, unpaid, createFailures } = result;
  const problems = [unpaid && `${unpaid} not PAID within ${PAID_DEADLINE_MS / 1000} s`, createFailures && `${createFailures} creates failed`].filter(Boolean);
  return {
    goal,
    measured: `${latency(summary, ['p50', 'p95', 'p99', 'max'])}${problems.map((p) => `; ${p}`).join('')}`,
    reference: `open loop, ${S.payRate}/s; each waiting payment read every ${ms(result.spacingMs)} on average (client lag ≤ ${ms(result.lagMs)})`,
    bound: 'p99 < 300 ms',
    pass: problems.length === 0 && summary.n > 0 && summary.p99 < 300,
  };
}

/** Gateway calls per order, over the given orders, as the simulator counted them. */
async function callsPerOrder(byTrade: Map<string, CallRecord[]>, api: DurapayApi, orders: string[]) {
  const counts = orders.map((orderNo) => byTrade.get(api.alipayOutTradeNo(orderNo))?.length ?? 0);
  const methods = new Map<string, number>();
  for (const orderNo of orders) {
    for (const call of byTrade.get(api.alipayOutTradeNo(orderNo)) ?? []) {
      const method = (call.method ?? '?').replace(/^alipay\.trade\./, '');
      methods.set(method, (methods.get(method) ?? 0) + 1);
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const perMethod = [...methods].map(([method, n]) => `${method} ${(n / orders.length).toFixed(2)}`).join(', ');
  return { mean: total / orders.length, max: Math.max(...counts), perMethod };
}

// ---------------------------------------------------------------- stack A: a quiet engine

async function stackA(): Promise<{ throughput: number }> {
  // No poll falls due and no order expires during the run: what one phase creates is no load on
  // the next. The create, pay and notify paths do not depend on the ladder.
  const env = { PAYMENT_TIMEOUT: '2h', PAYMENT_POLL_LADDER: '2h', ...ENGINE_ENV };
  engineSettings.push(`stack A (quiet): PAYMENT_TIMEOUT=${env.PAYMENT_TIMEOUT} PAYMENT_POLL_LADDER=${env.PAYMENT_POLL_LADDER}, rate limits 1000000/min`);
  const stack = await startStack('A', env);
  const info = stack.ready;
  const reference = await startChild<{ pid: number }>(
    'reference worker',
    'bench/reference-worker.ts',
    { TEMPORAL_ADDRESS: info.temporalAddress, TEMPORAL_NAMESPACE: info.namespace },
    { readyDeadlineMs: 3 * 60_000 },
  );
  liveChildren.add(reference);
  const api = new DurapayApi(info);
  const sim = new SimulatorControl(info.simulatorUrl);
  const ref = await Reference.connect(info);
  const trees = [stack.tree, reference.tree];
  let throughput = Number.NaN;
  try {
    say(`warm-up: ${S.warmup} of each call`);
    for (let i = 0; i < S.warmup; i++) {
      await api.create(`w${i}`);
      await ref.updateWithStart(`ref-w-${i}`);
      await ref.precreate(`refw${i}`);
    }

    await phase('1 create latency, sequential', async () => {
      // Interleaved, one of each in turn, so that the machine's noise falls on all three alike.
      const create: number[] = [];
      const update: number[] = [];
      const precreate: number[] = [];
      for (let i = 0; i < S.sequential; i++) {
        create.push(await timed(() => api.create(`s${i}`)));
        update.push(await timed(() => ref.updateWithStart(`ref-s-${i}`)));
        precreate.push(await timed(() => ref.precreate(`refs${i}`)));
      }
      const c = summarize(create);
      const u = summarize(update);
      const p = summarize(precreate);
      const floor = u.p50 + p.p50 + 5;
      record({
        goal: '1 create latency, sequential: p50',
        measured: latency(c),
        reference: `no-op update-with-start p50 ${ms(u.p50)} (p99 ${ms(u.p99)}) + bare precreate p50 ${ms(p.p50)} (p99 ${ms(p.p99)}) + 5 ms = ${ms(floor)}`,
        bound: `${ratio(c.p50 / floor)} of reference, ≤ 1.00×`,
        pass: c.p50 <= floor,
      });
      record({
        goal: '1 create latency, sequential: p99 ≤ 3× p50',
        measured: `p99 ${ms(c.p99)}, max ${ms(c.max)}`,
        reference: `3 × p50 = ${ms(3 * c.p50)}`,
        bound: `${ratio(c.p99 / c.p50)} p50, ≤ 3.00×`,
        pass: c.p99 <= 3 * c.p50,
      });
    });

    await phase(`2 create throughput, ${S.concurrent} in flight`, async () => {
      // Each side runs twice, alternating, each time half of its count.
      const half = Math.ceil(S.throughput / 2);
      const sides = { durapay: { ms: 0, samples: [] as number[] }, reference: { ms: 0, samples: [] as number[] } };
      const cpu = { durapay: [] as CpuUse[], reference: [] as CpuUse[] };
      for (let round = 0; round < 2; round++) {
        let meter = new CpuMeter(trees);
        const r = await runPool(half, S.concurrent, (i) => timed(() => ref.updateWithStart(`ref-t-${round}-${i}`)));
        cpu.reference.push(meter.stop());
        sides.reference.ms += r.elapsedMs;
        sides.reference.samples.push(...r.results);
        meter = new CpuMeter(trees);
        const d = await runPool(half, S.concurrent, (i) => timed(() => api.create(`t${round}x${i}`)));
        cpu.durapay.push(meter.stop());
        sides.durapay.ms += d.elapsedMs;
        sides.durapay.samples.push(...d.results);
      }
      notes.push(`2 durapay: ${cpuPer(cpu.durapay, sides.durapay.samples.length, 'create')}`);
      notes.push(`2 reference: ${cpuPer(cpu.reference, sides.reference.samples.length, 'update-with-start')}`);
      const rate = (side: { ms: number; samples: number[] }) => side.samples.length / (side.ms / 1000);
      throughput = rate(sides.durapay);
      const refRate = rate(sides.reference);
      record({
        goal: `2 create throughput, ${S.concurrent} in flight`,
        measured: `${perSecond(throughput, ' orders/s')} (${latency(summarize(sides.durapay.samples))})`,
        reference: `no-op update-with-start ${perSecond(refRate)} (${latency(summarize(sides.reference.samples))})`,
        bound: `${ratio(throughput / refRate)} of reference, ≥ 0.80×`,
        pass: throughput / refRate >= 0.8,
      });
    });

    let quietPaid: string[] = [];
    await phase(`3 pay → PAID at ${S.payRate}/s, quiet engine`, async () => {
      const result = await payToPaid(api, sim, 'q');
      quietPaid = result.orders;
      record(payRow(`3 pay → PAID at ${S.payRate}/s, quiet engine`, result));
    });

    await phase(`6 notify endpoint, ${S.concurrent} in flight`, async () => {
      const phaseStarted = performance.now();
      const orders = Array.from({ length: S.notifies }, (_, i) => `n${i}`);
      const alipayKey = createPrivateKey(info.alipayPrivateKey);
      // Paid at the simulator with its own notifies dropped: the order waits for the bench's.
      const bodies = (
        await runPool(orders.length, S.concurrent, async (i) => {
          const alipayNo = api.alipayOutTradeNo(orders[i]!);
          await sim.armTradeFaults(alipayNo, { dropNotifies: true });
          await api.create(orders[i]!);
          return sim.pay(alipayNo);
        })
      ).results.map((trade) => signedPaymentNotify(trade, alipayKey));
      const preparedAt = performance.now();
      const refIds = orders.map((_, i) => `ref-n-${i}`);
      await runPool(refIds.length, S.concurrent, (i) => ref.updateWithStart(refIds[i]!));
      const measuredFrom = performance.now();

      const half = Math.ceil(orders.length / 2);
      const sides = { durapay: { ms: 0, samples: [] as number[] }, reference: { ms: 0, samples: [] as number[] } };
      let refused = 0;
      const cpu = { durapay: [] as CpuUse[], reference: [] as CpuUse[] };
      for (let round = 0; round < 2; round++) {
        const from = round * half;
        const count = Math.min(half, orders.length - from);
        let meter = new CpuMeter(trees);
        const r = await runPool(count, S.concurrent, (i) => timed(() => ref.signal(refIds[from + i]!)));
        cpu.reference.push(meter.stop());
        sides.reference.ms += r.elapsedMs;
        sides.reference.samples.push(...r.results);
        meter = new CpuMeter(trees);
        const d = await runPool(count, S.concurrent, (i) =>
          timed(async () => {
            if ((await api.notify(bodies[from + i]!)) !== 'success') refused++;
          }),
        );
        cpu.durapay.push(meter.stop());
        sides.durapay.ms += d.elapsedMs;
        sides.durapay.samples.push(...d.results);
      }
      // The workflow's own task for each notify runs after the answer; it is counted in the PAID check.
      notes.push(`6 durapay: ${cpuPer(cpu.durapay, sides.durapay.samples.length, 'notify answered')}`);
      notes.push(`6 reference: ${cpuPer(cpu.reference, sides.reference.samples.length, 'signal')}`);
      // Each notify must have done its work: the order reads PAID.
      let notPaid = 0;
      await runPool(orders.length, S.concurrent, async (i) => {
        await waitFor(`${orders[i]} PAID`, async () => ((await api.get(orders[i]!)).status === 'PAID' ? true : undefined), {
          deadlineMs: PAID_DEADLINE_MS,
          intervalMs: 50,
        }).catch(() => notPaid++);
      });
      const measuredUntil = performance.now();
      notes.push(
        `6: setup (create, pay with notifies dropped, sign) ${((preparedAt - phaseStarted) / 1000).toFixed(1)} s, reference workflows ${((measuredFrom - preparedAt) / 1000).toFixed(1)} s, ` +
          `measured ${((measuredUntil - measuredFrom) / 1000).toFixed(1)} s, PAID check ${((performance.now() - measuredUntil) / 1000).toFixed(1)} s`,
      );
      const rate = (side: { ms: number; samples: number[] }) => side.samples.length / (side.ms / 1000);
      const d = rate(sides.durapay);
      const r = rate(sides.reference);
      const failures = [refused && `${refused} answered other than success`, notPaid && `${notPaid} orders not PAID after`].filter(Boolean);
      record({
        goal: `6 notify endpoint, ${S.concurrent} in flight`,
        measured: `${perSecond(d, ' notifies/s')} (${latency(summarize(sides.durapay.samples))})${failures.length ? `; ${failures.join(', ')}` : ''}`,
        reference: `bare signal ${perSecond(r)} (${latency(summarize(sides.reference.samples))})`,
        bound: `${ratio(d / r)} of reference, ≥ 0.80×`,
        pass: failures.length === 0 && d / r >= 0.8,
      });
    });

    await phase('5a gateway calls, notifies working', async () => {
      if (quietPaid.length === 0) throw new Error('no paid orders from phase 3 (quiet) to count');
      const c = await callsPerOrder(countCalls(await sim.calls()), api, quietPaid);
      record({
        goal: '5a gateway calls per paid order, notifies working',
        measured: `mean ${c.mean.toFixed(2)}, max ${c.max} (${c.perMethod}; n=${quietPaid.length})`,
        reference: 'phase 3 quiet orders',
        bound: 'mean ≤ 1.2',
        pass: c.mean <= 1.2,
      });
    });
  } finally {
    createRetries += api.createRetries;
    await ref.close().catch(() => {});
    processReports.push({ stack: 'A reference worker', procs: new MemorySampler(reference.tree).stop() });
    await stopChild(reference);
    await stopStack('A', stack);
  }
  return { throughput };
}

// ---------------------------------------------------------------- stack B: orders waiting

interface WaitingPlan {
  rate: number;
  factor: number;
  timeoutMs: number;
  ladderMs: number[];
}

/** The default timeout and ladder, scaled by one factor, so an abandoned order makes the calls the
 *  default ladder makes; by default the factor that lets every waiting order wait at once. */
function planWaiting(throughputA: number): WaitingPlan {
  const rate = S.waitingRate ?? Math.min(200, Math.max(2, 0.7 * (Number.isFinite(throughputA) ? throughputA : 10)));
  const fillMs = (S.waiting / rate) * 1000;
  // After the fill, while they all wait: phase 3's creates and payments, and 5b's, with room.
  const afterFillMs = (S.payments / Math.max(rate, 1) + S.payments / S.payRate + (QUICK ? 10 : 30)) * 1000;
  const maxTimeoutMs = 2 * 3_600_000; // PAYMENT_TIMEOUT's own bound
  let factor = S.compress ?? DEFAULT_TIMINGS.orderTimeoutMs / Math.min(maxTimeoutMs, fillMs * 1.1 + afterFillMs);
  factor = Math.max(factor, DEFAULT_TIMINGS.orderTimeoutMs / maxTimeoutMs);
  return {
    rate,
    factor,
    timeoutMs: Math.round(DEFAULT_TIMINGS.orderTimeoutMs / factor),
    // Steps of at least 1 s, as the engine requires.
    ladderMs: DEFAULT_TIMINGS.pollLadderMs.map((step) => Math.max(1000, Math.round(step / factor))),
  };
}

async function stackB(throughputA: number): Promise<void> {
  const plan = planWaiting(throughputA);
  const env = {
    PAYMENT_TIMEOUT: `${plan.timeoutMs}ms`,
    PAYMENT_POLL_LADDER: plan.ladderMs.map((step) => `${step}ms`).join(','),
    ...ENGINE_ENV,
  };
  engineSettings.push(
    `stack B (waiting orders): default timeout ${DEFAULT_TIMINGS.orderTimeoutMs / 1000}s and ladder ${DEFAULT_TIMINGS.pollLadderMs.map((x) => `${x / 1000}s`).join(',')} ` +
      `${plan.factor >= 1 ? 'compressed' : 'stretched'} ${plan.factor.toFixed(2)}× (${S.compress ? 'BENCH_COMPRESS' : 'so all waiting orders wait at once'}): ` +
      `PAYMENT_TIMEOUT=${env.PAYMENT_TIMEOUT} PAYMENT_POLL_LADDER=${env.PAYMENT_POLL_LADDER}; ${S.waiting} orders created at ${plan.rate.toFixed(1)}/s`,
  );
  const rounded = DEFAULT_TIMINGS.pollLadderMs.filter((step) => step / plan.factor < 1000);
  if (rounded.length > 0) {
    notes.push(`stack B: ladder steps ${rounded.map((x) => `${x / 1000}s`).join(', ')} compressed below 1 s were raised to 1 s: fewer polls than the default shape gives`);
  }
  const stack = await startStack('B', env);
  const info = stack.ready;
  const api = new DurapayApi(info);
  const sim = new SimulatorControl(info.simulatorUrl);
  const sampler = new MemorySampler(stack.tree).start(1000);
  const waiting = Array.from({ length: S.waiting }, (_, i) => `o${i}`);
  const created = new Map<string, Payment>();
  const closedOrders = new Set<string>();
  let lastCreatedAt = 0;
  let rssBeforeFill = Number.NaN;
  let fillNote = '';
  try {
    await phase(`4 create ${S.waiting} waiting orders at ${plan.rate.toFixed(1)}/s`, async () => {
      sampler.sample();
      rssBeforeFill = workerProcess(sampler.snapshot()).proc?.rssBytes ?? Number.NaN;
      const meter = new CpuMeter([stack.tree]);
      let failed = 0;
      let firstError = '';
      const run = await runPaced(
        waiting.length,
        plan.rate,
        async (i) => {
          try {
            created.set(waiting[i]!, await api.create(waiting[i]!));
            lastCreatedAt = Date.now();
          } catch (err) {
            failed++;
            firstError ||= (err as Error).message;
          }
        },
        4 * S.concurrent,
      );
      // The polls of the orders created first run during the fill, and are counted in it.
      notes.push(`4 fill: ${cpuPer([meter.stop()], created.size, 'order created')}`);
      fillNote = `${created.size} created in ${(run.elapsedMs / 1000).toFixed(0)} s, ${perSecond(created.size / (run.elapsedMs / 1000))} (planned ${perSecond(plan.rate)}; client lag ≤ ${ms(run.maxStartLagMs)})`;
      if (failed) notes.push(`4: ${failed} of ${waiting.length} creates failed, the first: ${firstError.slice(0, 200)}`);
    });
    const waitingAtOnce = [...created.values()].filter((p) => Date.parse(p.expiresAt) > lastCreatedAt).length;

    await phase(`3 pay → PAID at ${S.payRate}/s, ${waitingAtOnce} orders waiting`, async () => {
      record(payRow(`3 pay → PAID at ${S.payRate}/s, ${waitingAtOnce} orders waiting`, await payToPaid(api, sim, 'p')));
    });

    const lost = Array.from({ length: S.lostNotifies }, (_, i) => `l${i}`);
    const lostPaid: string[] = [];
    await phase('5b paid, every notify lost', async () => {
      const paid = new Set<string>();
      let firstError = '';
      await runPool(lost.length, S.concurrent, async (i) => {
        const alipayNo = api.alipayOutTradeNo(lost[i]!);
        try {
          await sim.armTradeFaults(alipayNo, { dropNotifies: true });
          await api.create(lost[i]!);
          await sim.pay(alipayNo);
          paid.add(lost[i]!);
        } catch (err) {
          firstError ||= (err as Error).message;
        }
      });
      if (paid.size < lost.length) notes.push(`5b: ${lost.length - paid.size} orders not created and paid; the first error: ${firstError.slice(0, 200)}`);
      // Found by polling only: wait for the ladder's first two steps, and a minute more.
      const deadlineMs = plan.ladderMs.slice(0, 2).reduce((a, b) => a + b, 0) + 60_000;
      await runPool(lost.length, S.concurrent, async (i) => {
        if (!paid.has(lost[i]!)) return;
        const found = await waitFor(`${lost[i]} PAID`, async () => ((await api.get(lost[i]!)).status === 'PAID' ? true : undefined), {
          deadlineMs,
          intervalMs: 500,
        }).catch(() => false);
        if (found) lostPaid.push(lost[i]!);
      });
      if (lostPaid.length < paid.size) {
        notes.push(`5b: ${paid.size - lostPaid.length} of ${paid.size} paid orders not PAID within ${(deadlineMs / 1000).toFixed(0)} s with their notifies lost`);
      }
    });

    await phase('4 waiting orders close at their deadline', async () => {
      const lastExpiry = Math.max(...[...created.values()].map((p) => Date.parse(p.expiresAt)));
      const meter = new CpuMeter([stack.tree]);
      say(`waiting for the last deadline (${new Date(lastExpiry).toISOString()}, in ${((lastExpiry - Date.now()) / 1000).toFixed(0)} s)`);
      await waitFor('the last deadline', () => (Date.now() > lastExpiry + CLOSE_LATENESS_GOAL_MS ? true : undefined), {
        deadlineMs: Math.max(0, lastExpiry - Date.now()) + 60_000,
        intervalMs: 1000,
      });
      const ours = new Set(waiting);
      await waitFor(
        'every waiting order to leave AWAITING_PAYMENT',
        async () => ((await api.listAll('AWAITING_PAYMENT')).some((p) => ours.has(p.outTradeNo)) ? undefined : true),
        { deadlineMs: Math.max(120_000, plan.timeoutMs / 4), intervalMs: 5_000 },
      ).catch((err: Error) => notes.push(`4: ${err.message}`));
      notes.push(`4 until the last close: ${cpuPer([meter.stop()], S.waiting, 'waiting order')}`);
      const memory = sampler.stop();
      const final = new Map((await api.listAll()).map((p) => [p.outTradeNo, p]));
      const closed = waiting.map((no) => final.get(no)).filter((p) => p?.status === 'CLOSED') as Payment[];
      for (const p of closed) closedOrders.add(p.outTradeNo);
      const others = new Map<string, number>();
      for (const no of waiting) {
        const status = final.get(no)?.status ?? 'missing';
        if (status !== 'CLOSED') others.set(status, (others.get(status) ?? 0) + 1);
      }
      const late = summarize(closed.map((p) => Date.parse(p.updatedAt) - Date.parse(p.expiresAt)));
      const { proc: worker, label } = workerProcess(memory);
      const peak = worker ? Math.max(worker.maxSampledBytes, 0) : Number.NaN;
      record({
        goal: '4 orders waiting at once',
        measured: `${waitingAtOnce} of ${S.waiting} (not past their deadline when the last create answered)`,
        reference: fillNote,
        bound: 'all',
        pass: waitingAtOnce === S.waiting,
      });
      record({
        goal: `4 worker RSS, ${S.waiting} orders waiting`,
        measured: `max ${mb(peak)} sampled each second (${mb(rssBeforeFill)} before the fill); VmHWM ${mb(worker?.peakBytes ?? Number.NaN)}`,
        reference: label,
        bound: '< 500 MB',
        pass: peak < RSS_GOAL_BYTES,
      });
      record({
        goal: '4 every waiting order CLOSED',
        measured: `${closed.length} of ${S.waiting} CLOSED${others.size ? ` (${[...others].map(([s, n]) => `${n} ${s}`).join(', ')})` : ''}`,
        reference: '',
        bound: 'all',
        pass: closed.length === S.waiting,
      });
      record({
        goal: '4 closed after its deadline (updatedAt − expiresAt)',
        measured: `p50 ${ms(late.p50)}, p99 ${ms(late.p99)}, max ${ms(late.max)} (n=${late.n})`,
        reference: '',
        bound: 'max ≤ 5 s',
        pass: late.n > 0 && late.max <= CLOSE_LATENESS_GOAL_MS,
      });
      record({ goal: '4 disk use after the run', measured: await diskUse(info), reference: '', bound: 'reported' });
    });

    await phase('5b/5c gateway calls', async () => {
      const byTrade = countCalls(await sim.calls());
      if (lostPaid.length > 0) {
        const lostCalls = await callsPerOrder(byTrade, api, lostPaid);
        record({
          goal: '5b gateway calls per paid order, every notify lost',
          measured: `mean ${lostCalls.mean.toFixed(2)}, max ${lostCalls.max} (${lostCalls.perMethod}; n=${lostPaid.length} of ${lost.length} found PAID)`,
          reference: `ladder ${env.PAYMENT_POLL_LADDER}`,
          bound: 'mean ≤ 3, every one found',
          pass: lostCalls.mean <= 3 && lostPaid.length === lost.length,
        });
      } else {
        record({ goal: '5b gateway calls per paid order, every notify lost', measured: 'none found PAID', reference: '', bound: 'mean ≤ 3', pass: false });
      }
      // Whole lives only: the orders that reached CLOSED.
      const closed = waiting.filter((no) => closedOrders.has(no));
      if (closed.length === 0) throw new Error('no waiting order reached CLOSED: no whole life to count');
      const abandoned = await callsPerOrder(byTrade, api, closed);
      record({
        goal: '5c gateway calls per abandoned order, whole life',
        measured: `mean ${abandoned.mean.toFixed(2)}, max ${abandoned.max} (${abandoned.perMethod}; n=${closed.length} CLOSED)`,
        reference: `default ladder shape, ${plan.factor.toFixed(2)}× time`,
        bound: 'max ≤ 6',
        pass: abandoned.max <= 6,
      });
    });
  } finally {
    createRetries += api.createRetries;
    sampler.stop();
    await stopStack('B', stack);
  }
}

/** Temporal's SQLite files and PostgreSQL's database, as the stack left them. */
async function diskUse(info: StackInfo): Promise<string> {
  const sqlite = readdirSync(info.dataDir)
    .filter((name) => /sqlite|\.db/.test(name) && !name.endsWith('server-pid'))
    .map((name) => `${name} ${mb(statSync(join(info.dataDir, name)).size)}`);
  const client = new pg.Client({ connectionString: info.databaseUrl });
  await client.connect();
  try {
    const { rows: [row] } = await client.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size');
    return `Temporal: ${sqlite.join(', ') || 'no SQLite file'}; PostgreSQL database ${mb(Number(row!.size))} (folder ${mb(folderSize(join(info.dataDir, 'postgres')))})`;
  } finally {
    await client.end();
  }
}

function folderSize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

// ---------------------------------------------------------------- output

function printTable(): void {
  const header: Row = { goal: 'goal', measured: 'measured', reference: 'reference (side by side)', bound: 'ratio or bound', pass: undefined };
  const cells = (row: Row) => [row.goal, row.measured, row.reference, row.bound, row === header ? 'pass' : passText(row)];
  console.log('');
  console.log(`| ${cells(header).join(' | ')} |`);
  console.log(`|${cells(header).map(() => ' --- ').join('|')}|`);
  for (const row of rows) console.log(`| ${cells(row).join(' | ')} |`);
  console.log('');
  if (createRetries > 0) notes.push(`creates answered 503 TRY_AGAIN and retried: ${createRetries}`);
  for (const note of notes) console.log(`note ${note}`);
  console.log('\nProcesses (RSS at the end of each stack; VmHWM: peak over the process life):');
  for (const { stack, procs } of processReports) {
    for (const p of procs.sort((a, b) => b.peakBytes - a.peakBytes).slice(0, 6)) {
      console.log(`  ${stack.padEnd(20)} ${String(p.pid).padStart(7)} ${p.role.padEnd(16)} RSS ${mb(p.rssBytes).padStart(7)}  peak ${mb(p.peakBytes).padStart(7)}  ${p.command.slice(0, 70)}`);
    }
    const rest = procs.length - 6;
    if (rest > 0) console.log(`  ${stack.padEnd(20)} … and ${rest} more (PostgreSQL backends)`);
  }
  console.log(`  ${'bench (client)'.padEnd(20)} ${String(process.pid).padStart(7)} ${'bench'.padEnd(16)} RSS ${mb(process.memoryUsage().rss).padStart(7)}`);
  console.log('\nEngine settings:');
  console.log(`  process layout: ${S.layout ?? "scripts/local-stack.ts's default"} (BENCH_LAYOUT)`);
  console.log(`  Temporal: ${TEMPORAL === 'cluster' ? 'a Temporal server on PostgreSQL' : "the Temporal CLI's dev server on SQLite"} (BENCH_TEMPORAL=${TEMPORAL})`);
  for (const line of engineSettings) console.log(`  ${line}`);
  console.log(
    `  bench: warm-up ${S.warmup}, sequential ${S.sequential}, ${S.concurrent} in flight, throughput ${S.throughput} per side, ` +
      `${S.payments} payments at ${S.payRate}/s (a GET every ${GET_EVERY_MS} ms in all, round robin), ${S.notifies} notifies, ${S.waiting} waiting, ${S.lostNotifies} lost-notify orders${QUICK ? ' (BENCH_QUICK)' : ''}`,
  );
  for (const { stack, child } of logReports) {
    const { warnings, errors, messages } = child.log;
    console.log(`\nEngine log, stack ${stack}: ${warnings} warnings, ${errors} errors`);
    for (const [message, count] of [...messages].slice(0, 8)) console.log(`  ${String(count).padStart(6)} × ${message}`);
  }
}

// ---------------------------------------------------------------- main

let exitCode = 0;
const benchStarted = performance.now();
try {
  const { throughput } = await stackA();
  if (S.only !== 'A') await stackB(throughput);
} catch (err) {
  exitCode = 1;
  console.error(err);
} finally {
  await cleanup();
}
printTable();
console.log(`\nbench took ${((performance.now() - benchStarted) / 60_000).toFixed(1)} min`);
if (rows.some((row) => row.measured.startsWith('error:'))) exitCode = 1;
process.exit(exitCode);
