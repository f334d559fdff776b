// Dashboards and alerts (issue 31): the alert rules of deploy/prometheus/alerts.yml pass `promtool check rules`, and
// `promtool test rules` shows each alert firing and staying quiet (and fails when a rule is changed); each alert's
// runbook is a section of the docs' On call page; the dashboards of deploy/grafana/ parse, and each panel's queries are
// valid PromQL; docker-compose.yml's Prometheus and Grafana and the Helm chart's ServiceMonitor and PrometheusRule are
// built from those same files. Then a real engine (Temporal, PostgreSQL, the simulator, a worker process) takes a QR
// payment, a barcode payment and a refused one, a refund, webhook deliveries, an order in REVIEW, a reconciliation, and
// a worker build that cannot replay its runs; the API's and the workers' /metrics then name every metric a dashboard
// or a rule uses, and the new gauges and the pay→PAID histogram say what happened.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { EngineProcess } from '../scripts/embedded/engine-process.js';
import { resolveHelm } from '../scripts/helm.js';
import { createLogger } from '../lib/platform/logger.js';
import { databaseMetrics } from '../worker/database-metrics.js';
import { bundleChangedWorkflows } from './support/changed-workflows.js';
import { buyerCode } from './support/payment-codes.js';
import { parseMetrics, type Sample } from './support/prometheus-text.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const ALERTS = 'deploy/prometheus/alerts.yml';
const CHART_ALERTS = 'deploy/helm/durapay/files/alerts.yml';
const RULE_TESTS = readdirSync(join(root, 'deploy/prometheus/tests')).filter((f) => f.endsWith('.yml')).map((f) => `deploy/prometheus/tests/${f}`);
const DASHBOARDS = readdirSync(join(root, 'deploy/grafana')).filter((f) => f.endsWith('.json')).map((f) => `deploy/grafana/${f}`);
const ON_CALL = 'docs/operate/on-call.md';

