// `npm run bench`: create latency (sequential and concurrent) and time from the buyer's payment
// to PAID, on a throwaway embedded stack: the dev server, PostgreSQL, the simulator, a worker and
// the API, all on loopback. Prints figures; asserts nothing.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createLogger } from '../lib/logger.js';
import { signRequest } from '../lib/merchant-signing.js';
import { toAlipayOutTradeNo } from '../lib/order-numbers.js';
import { startLocalStack } from '../scripts/local-stack.js';

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 200);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 20);
const CONCURRENT_BATCHES = Number(process.env.BENCH_BATCHES ?? 10);
const PAID_SAMPLES = Number(process.env.BENCH_PAID ?? 50);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(name: string, samples: number[]) {
  if (samples.length === 0) return;
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(
    `${name.padEnd(34)} n=${String(sorted.length).padEnd(5)} p50 ${f(percentile(sorted, 50))}  p95 ${f(percentile(sorted, 95))}  p99 ${f(percentile(sorted, 99))}  max ${f(sorted.at(-1)!)}`,
  );
}

Runtime.install({ logger: new DefaultLogger('WARN') });
const dir = mkdtempSync(join(tmpdir(), 'durapay-bench-'));
chmodSync(dir, 0o755); // PostgreSQL runs as its own OS user when we are root
// Fully embedded and thrown away afterwards, whatever this shell has configured.
const stack = await startLocalStack({
  dataDir: dir,
  persistent: false,
  // It polls every 5 ms and creates as fast as it can: it measures the engine, not the rate limits.
  env: { PAYMENT_TIMEOUT: '10m', RATE_LIMIT_MERCHANT_PER_MINUTE: '1000000', RATE_LIMIT_IP_PER_MINUTE: '1000000' },
  logger: createLogger('bench', 'silent'),
  say: () => {},
});
const apiUrl = stack.apiUrl;
const simulatorUrl = stack.simulatorUrl!;
const { merchantId, secret } = stack.devMerchant;

/** Signed as the dev merchant, as every /v1 request must be. */
function signedFetch(path: string, init: { method: string; body?: string }) {
  const headers = {
    ...(init.body ? { 'content-type': 'application/json' } : {}),
    ...signRequest(merchantId, secret, { method: init.method, pathWithQuery: path, body: init.body }),
  };
  return fetch(`${apiUrl}${path}`, { ...init, headers });
}

let seq = 0;
async function create(): Promise<{ ms: number; outTradeNo: string }> {
  const outTradeNo = `bench_${Date.now().toString(36)}_${++seq}`;
  const started = performance.now();
  const res = await signedFetch('/v1/payments', {
    method: 'POST',
    body: JSON.stringify({ outTradeNo, amount: '1.00', subject: 'bench' }),
  });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
  return { ms: performance.now() - started, outTradeNo };
}

try {
  console.log(`durapay bench: ${SEQUENTIAL} sequential creates, ${CONCURRENT_BATCHES}×${CONCURRENT} concurrent, ${PAID_SAMPLES} payments`);
  for (let i = 0; i < 10; i++) await create(); // warm-up: connections, workflow cache, JIT

  const sequential: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) sequential.push((await create()).ms);
  report('create, sequential', sequential);

  const concurrent: number[] = [];
  const batchStarted = performance.now();
  for (let b = 0; b < CONCURRENT_BATCHES; b++) {
    const results = await Promise.all(Array.from({ length: CONCURRENT }, create));
    concurrent.push(...results.map((r) => r.ms));
  }
  report(`create, ${CONCURRENT} at a time`, concurrent);
  if (concurrent.length > 0) console.log(`${'create throughput'.padEnd(34)} ${(concurrent.length / ((performance.now() - batchStarted) / 1000)).toFixed(0)} orders/s`);

  const toPaid: number[] = [];
  for (let i = 0; i < PAID_SAMPLES; i++) {
    const { outTradeNo } = await create();
    const paidStarted = performance.now();
    await fetch(`${simulatorUrl}/sim/trades/${toAlipayOutTradeNo(merchantId, outTradeNo)}/pay`, { method: 'POST' }).then((r) => r.arrayBuffer());
    for (;;) {
      const body = (await (await signedFetch(`/v1/payments/${outTradeNo}`, { method: 'GET' })).json()) as { status: string };
      if (body.status === 'PAID') break;
      if (performance.now() - paidStarted > 10_000) throw new Error(`${outTradeNo} not PAID after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    toPaid.push(performance.now() - paidStarted);
  }
  report('buyer pays → GET says PAID', toPaid);
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log(`${'bench process RSS (api+worker)'.padEnd(34)} ${rss.toFixed(0)} MiB`);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
