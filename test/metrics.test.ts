// Prometheus metrics: the API's /metrics and a worker process's /metrics (its own counters, Node's,
// and the Temporal SDK's from core), scraped after a real order is created and paid.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineProcess } from '../scripts/embedded/engine-process.js';
import { parseMetrics, type Sample } from './support/prometheus-text.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';


/** The sum of the samples of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

let stack: Stack;
let worker: EngineProcess;
let workerMetricsUrl: string;
beforeAll(async () => {
  stack = await startStack();
  // Only the worker process takes this stack's tasks, so its counters are this test's.
  await stack.stopWorker();
  const lines: string[] = [];
  worker = await stack.spawnWorkerProcess({}, (line) => lines.push(line));
  workerMetricsUrl = await waitFor('the worker to say where its metrics are', () =>
    lines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'worker metrics listening')?.url as string | undefined,
  );
}, 60_000);
afterAll(async () => {
  await worker?.stop();
  await stack?.stop();
});

describe('metrics', () => {
  it('count a paid order on the API and on the worker, beside the Temporal SDK metrics', async () => {
    const before = await scrape(`${stack.api.url}/metrics`);
    const outTradeNo = stack.newOrderNo('metrics');
    expect((await stack.createPayment({ outTradeNo, amount: '8.80', subject: 'metrics' })).status).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'PAID');
    expect((await stack.apiCall('GET', '/v1/payments/no-such-order')).status).toBe(404);
    expect((await stack.apiCall('GET', '/no/such/path')).status).toBe(404);

    const api = await waitFor('the notify to be counted', async () => {
      const samples = await scrape(`${stack.api.url}/metrics`);
      const verified = (s: Sample[]) => total(s, 'durapay_alipay_notifies_total', { outcome: 'verified' });
      return verified(samples) > verified(before) ? samples : undefined;
    });
    const delta = (name: string, labels: Record<string, string>) => total(api, name, labels) - total(before, name, labels);
    expect(delta('durapay_http_requests_total', { method: 'POST', route: '/v1/payments', status: '201' })).toBe(1);
    expect(delta('durapay_http_request_duration_seconds_count', { method: 'POST', route: '/v1/payments' })).toBe(1);
    expect(delta('durapay_http_requests_total', { method: 'GET', route: '/v1/payments/:outTradeNo', status: '404' })).toBe(1);
    expect(delta('durapay_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(delta('durapay_http_requests_total', { method: 'POST', route: '/alipay/notify', status: '200' })).toBeGreaterThanOrEqual(1);
    // Route patterns only: no label holds an order number.
    expect(api.filter((s) => Object.values(s.labels).some((value) => value.includes(outTradeNo) || value.includes('no-such-order')))).toEqual([]);
    expect(total(api, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // The worker process is fresh: its counters are this order's (and the Temporal SDK's come in
    // as core records them).
    const worker = await waitFor(
      "the worker's counters and the SDK's metrics",
      async () => {
        const samples = await scrape(workerMetricsUrl);
        return total(samples, 'durapay_payments_paid_total') >= 1 && total(samples, 'temporal_workflow_completed') >= 1 ? samples : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    expect(total(worker, 'durapay_payments_created_total')).toBe(1);
    expect(total(worker, 'durapay_payments_paid_total')).toBe(1);
    expect(total(worker, 'durapay_payments_closed_total')).toBe(0);
    expect(total(worker, 'durapay_alipay_gateway_calls_total', { method: 'alipay.trade.precreate', result: 'success' })).toBe(1);
    expect(total(worker, 'durapay_alipay_gateway_call_duration_seconds_count', { method: 'alipay.trade.precreate', result: 'success' })).toBe(1);
    expect(total(worker, 'temporal_workflow_task_execution_latency_count', { workflow_type: 'paymentWorkflow' })).toBeGreaterThan(0);
    expect(total(worker, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    // One exposition: no metric is described twice (core's and prom-client's names do not meet).
    const text = await (await fetch(workerMetricsUrl)).text();
    const described = text.split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2]);
    expect(described.length).toBeGreaterThan(20);
    expect(new Set(described).size).toBe(described.length);
  }, 60_000);

  it('count a notify that does not verify by its reason, and a late one, on the API and in the late-notify workflow', async () => {
    const before = await scrape(`${stack.api.url}/metrics`);
    const forged = await fetch(`${stack.api.url}/alipay/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ app_id: stack.appId, out_trade_no: stack.alipayNo('forged'), trade_status: 'TRADE_SUCCESS', sign: 'AAAA' }),
    });
    expect(await forged.text()).toBe('failure');
    // A notify for a paid order whose workflow has finished goes to a late-notify workflow, which
    // records it: counted on the API as late, and by the workflow (through core) as recorded.
    const outTradeNo = stack.newOrderNo('late');
    expect((await stack.createPayment({ outTradeNo, amount: '1.00', subject: 'late' })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const lateCount = (samples: Sample[]) => total(samples, 'durapay_alipay_notifies_total', { outcome: 'late' });
    // Until the workflow has ended, a notify still reaches it (verified): Alipay's repeat is sent again.
    const after = await waitFor('a notify to arrive late', async () => {
      expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, {})).status).toBe(200);
      const samples = await scrape(`${stack.api.url}/metrics`);
      return lateCount(samples) > lateCount(before) ? samples : undefined;
    }, { intervalMs: 300 });
    const rejected = { outcome: 'rejected', reason: 'bad_signature' };
    expect(total(after, 'durapay_alipay_notifies_total', rejected) - total(before, 'durapay_alipay_notifies_total', rejected)).toBe(1);
    await waitFor(
      'the late-notify workflow to count its outcome',
      async () => (total(await scrape(workerMetricsUrl), 'durapay_alipay_late_notifies_total', { outcome: 'recorded' }) >= 1 ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  }, 60_000);

  it('are scraped outside the per-IP rate limit', async () => {
    const api = await stack.spawnApiProcess({ RATE_LIMIT_IP_PER_MINUTE: '2' });
    try {
      for (let i = 0; i < 5; i++) expect((await fetch(`${api.url}/metrics`)).status).toBe(200);
      const health = [];
      for (let i = 0; i < 3; i++) health.push((await fetch(`${api.url}/healthz`)).status);
      expect(health).toEqual([200, 200, 429]);
      // The refusal is counted too, before any route took it.
      const samples = await scrape(`${api.url}/metrics`);
      expect(total(samples, 'durapay_http_requests_total', { route: 'unmatched', status: '429' })).toBe(1);
      expect(total(samples, 'durapay_http_requests_total', { route: '/metrics', status: '200' })).toBe(5);
    } finally {
      await api.stop();
    }
  }, 60_000);
});