const temps: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-observability-'));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** promtool (Debian's `prometheus` package; CI installs it): its exit status and everything it wrote. */
function promtool(args: string[], cwd = root): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw new Error(`promtool did not run (${run.error.message}): install it with apt-get install -y prometheus`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const alertGroups = () => (parse(read(ALERTS)) as { groups: { name: string; rules: Rule[] }[] }).groups;
const alertRules = () => alertGroups().flatMap((group) => group.rules);

interface Panel {
  type: string;
  title: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}
/** Every panel of a dashboard, those inside collapsed rows too. */
const panelsOf = (panels: Panel[]): Panel[] => panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
const dashboard = (file: string) => JSON.parse(read(file)) as { uid: string; title: string; panels: Panel[]; templating?: { list: { name: string; type: string; query?: string }[] } };
/** Grafana's interval variables, as Prometheus sees them once Grafana has filled them in. */
const asPromQL = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h');
const dashboardQueries = () => DASHBOARDS.flatMap((file) => panelsOf(dashboard(file).panels).flatMap((panel) => (panel.targets ?? []).map((t) => ({ file, panel: panel.title, expr: t.expr ?? '' }))));

/** The metric names a PromQL expression reads: durapay's own, the Temporal SDK's, Node's. */
const metricNames = (expr: string) => [...expr.matchAll(/\b(?:durapay|temporal|process|nodejs)_[A-Za-z0-9_]*/g)].map((m) => m[0]);
const namedMetrics = () => new Set([...alertRules().map((r) => r.expr), ...dashboardQueries().map((q) => q.expr)].flatMap(metricNames));

describe('the alert rules', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', ALERTS]);
    expect(output).toContain(`SUCCESS: ${alertRules().length} rules found`);
    expect(status).toBe(0);
    expect(alertRules().length).toBeGreaterThanOrEqual(12);
  });

  it('cover the alerts issue 31 asks for, each with a severity and a summary', () => {
    const names = alertRules().map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'PayToPaidLatencyHigh', 'RefundFailureRateHigh', 'ReviewBacklog', 'ReviewOverdue', 'WebhookBacklogGrowing', 'WebhookEndpointFailing',
        'ReconciliationNotDone', 'ReconciliationMismatch', 'AlipayGatewayErrorRate', 'NoWorkflowTaskPollers', 'WorkflowNonDeterminism',
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
    for (const rule of alertRules()) {
      expect(['page', 'ticket'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
    }
  });

  it('pass promtool test rules, each alert shown firing and staying quiet', () => {
    const { status, output } = promtool(['test', 'rules', ...RULE_TESTS]);
    expect(output, output).not.toContain('FAILED');
    expect(output.match(/SUCCESS/g)?.length).toBe(RULE_TESTS.length);
    expect(status).toBe(0);

    const cases = RULE_TESTS.flatMap((file) => (parse(read(file)) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] }).tests).flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of alertRules()) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert} is shown firing`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} is shown staying quiet`).toBe(true);
    }
  });

  it('fail promtool test rules when a rule is changed', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'alerts.yml'), read(ALERTS).replace('> 3600\n', '> 7200\n').replace('"NonDeterminismError"', '"Nondeterminism"'));
    mkdirTests(dir);
    const { status, output } = promtool(['test', 'rules', ...RULE_TESTS.map((file) => join(dir, 'tests', file.split('/').at(-1)!))]);
    expect(status).not.toBe(0);
    expect(output).toContain('alertname: ReviewOverdue');
    expect(output).toContain('alertname: WorkflowNonDeterminism');
  });

  it("link each alert's runbook to its section of the On call page, a page of the docs site", () => {
    const page = read(ON_CALL);
    for (const rule of alertRules()) {
      const anchor = rule.alert!.toLowerCase();
      expect(rule.annotations?.runbook_url, rule.alert).toBe(`/operate/on-call#${anchor}`);
      expect(page, `${ON_CALL} has a section for ${rule.alert}`).toContain(`## ${rule.alert} {#${anchor}}`);
    }
    expect(read('docs/.vitepress/config.ts')).toContain("['/operate/on-call',");
    expect(read('docs/operate/runbook.md')).toContain('(/operate/on-call)');
    // The page names the timeline every alert's investigation can start from.
    expect(page).toContain('GET /ops/payments/:paymentId/timeline');
    expect(page).toContain('npm run cli -- ops-timeline <paymentId>');
  });

  it("are the Helm chart's rules too: its copy is the same file", () => {
    expect(read(CHART_ALERTS) === read(ALERTS), `${CHART_ALERTS} is stale: cp ${ALERTS} ${CHART_ALERTS}`).toBe(true);
  });
});

/** The rule tests beside a changed copy of the rules (their rule_files is ../alerts.yml). */
function mkdirTests(dir: string) {
  const tests = join(dir, 'tests');
  mkdirSync(tests, { recursive: true });
  for (const file of RULE_TESTS) copyFileSync(join(root, file), join(tests, file.split('/').at(-1)!));
}

describe('the dashboards', () => {
  it('parse, each with a unique uid, a Prometheus data source to choose, and queries on every panel', () => {
    expect(DASHBOARDS.length).toBeGreaterThan(0);
    const uids = DASHBOARDS.map((file) => dashboard(file).uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const file of DASHBOARDS) {
      const board = dashboard(file);
      expect(board.templating?.list.find((v) => v.type === 'datasource')?.query, file).toBe('prometheus');
      for (const panel of panelsOf(board.panels).filter((p) => p.type !== 'row')) {
        expect(panel.targets?.length, `${file}: ${panel.title}`).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) expect(metricNames(target.expr ?? '').length, `${file}: ${panel.title}: ${target.expr}`).toBeGreaterThan(0);
      }
    }
  });

  it('query in valid PromQL (each checked by promtool as a recording rule)', () => {
    const dir = tempDir();
    const rules = dashboardQueries().map((q, i) => ({ record: `durapay:dashboard_query_${i}`, expr: asPromQL(q.expr) }));
    writeFileSync(join(dir, 'queries.yml'), JSON.stringify({ groups: [{ name: 'dashboards', rules }] }));
    const { status, output } = promtool(['check', 'rules', join(dir, 'queries.yml')]);
    expect(output, output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status).toBe(0);
    // And the check sees a broken query.
    writeFileSync(join(dir, 'broken.yml'), JSON.stringify({ groups: [{ name: 'dashboards', rules: [{ record: 'x:y', expr: 'sum by (le (rate(durapay_refunds_total[5m]))' }] }] }));
    expect(promtool(['check', 'rules', join(dir, 'broken.yml')]).status).not.toBe(0);
  });

  it('show what issue 31 lists: payments, latencies, waiting orders, the gateway, refunds, webhooks, reconciliation, Temporal', () => {
    const used = new Set(dashboardQueries().flatMap((q) => metricNames(q.expr)));
    for (const metric of [
      'durapay_payments_paid_total', 'durapay_payments_closed_total', 'durapay_payments_failed_total',
      'durapay_http_request_duration_seconds_bucket', 'durapay_payment_paid_latency_seconds_bucket', 'durapay_payments_awaiting_payment',
      'durapay_alipay_gateway_calls_total', 'durapay_refunds_total', 'durapay_webhook_pending_deliveries', 'durapay_webhook_oldest_failing_age_seconds',
      'durapay_reconciliation_yesterday_done', 'durapay_reconciliation_mismatches',
      'temporal_workflow_task_schedule_to_start_latency_bucket', 'temporal_workflow_task_execution_failed',
    ]) {
      expect(used, metric).toContain(metric);
    }
    const gatewayErrors = dashboardQueries().find((q) => q.expr.includes('durapay_alipay_gateway_calls_total') && q.expr.includes('sub_code'));
    expect(gatewayErrors?.expr).toMatch(/by \([^)]*method[^)]*sub_code/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml's Prometheus and Grafana, and the Helm chart's Prometheus Operator objects.

interface ComposeService {
  image?: string;
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, unknown>;
  command?: string[];
}

/** The repository file or folder mounted at a container path, read-only ("./src:/dst:ro"); undefined if not. */
function mountedReadOnly(service: ComposeService | undefined, containerPath: string): string | undefined {
  for (const spec of service?.volumes ?? []) {
    const [host = '', container, mode] = spec.split(':');
    if (container === containerPath && host.startsWith('./') && mode === 'ro') return host.slice(2);
  }
  return undefined;
}

/** What compose's Prometheus and Grafana must be: built on this repository's files, mounted read-only. */
function monitoringProblems(compose: { services: Record<string, ComposeService> }, readFile: (file: string) => string): string[] {
  const problems: string[] = [];
  const { prometheus, grafana, api } = compose.services;
  if (!prometheus) problems.push('no prometheus service');
  if (!grafana) problems.push('no grafana service');
  if (!prometheus || !grafana) return problems;
  const configArg = prometheus.command?.find((arg) => arg.startsWith('--config.file='))?.slice('--config.file='.length) ?? '/etc/prometheus/prometheus.yml';
  const configFile = mountedReadOnly(prometheus, configArg);
  if (!configFile) return [...problems, `prometheus: its configuration ${configArg} is not mounted read-only from this repository`];
  const config = parse(readFile(configFile)) as { rule_files?: string[]; scrape_configs?: { job_name: string; static_configs?: { targets: string[] }[]; metrics_path?: string }[] };
  for (const rules of config.rule_files ?? []) {
    if (mountedReadOnly(prometheus, rules) !== ALERTS) problems.push(`prometheus: rule file ${rules} is not ${ALERTS} mounted read-only`);
  }
  if (!(config.rule_files ?? []).length) problems.push('prometheus: loads no rule file');
  const targets = (config.scrape_configs ?? []).flatMap((job) => (job.metrics_path ?? '/metrics') === '/metrics' ? job.static_configs?.flatMap((s) => s.targets) ?? [] : []);
  const apiTarget = `api:${api?.environment?.PORT ?? 3000}`;
  if (!targets.includes(apiTarget)) problems.push(`prometheus: does not scrape the API at ${apiTarget}`);
  if (!targets.includes('worker:9464')) problems.push("prometheus: does not scrape the worker's metrics port worker:9464");

  if (!mountedReadOnly(grafana, '/etc/grafana/provisioning')) problems.push('grafana: its provisioning is not mounted read-only from this repository');
  const provisioning = mountedReadOnly(grafana, '/etc/grafana/provisioning') ?? '';
  const sources = provisioning ? (parse(readFile(`${provisioning}/datasources/prometheus.yml`)) as { datasources: { type: string; url: string }[] }).datasources : [];
  if (!sources.some((s) => s.type === 'prometheus' && s.url === 'http://prometheus:9090')) problems.push('grafana: no data source for http://prometheus:9090');
  const providers = provisioning ? (parse(readFile(`${provisioning}/dashboards/durapay.yml`)) as { providers: { options: { path: string } }[] }).providers : [];
  for (const provider of providers) {
    if (mountedReadOnly(grafana, provider.options.path) !== 'deploy/grafana') problems.push(`grafana: dashboards path ${provider.options.path} is not deploy/grafana mounted read-only`);
  }
  if (providers.length === 0) problems.push('grafana: no dashboard provider');
  return problems;
}

describe('docker-compose.yml', () => {
  const compose = () => parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };

  it("runs Prometheus on durapay's rules, scraping the API and the worker, and Grafana with the dashboards, from read-only files", () => {
    expect(monitoringProblems(compose(), read)).toEqual([]);
    for (const name of ['prometheus', 'grafana']) {
      for (const port of compose().services[name]!.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }

    const broken = compose();
    broken.services.prometheus!.volumes = broken.services.prometheus!.volumes!.map((v) => v.replace('alerts.yml:ro', 'alerts.yml'));
    broken.services.grafana!.volumes = broken.services.grafana!.volumes!.filter((v) => !v.startsWith('./deploy/grafana:'));
    expect(monitoringProblems(broken, (file) => read(file).replace("'worker:9464'", "'worker:9465'"))).toEqual([
      `prometheus: rule file /etc/prometheus/alerts.yml is not ${ALERTS} mounted read-only`,
      "prometheus: does not scrape the worker's metrics port worker:9464",
      'grafana: dashboards path /etc/durapay/dashboards is not deploy/grafana mounted read-only',
    ]);
  });

  it("gives Prometheus a configuration promtool accepts, with the rule file where the container has it", () => {
    const dir = tempDir();
    copyFileSync(join(root, ALERTS), join(dir, 'alerts.yml'));
    writeFileSync(join(dir, 'prometheus.yml'), read('deploy/prometheus/prometheus.yml').replace('/etc/prometheus/alerts.yml', join(dir, 'alerts.yml')));
    const { status, output } = promtool(['check', 'config', join(dir, 'prometheus.yml')]);
    expect(output, output).toContain('SUCCESS');
    expect(status).toBe(0);
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
}

function helmTemplate(helm: string, home: string, set: string[]): Promise<K8sObject[]> {
  const args = ['template', 'durapay', join(root, 'deploy/helm/durapay'), '-f', join(root, 'deploy/helm/durapay/ci/production-values.yaml'), ...set.flatMap((s) => ['--set', s])];
  return new Promise((resolve, reject) => {
    execFile(helm, args, { env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home }, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`helm template: ${stderr || err.message}`));
      else resolve(parseAllDocuments(stdout).map((doc) => doc.toJSON() as K8sObject).filter(Boolean));
    });
  });
}

describe('the Helm chart', () => {
  let helm: string;
  let home: string;
  beforeAll(async () => {
    helm = (await resolveHelm(() => {}, { build: false })).path;
    home = tempDir();
  });

  it('renders no ServiceMonitor or PrometheusRule by default', async () => {
    const objects = await helmTemplate(helm, home, []);
    expect(objects.filter((o) => ['ServiceMonitor', 'PrometheusRule'].includes(o.kind) || o.metadata.name.endsWith('-worker-metrics'))).toEqual([]);
  });

  it("renders, when asked, a ServiceMonitor of the API's and the workers' metrics and a PrometheusRule of alerts.yml", async () => {
    const objects = await helmTemplate(helm, home, ['metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.labels.release=kps']);
    const rule = objects.find((o) => o.kind === 'PrometheusRule')!;
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.metadata.labels?.release).toBe('kps');
    expect(rule.spec.groups).toEqual(alertGroups());

    const monitor = objects.find((o) => o.kind === 'ServiceMonitor')!;
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.spec.endpoints.map((e: { port: string; path: string }) => `${e.port} ${e.path}`).sort()).toEqual(['http /metrics', 'metrics /metrics']);
    // It selects the API's Service and the workers' metrics Service, and each of them has the port it scrapes.
    const selected = objects.filter(
      (o) =>
        o.kind === 'Service' &&
        Object.entries(monitor.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => o.metadata.labels?.[k] === v) &&
        (monitor.spec.selector.matchExpressions as { key: string; values: string[] }[]).every((e) => e.values.includes(o.metadata.labels?.[e.key] ?? '')),
    );
    expect(selected.map((s) => s.metadata.name).sort()).toEqual(['durapay-api', 'durapay-worker-metrics']);
    const workerMetrics = selected.find((s) => s.metadata.name === 'durapay-worker-metrics')!;
    expect(workerMetrics.spec.ports.map((p: { name: string }) => p.name)).toEqual(['metrics']);
    // The headless Service's selector takes every worker build's pods, which name the port it targets.
    const workers = objects.filter((o) => o.kind === 'Deployment' && o.spec.template.metadata.labels['app.kubernetes.io/component'] === 'worker');
    expect(workers.length).toBe(2);
    for (const worker of workers) {
      const labels = worker.spec.template.metadata.labels as Record<string, string>;
      expect(Object.entries(workerMetrics.spec.selector as Record<string, string>).every(([k, v]) => labels[k] === v), worker.metadata.name).toBe(true);
      expect(worker.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name)).toContain(workerMetrics.spec.ports[0].targetPort);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A running engine.

const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
const has = (samples: Sample[], name: string, labels: Record<string, string> = {}) => samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

/** A merchant's webhook receiver: /ok answers 200, anything else 500. */
async function startReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(req.url === '/ok' ? 200 : 500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const beijingDay = (ms: number) => new Date(ms + 8 * 3_600_000).toISOString().slice(0, 10);

describe('a running engine', () => {
  let stack: Stack;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const workers: EngineProcess[] = [];
  beforeAll(async () => {
    receiver = await startReceiver();
    stack = await startStack({ orderTimeout: '60s' });
  }, 60_000);
  afterAll(async () => {
    for (const worker of workers) await worker.kill();
    await stack?.stop();
    await receiver?.close();
  });

  async function spawnWorker(env: Record<string, string> = {}) {
    const lines: string[] = [];
    const worker = await stack.spawnWorkerProcess(env, (line) => lines.push(line));
    workers.push(worker);
    const entries = () => lines.flatMap((line) => { try { return [JSON.parse(line)]; } catch { return []; } });
    const url = await waitFor('the worker to say where its metrics are', () => entries().find((e) => e.msg === 'worker metrics listening')?.url as string | undefined);
    const running = await waitFor('the worker to run', () => entries().find((e) => e.msg?.startsWith('worker running')) as { buildId: string } | undefined, { timeoutMs: 60_000 });
    return { worker, url, buildId: running.buildId };
  }

  it('exports every metric a dashboard or an alert names, and the gauges and latencies say what happened', async () => {
    // Only this worker process takes the stack's tasks while the orders run, so its metrics are theirs.
    await stack.stopWorker();
    const a = await spawnWorker();

    // A QR order paid through Alipay's notify, with a refund; its webhook delivered.
    const paid = stack.newOrderNo('paid');
    expect((await stack.createPayment({ outTradeNo: paid, amount: '8.80', subject: 'observability', notifyUrl: `${receiver.url}/ok` })).status).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${paid}/pay`)).status).toBe(200);
    await stack.waitForStatus(paid, 'PAID');
    expect((await stack.refund(paid, { outRequestNo: 'r1', amount: '1.00' })).status).toBe(201);
    await stack.waitForRefund(paid, 'r1', 'SUCCEEDED');
    // A barcode payment, paid at once; one Alipay refuses.
    const barcode = await stack.createPayment({ outTradeNo: stack.newOrderNo('barcode'), amount: '3.00', subject: 'barcode', method: 'barcode', authCode: await buyerCode(stack, { kind: 'pays' }) });
    expect(barcode.body.status).toBe('PAID');
    const refused = await stack.createPayment({ outTradeNo: stack.newOrderNo('refused'), amount: '3.00', subject: 'refused', method: 'barcode', authCode: await buyerCode(stack, { kind: 'balance_not_enough' }) });
    expect(refused.body.status).toBe('FAILED');
    // An order whose merchant's endpoint fails, one in REVIEW, one waiting.
    const failing = stack.newOrderNo('failing-hook');
    expect((await stack.createPayment({ outTradeNo: failing, amount: '2.00', subject: 'failing hook', notifyUrl: `${receiver.url}/down` })).status).toBe(201);
    expect((await stack.simCall('POST', `/sim/trades/${failing}/pay`)).status).toBe(200);
    await stack.waitForStatus(failing, 'PAID');
    const review = stack.newOrderNo('review');
    expect((await stack.createPayment({ outTradeNo: review, amount: '5.00', subject: 'review' })).status).toBe(201);
    await stack.inReviewThenPaid(review);
    const waiting = stack.newOrderNo('waiting');
    expect((await stack.createPayment({ outTradeNo: waiting, amount: '6.00', subject: 'waiting' })).status).toBe(201);
    // Yesterday (Beijing) reconciled: no order that day, so no mismatch.
    const yesterday = beijingDay(Date.now() - 86_400_000);
    expect((await stack.ops('POST', '/ops/reconciliations', { date: yesterday })).status).toBe(202);
    const day = await waitFor('the reconciliation to end', async () => {
      const answer = await stack.ops('GET', `/ops/reconciliations/${yesterday}`);
      return answer.body?.status === 'RUNNING' ? undefined : answer.body;
    }, { timeoutMs: 30_000 });
    expect(day.status).toBe('DONE');

    const workerA = await waitFor(
      "the worker's counters and gauges to show it all",
      async () => {
        const samples = await scrape(a.url);
        const ready =
          total(samples, 'durapay_webhook_attempts_total', { outcome: 'delivered' }) >= 1 &&
          total(samples, 'durapay_webhook_oldest_failing_age_seconds') > 0 &&
          total(samples, 'durapay_webhook_pending_deliveries') === 1 &&
          total(samples, 'durapay_swept_polls_total') >= 1 &&
          total(samples, 'durapay_payments_in_review') === 1 &&
          total(samples, 'durapay_reconciliation_yesterday_done', { app_id: stack.appId }) === 1;
        return ready ? samples : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // pay→PAID: the notify-paid orders (two, unless the poll sweeper's query got to one first: that one is not a
    // notify's) and the barcode one, each counted once, in well under the test's patience.
    const byNotify = total(workerA, 'durapay_payment_paid_latency_seconds_count', { via: 'notify' });
    expect(byNotify).toBeGreaterThanOrEqual(1);
    expect(byNotify).toBeLessThanOrEqual(2);
    expect(total(workerA, 'durapay_payment_paid_latency_seconds_count', { via: 'barcode' })).toBe(1);
    expect(total(workerA, 'durapay_payment_paid_latency_seconds_sum', { via: 'notify' })).toBeGreaterThan(0);
    expect(total(workerA, 'durapay_payment_paid_latency_seconds_sum', { via: 'notify' })).toBeLessThan(2 * 10);
    expect(total(workerA, 'durapay_payment_paid_latency_seconds_bucket', { via: 'notify', le: '60' })).toBe(byNotify);
    expect(total(workerA, 'durapay_payments_awaiting_payment')).toBe(1);
    expect(total(workerA, 'durapay_payments_in_review_oldest_age_seconds')).toBeGreaterThan(0);
    expect(total(workerA, 'durapay_webhook_pending_deliveries')).toBe(1);
    expect(total(workerA, 'durapay_webhook_oldest_pending_age_seconds')).toBeGreaterThan(0);
    expect(total(workerA, 'durapay_reconciliation_mismatches', { app_id: stack.appId })).toBe(0);
    expect(total(workerA, 'durapay_payments_failed_total', { status: 'FAILED' })).toBe(1);
    expect(total(workerA, 'durapay_refunds_total', { outcome: 'succeeded', kind: 'merchant' })).toBe(1);
    expect(total(workerA, 'temporal_num_pollers', { poller_type: 'workflow_task' })).toBeGreaterThan(0);

    // A build that cannot replay the waiting order's history, under its build id (the mistake the alert is for):
    // the order's next workflow task fails with a non-determinism error, which the SDK counts by its reason.
    const dir = tempDir();
    const changed = join(dir, 'changed-workflows.js');
    writeFileSync(changed, (await bundleChangedWorkflows()).code);
    const bundled = readFileSync(inject('workflowBundlePath'), 'utf8');
    expect(a.buildId).toMatch(/^workflows-|^[\w.-]+$/);
    await a.worker.stop();
    const b = await spawnWorker({ WORKFLOW_BUNDLE: changed, TEMPORAL_WORKER_BUILD_ID: a.buildId });
    expect(createHash('sha256').update(readFileSync(changed, 'utf8')).digest('hex')).not.toBe(createHash('sha256').update(bundled).digest('hex'));
    expect((await stack.simCall('POST', `/sim/trades/${waiting}/pay`)).status).toBe(200);
    const workerB = await waitFor(
      'a non-determinism error to be counted',
      async () => {
        const samples = await scrape(b.url);
        return total(samples, 'temporal_workflow_task_execution_failed', { failure_reason: 'NonDeterminismError', workflow_type: 'paymentWorkflow' }) >= 1 ? samples : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    const api = await scrape(`${stack.api.url}/metrics`);
    expect(total(api, 'durapay_http_request_duration_seconds_count', { method: 'POST', route: '/v1/payments' })).toBeGreaterThanOrEqual(6);
    const exported = [...workerA, ...workerB, ...api];
    const named = [...namedMetrics()];
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((name) => !has(exported, name))).toEqual([]);
    // No label holds an order number.
    expect(exported.filter((s) => Object.values(s.labels).some((v) => [paid, failing, review, waiting].some((no) => v.includes(no))))).toEqual([]);
  }, 180_000);

  it("leaves the database gauges out of a scrape when PostgreSQL does not answer, and serves them once it does", async () => {
    const gone = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 1_000 });
    try {
      const text = await databaseMetrics(gone, { platformAppId: stack.appId, logger: createLogger('test', 'silent') }).metrics();
      expect(parseMetrics(text)).toEqual([]);
      expect(text.split('\n').filter((line) => line.startsWith('# the database gauges')).length).toBe(3);
      expect(text).toContain('durapay_payments_in_review');
    } finally {
      await gone.end();
    }
    const served = parseMetrics(await databaseMetrics(stack.pool, { platformAppId: stack.appId, logger: createLogger('test', 'silent') }).metrics());
    expect(served.map((s) => s.name).sort()).toEqual([
      'durapay_payments_awaiting_payment', 'durapay_payments_in_review', 'durapay_payments_in_review_oldest_age_seconds',
      'durapay_reconciliation_mismatches', 'durapay_reconciliation_yesterday_done',
      'durapay_webhook_oldest_failing_age_seconds', 'durapay_webhook_oldest_pending_age_seconds', 'durapay_webhook_pending_deliveries',
    ]);
  });
});
