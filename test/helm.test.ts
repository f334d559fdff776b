// The Helm chart in deploy/helm/durapay, linted and rendered by Helm 4 (scripts/helm.ts: a `helm` 4 on PATH, or the
// one the global setup builds from Helm's Go module). Every rendered object is validated against the Kubernetes
// schemas (kubernetes-models), and chartProblems lists what a production install must not lack: the API's probes
// (liveness on /healthz, readiness on /readyz), its rolling update that keeps every replica, PodDisruptionBudgets,
// the API's autoscaler, requests and limits, a worker memory limit well above its heap cap, a worker grace period
// above WORKER_SHUTDOWN_GRACE, the migration hook, secrets from Secrets only, no master key in the API, one worker
// Deployment per build with the build id of its image tag. Each check is also shown a broken rendering, made by
// editing the rendered objects or by rendering a patched copy of the chart, and must name what broke.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../lib/platform/config.js';
import { SECRET_VARIABLES } from '../lib/platform/environment.js';
import { resolveHelm } from '../scripts/helm.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CHART = join(root, 'deploy/helm/durapay');
const PRODUCTION_VALUES = join(CHART, 'ci/production-values.yaml');
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const packageVersion = (JSON.parse(read('package.json')) as { version: string }).version;

// ---------------------------------------------------------------------------------------------------------------
// What the checks read: rendered objects, loosely typed (a broken rendering may lack anything).

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  [key: string]: unknown;
}

interface Workload {
  object: K8sObject;
  template: IPodTemplateSpec;
  /** "Deployment api", "Job durapay-migrate": for messages. */
  what: string;
}

/** The environment variables of secrets: given as files (NAME_FILE) from Secrets, or by secretKeyRef; never values. */
const SECRET_ENV = new Set<string>(['DATABASE_URL', ...SECRET_VARIABLES]);
/** The Kubernetes objects the chart renders, and the schema each is validated against. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'autoscaling/v2 HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1 Job': Job,
  'networking.k8s.io/v1 Ingress': Ingress,
  'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
  'v1 Service': Service,
};

/** Each object's problems against the Kubernetes schema of its kind (an unknown kind is one). */
function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion} ${object.kind}`];
    if (!Model) {
      problems.push(`${object.kind} ${object.metadata?.name}: no schema for ${object.apiVersion} ${object.kind} (add it to MODELS)`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (err) {
      problems.push(`${object.kind} ${object.metadata?.name}: ${(err as Error).message}`);
    }
  }
  return problems;
}

const component = (object: K8sObject) => object.spec?.template?.metadata?.labels?.['app.kubernetes.io/component'] as string | undefined;

function workloads(objects: K8sObject[]): Workload[] {
  return objects
    .filter((o) => (o.kind === 'Deployment' || o.kind === 'Job') && o.spec?.template)
    .map((object) => ({ object, template: object.spec.template as IPodTemplateSpec, what: `${object.kind} ${object.metadata.name}` }));
}

const containersOf = (template: IPodTemplateSpec): IContainer[] => [...(template.spec?.initContainers ?? []), ...(template.spec?.containers ?? [])];

/** A PodDisruptionBudget or a Service selects a pod when each of its matchLabels is one of the pod's labels. */
function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector?.matchLabels || Object.keys(selector.matchLabels).length === 0 || selector.matchExpressions?.length) return false;
  return Object.entries(selector.matchLabels).every(([key, value]) => labels[key] === value);
}

const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL_SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** A Kubernetes memory quantity in bytes ("512Mi", "1G", "1073741824"); undefined when it is none. */
function quantityBytes(quantity: unknown): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity ?? ''));
  if (!match) return undefined;
  const [, number = '', suffix = ''] = match;
  return Number(number) * (BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix] ?? NaN);
}

/** WORKER_SHUTDOWN_GRACE's form (500ms, 30s, 2m, 1h) in milliseconds. */
function durationMs(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
}

const envOf = (container: IContainer, name: string) => container.env?.find((e) => e.name === name);
const imageTag = (image = '') => (/:([^:/@]+)$/.exec(image)?.[1] ?? '');

/** The Secret name and key behind a file path in a container, if the path is a file mounted from a Secret. */
function secretFileSource(template: IPodTemplateSpec, container: IContainer, file: string): { secret: string; key: string } | undefined {
  for (const mount of container.volumeMounts ?? []) {
    const dir = mount.mountPath.replace(/\/$/, '');
    if (!file.startsWith(`${dir}/`)) continue;
    const relative = file.slice(dir.length + 1);
    const volume = template.spec?.volumes?.find((v: IVolume) => v.name === mount.name);
    const sources = volume?.secret
      ? [{ secret: { name: volume.secret.secretName, items: volume.secret.items } }]
      : (volume?.projected?.sources ?? []);
    for (const source of sources) {
      if (!source.secret?.name) continue;
      const item = source.secret.items?.find((i) => i.path === relative);
      if (item) return { secret: source.secret.name, key: item.key };
      if (!source.secret.items) return { secret: source.secret.name, key: relative };
    }
  }
  return undefined;
}

/** The Secret keys a pod can read: by secretKeyRef or in its secret volumes. */
function secretKeysOf(template: IPodTemplateSpec): Set<string> {
  const keys = new Set<string>();
  for (const container of containersOf(template)) {
    for (const env of container.env ?? []) {
      const ref = env.valueFrom?.secretKeyRef;
      if (ref) keys.add(`${ref.name}/${ref.key}`);
    }
  }
  for (const volume of template.spec?.volumes ?? []) {
    if (volume.secret) keys.add(`${volume.secret.secretName}/${volume.secret.items ? volume.secret.items.map((i) => i.key).join(',') : '*'}`);
    for (const source of volume.projected?.sources ?? []) {
      for (const item of source.secret?.items ?? [{ key: '*', path: '' }]) if (source.secret) keys.add(`${source.secret.name}/${item.key}`);
    }
  }
  return keys;
}

interface ChartCheckOptions {
  /** The worker's V8 heap cap in MiB (the image's --max-old-space-size). */
  workerHeapMiB: number;
}

/** What a production rendering of the chart must not lack; empty when nothing. */
function chartProblems(objects: K8sObject[], { workerHeapMiB }: ChartCheckOptions): string[] {
  const problems: string[] = [];
  const all = workloads(objects);
  const deployments = all.filter(({ object }) => object.kind === 'Deployment');
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  const hasPdb = ({ template }: Workload) => pdbs.some((pdb) => selects(pdb.spec?.selector, template.metadata?.labels));

  for (const object of objects) {
    if (object.kind === 'Secret') problems.push(`renders Secret ${object.metadata.name}: secrets come from existing Secrets, never from values`);
  }

  // Every container: requests and limits, a pinned image; secrets never as values.
  for (const { template, what } of all) {
    for (const container of containersOf(template)) {
      const where = `${what} container ${container.name}`;
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory']) {
          if (container.resources?.[kind]?.[resource] === undefined) problems.push(`${where}: no ${resource} ${kind === 'requests' ? 'request' : 'limit'}`);
        }
      }
      const tag = imageTag(container.image);
      if (!tag || tag === 'latest') problems.push(`${where}: image ${container.image} is not pinned to a tag`);
      for (const env of container.env ?? []) {
        if (SECRET_ENV.has(env.name) && env.value !== undefined) problems.push(`${where}: ${env.name} is a value, not from a Secret`);
        const secretName = env.name.replace(/_FILE$/, '');
        if (env.name.endsWith('_FILE') && SECRET_ENV.has(secretName) && !secretFileSource(template, container, env.value ?? '')) {
          problems.push(`${where}: ${env.name} (${env.value}) is not a file mounted from a Secret`);
        }
      }
      const databaseUrl = envOf(container, 'DATABASE_URL');
      if (databaseUrl && !databaseUrl.valueFrom?.secretKeyRef) problems.push(`${where}: DATABASE_URL does not come from a Secret (secretKeyRef)`);
    }
  }

  // The API.
  const apis = deployments.filter(({ object }) => component(object) === 'api');
  if (apis.length !== 1) problems.push(`${apis.length} API Deployments, not one`);
  const workers = deployments.filter(({ object }) => component(object) === 'worker');
  const masterKeySources = new Set(
    workers.flatMap(({ template }) =>
      containersOf(template).flatMap((c) => {
        const source = secretFileSource(template, c, envOf(c, 'DURAPAY_MASTER_KEY_FILE')?.value ?? '');
        return source ? [`${source.secret}/${source.key}`] : [];
      }),
    ),
  );
  for (const api of apis) {
    const { object, template } = api;
    const container = template.spec?.containers?.[0];
    const liveness = container?.livenessProbe?.httpGet?.path;
    if (liveness !== '/healthz') problems.push(`API: no liveness probe on /healthz (${liveness ?? 'none'})`);
    if (liveness === '/readyz') problems.push('API: liveness probe on /readyz: a database or Temporal outage would restart every API pod');
    const readiness = container?.readinessProbe?.httpGet?.path;
    if (readiness !== '/readyz') problems.push(`API: no readiness probe on /readyz (${readiness ?? 'none'})`);
    const strategy = object.spec?.strategy;
    const maxUnavailable = strategy?.rollingUpdate?.maxUnavailable;
    if (strategy?.type !== 'RollingUpdate' || (maxUnavailable !== 0 && maxUnavailable !== '0%')) {
      problems.push(`API: rolling update is not maxUnavailable 0 (${strategy?.type ?? 'default'}, maxUnavailable ${maxUnavailable ?? 'default 25%'})`);
    }
    if (!hasPdb(api)) problems.push('API: no PodDisruptionBudget');
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec?.scaleTargetRef?.kind === 'Deployment' && o.spec?.scaleTargetRef?.name === object.metadata.name);
    if (!hpa) problems.push('API: no HorizontalPodAutoscaler');
    for (const c of containersOf(template)) {
      for (const name of ['DURAPAY_MASTER_KEY', 'DURAPAY_MASTER_KEY_FILE', 'ALIPAY_PRIVATE_KEY', 'ALIPAY_PRIVATE_KEY_FILE']) {
        if (envOf(c, name)) problems.push(`API: has ${name}: the API never holds the master key or the app's private key`);
      }
    }
    const apiKeys = secretKeysOf(template);
    for (const source of masterKeySources) if (apiKeys.has(source)) problems.push(`API: can read the master key (Secret key ${source})`);
  }

  // The workers: one Deployment per build.
  if (workers.length === 0) problems.push('no worker Deployment');
  const builds = new Map<string, string>();
  for (const worker of workers) {
    const { object, template } = worker;
    const where = `worker ${object.metadata.name}`;
    const container = template.spec?.containers?.[0];
    if (!container) continue;
    if (!container.livenessProbe) problems.push(`${where}: no liveness probe`);
    if (!hasPdb(worker)) problems.push(`${where}: no PodDisruptionBudget`);
    if (!envOf(container, 'DURAPAY_MASTER_KEY_FILE')) problems.push(`${where}: no DURAPAY_MASTER_KEY_FILE`);
    const limit = quantityBytes(container.resources?.limits?.memory);
    if (limit !== undefined && limit < 2 * workerHeapMiB * 2 ** 20) {
      problems.push(`${where}: memory limit ${container.resources?.limits?.memory} is not at least twice the ${workerHeapMiB} MiB heap cap`);
    }
    const graceText = envOf(container, 'WORKER_SHUTDOWN_GRACE')?.value ?? '30s';
    const graceMs = durationMs(graceText) ?? 0;
    const podGrace = template.spec?.terminationGracePeriodSeconds ?? 30;
    if (podGrace * 1000 <= graceMs) problems.push(`${where}: terminationGracePeriodSeconds ${podGrace} is not above WORKER_SHUTDOWN_GRACE ${graceText}`);
    const buildId = envOf(container, 'TEMPORAL_WORKER_BUILD_ID')?.value;
    const tag = imageTag(container.image);
    if (buildId !== tag) problems.push(`${where}: TEMPORAL_WORKER_BUILD_ID ${buildId ?? 'unset'} is not its image tag ${tag}`);
    if (buildId && builds.has(buildId)) problems.push(`${where}: build ${buildId} also runs in ${builds.get(buildId)}`);
    if (buildId) builds.set(buildId, object.metadata.name);
  }

  // The migration: a hook before the new build's pods, in the worker's image, with the database and the master key.
  const migrations = all.filter(({ object, template }) => object.kind === 'Job' && containersOf(template).some((c) => [...(c.command ?? []), ...(c.args ?? [])].includes('dist/scripts/migrate.js')));
  if (migrations.length !== 1) problems.push(`${migrations.length} Jobs run dist/scripts/migrate.js, not one`);
  for (const { object, template } of migrations) {
    const hooks = (object.metadata.annotations?.['helm.sh/hook'] ?? '').split(',').map((h) => h.trim());
    if (!hooks.includes('pre-install') || !hooks.includes('pre-upgrade')) problems.push(`migration Job: not a pre-install,pre-upgrade hook (${hooks.join(',') || 'no hook'})`);
    if (!object.metadata.annotations?.['helm.sh/hook-delete-policy']) problems.push('migration Job: no hook-delete-policy');
    if (object.spec?.backoffLimit === undefined) problems.push('migration Job: no backoffLimit');
    const container = containersOf(template)[0];
    for (const name of ['DATABASE_URL', 'DURAPAY_MASTER_KEY_FILE']) if (container && !envOf(container, name)) problems.push(`migration Job: no ${name}`);
  }
  return problems;
}

/** Variables of durapay's own containers that neither the API nor the worker reads. */
function unknownVariables(objects: K8sObject[], repositories: string[]): string[] {
  const known = new Set(CONFIG_VARIABLES);
  return workloads(objects).flatMap(({ template, what }) =>
    containersOf(template)
      .filter((c) => repositories.some((repository) => c.image?.startsWith(`${repository}:`)))
      .flatMap((c) => (c.env ?? []).filter((e) => !known.has(e.name)).map((e) => `${what}: ${e.name}`)),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Helm.

let helm: string;
let helmHome: string;
const run = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      helm,
      args,
      {
        timeout: 30_000,
        maxBuffer: 32 * 2 ** 20,
        // Helm's own settings and caches in a folder of the test's, never the user's.
        env: { ...process.env, HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_DATA_HOME: join(helmHome, 'data') },
      },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });

/** `helm template` of a chart with values files and --set flags; throws with Helm's message when it fails. */
async function render(opts: { chart?: string; values?: string[]; set?: string[]; setJson?: string[] } = {}): Promise<K8sObject[]> {
  const args = ['template', 'durapay', opts.chart ?? CHART, '--namespace', 'payments'];
  for (const file of opts.values ?? [PRODUCTION_VALUES]) args.push('-f', file);
  for (const flag of opts.set ?? []) args.push('--set', flag);
  for (const flag of opts.setJson ?? []) args.push('--set-json', flag);
  const { code, stdout, stderr } = await run(args);
  if (code !== 0) throw new Error(`helm template failed: ${stderr.trim()}`);
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The chart copied into a temporary folder, one template edited: `replace` must change it. */
function patchedChart(template: string, replace: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-chart-'));
  cpSync(CHART, dir, { recursive: true });
  const file = join(dir, 'templates', template);
  const before = readFileSync(file, 'utf8');
  const after = replace(before);
  if (after === before) throw new Error(`the patch of ${template} changed nothing`);
  writeFileSync(file, after);
  patched.push(dir);
  return dir;
}
const patched: string[] = [];

/** The worker image's heap cap, from the Dockerfile's worker CMD (--max-old-space-size). */
function workerHeapMiBFromDockerfile(): number {
  let stage = '';
  for (const instruction of DockerfileParser.parse(read('Dockerfile')).getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    const args = instruction.getArgumentsContent() ?? '';
    if (keyword === 'FROM') stage = args.split(/\s+/)[2] ?? '';
    if (keyword === 'CMD' && stage === 'worker') {
      const cap = /--max-old-space-size=(\d+)/.exec(args)?.[1];
      if (cap) return Number(cap);
    }
  }
  throw new Error('the Dockerfile has no worker CMD with --max-old-space-size');
}

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind} ${o.metadata.name}`).join(', ')}`);
  return found;
};
const workerDeployments = (objects: K8sObject[]) => byKind(objects, 'Deployment').filter((o) => component(o) === 'worker');
const firstContainer = (object: K8sObject) => (object.spec.template as IPodTemplateSpec).spec!.containers[0]!;

let heapMiB: number;
let production: K8sObject[];

beforeAll(async () => {
  helm = (await resolveHelm(() => {}, { build: false })).path;
  helmHome = mkdtempSync(join(tmpdir(), 'durapay-helm-home-'));
  heapMiB = workerHeapMiBFromDockerfile();
  production = await render();
});

afterAll(() => {
  for (const dir of [helmHome, ...patched]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the chart as a real install renders it', () => {
  it('passes helm lint --strict with the values of a real install', async () => {
    const { code, stdout, stderr } = await run(['lint', '--strict', CHART, '-f', PRODUCTION_VALUES]);
    expect(`${stdout}${stderr}`, `${stdout}${stderr}`).toContain('0 chart(s) failed');
    expect(code).toBe(0);
  });

  it('renders objects that each validate against the Kubernetes schemas', () => {
    expect(production.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual(
      [
        'apps/v1 Deployment', // the API
        'apps/v1 Deployment', // worker build 0.1.0
        'apps/v1 Deployment', // worker build 0.1.0-rc.2, draining
        'autoscaling/v2 HorizontalPodAutoscaler',
        'batch/v1 Job', // the migration
        'networking.k8s.io/v1 Ingress',
        'policy/v1 PodDisruptionBudget',
        'policy/v1 PodDisruptionBudget',
        'policy/v1 PodDisruptionBudget',
        'v1 Service',
      ].sort(),
    );
    expect(schemaProblems(production)).toEqual([]);
  });

  it('lacks nothing chartProblems checks', () => {
    expect(chartProblems(production, { workerHeapMiB: heapMiB })).toEqual([]);
  });

  it('gives durapay containers only variables the API and the worker read', () => {
    expect(unknownVariables(production, ['durapay-api', 'durapay-worker'])).toEqual([]);
  });

  it("tags the images with the chart's appVersion, durapay's version, unless told otherwise", async () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(chart.appVersion).toBe(packageVersion);
    const objects = await render({ values: [], set: ['alipay.appId=2021000000000000', 'alipay.notifyUrl=https://pay.example.com/alipay/notify', 'temporal.address=temporal:7233'] });
    expect(firstContainer(named(objects, 'Deployment', 'durapay-api')).image).toBe(`durapay-api:${packageVersion}`);
    const [worker, ...others] = workerDeployments(objects);
    expect(others).toEqual([]);
    expect(firstContainer(worker!).image).toBe(`durapay-worker:${packageVersion}`);
    expect(envOf(firstContainer(worker!), 'TEMPORAL_WORKER_BUILD_ID')?.value).toBe(packageVersion);
    expect(chartProblems(objects, { workerHeapMiB: heapMiB })).toEqual([]);
    expect(schemaProblems(objects)).toEqual([]);
  });

  it('renders one worker Deployment per build, each keeping its name when a newer build is added', async () => {
    const names = workerDeployments(production).map((o) => o.metadata.name);
    expect(names).toEqual(['durapay-worker-0-1-0', 'durapay-worker-0-1-0-rc-2']);
    const ids = workerDeployments(production).map((o) => envOf(firstContainer(o), 'TEMPORAL_WORKER_BUILD_ID')?.value);
    expect(ids).toEqual(['0.1.0', '0.1.0-rc.2']);
    expect(workerDeployments(production).map((o) => o.spec.replicas)).toEqual([2, 1]);
    // Before the upgrade only 0.1.0-rc.2 ran: its Deployment is the same object after, so Helm keeps it running.
    const before = await render({ setJson: ['worker.builds=[{"tag":"0.1.0-rc.2"}]'] });
    expect(workerDeployments(before).map((o) => o.metadata.name)).toEqual(['durapay-worker-0-1-0-rc-2']);
    // The migration runs in the newest build's image.
    const migration = named(production, 'Job', 'durapay-migrate');
    expect(firstContainer(migration).image).toBe('durapay-worker:0.1.0');
  });

  it('gives the worker a grace period above its WORKER_SHUTDOWN_GRACE, derived from it', async () => {
    const objects = await render({ set: ['worker.shutdownGrace=2m'] });
    for (const worker of workerDeployments(objects)) {
      expect(envOf(firstContainer(worker), 'WORKER_SHUTDOWN_GRACE')?.value).toBe('2m');
      expect(worker.spec.template.spec.terminationGracePeriodSeconds).toBe(135);
    }
    await expect(render({ set: ['worker.shutdownGrace=soon'] })).rejects.toThrow(/shutdownGrace/);
  });

  it('keeps the secrets apart: the API gets the API keys, the worker the master key and the private key', () => {
    const api = firstContainer(named(production, 'Deployment', 'durapay-api'));
    const worker = firstContainer(workerDeployments(production)[0]!);
    const names = (c: IContainer) => (c.env ?? []).map((e) => e.name);
    expect(names(api)).toEqual(expect.arrayContaining(['DATABASE_URL', 'DURAPAY_API_KEYS_FILE', 'ALIPAY_PUBLIC_KEY_FILE', 'OPS_TOKEN_FILE']));
    expect(names(api)).not.toEqual(expect.arrayContaining(['DURAPAY_MASTER_KEY_FILE']));
    expect(names(api)).not.toEqual(expect.arrayContaining(['ALIPAY_PRIVATE_KEY_FILE']));
    expect(names(worker)).toEqual(expect.arrayContaining(['DATABASE_URL', 'DURAPAY_MASTER_KEY_FILE', 'ALIPAY_PRIVATE_KEY_FILE', 'ALIPAY_PUBLIC_KEY_FILE']));
    expect(names(worker)).not.toEqual(expect.arrayContaining(['DURAPAY_API_KEYS_FILE']));
    expect(envOf(api, 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({ name: 'durapay-database', key: 'url' });
  });

  it('renders Temporal mTLS, an API key and certificate mode from Secrets, the app certificate for the worker only', async () => {
    const objects = await render({
      set: [
        'temporal.tls.enabled=true',
        'temporal.tls.existingSecret=durapay-temporal-tls',
        'temporal.tls.caKey=ca.crt',
        'temporal.tls.serverName=temporal.internal',
        'temporal.apiKey.existingSecret=durapay-temporal-api-key',
        'alipay.keys.publicKey=',
        'alipay.certificates.existingSecret=durapay-alipay-certs',
      ],
    });
    expect(schemaProblems(objects)).toEqual([]);
    expect(chartProblems(objects, { workerHeapMiB: heapMiB })).toEqual([]);
    expect(unknownVariables(objects, ['durapay-api', 'durapay-worker'])).toEqual([]);
    const api = firstContainer(named(objects, 'Deployment', 'durapay-api'));
    const worker = firstContainer(workerDeployments(objects)[0]!);
    for (const name of ['TEMPORAL_TLS_CERT_FILE', 'TEMPORAL_TLS_KEY_FILE', 'TEMPORAL_TLS_CA_FILE', 'TEMPORAL_API_KEY_FILE', 'ALIPAY_PUBLIC_CERT_FILE', 'ALIPAY_ROOT_CERT_FILE']) {
      expect(envOf(api, name), name).toBeDefined();
      expect(envOf(worker, name), name).toBeDefined();
    }
    expect(envOf(worker, 'ALIPAY_APP_CERT_FILE')).toBeDefined();
    expect(envOf(api, 'ALIPAY_APP_CERT_FILE')).toBeUndefined();
    expect(envOf(api, 'ALIPAY_PUBLIC_KEY_FILE')).toBeUndefined();
  });

  it('offers a post-install/post-upgrade hook that makes the newest build current, off by default', async () => {
    expect(byKind(production, 'Job').map((o) => o.metadata.name)).toEqual(['durapay-migrate']);
    const objects = await render({ set: ['worker.setCurrentVersion.enabled=true'] });
    expect(schemaProblems(objects)).toEqual([]);
    expect(chartProblems(objects, { workerHeapMiB: heapMiB })).toEqual([]);
    const hook = named(objects, 'Job', 'durapay-set-current-version');
    expect(hook.metadata.annotations?.['helm.sh/hook']).toBe('post-install,post-upgrade');
    const container = firstContainer(hook);
    expect(container.image).toMatch(/^temporalio\/admin-tools:\d+\.\d+\.\d+/);
    expect(envOf(container, 'BUILD_ID')?.value).toBe('0.1.0');
    expect(envOf(container, 'DEPLOYMENT_NAME')?.value).toBe('durapay');
    expect(container.command?.join(' ')).toContain('temporal worker deployment set-current-version');
    // It reads no durapay secret: the database and the keys are not Temporal's credentials.
    expect(container.env?.some((e) => e.valueFrom)).toBe(false);
    expect(hook.spec.template.spec.volumes.some((v: IVolume) => v.name === 'secrets')).toBe(false);
  });
});

describe('what the chart refuses', () => {
  it('refuses an install without the values it cannot guess', async () => {
    await expect(render({ values: [] })).rejects.toThrow(/alipay\.appId is required|temporal\.address is required|alipay\.notifyUrl is required/);
    await expect(render({ set: ['temporal.address='] })).rejects.toThrow(/temporal\.address is required/);
  });

  it('refuses a secret among the plain settings', async () => {
    await expect(render({ set: ['extraEnv.DATABASE_URL=postgres://durapay:secret@db/durapay'] })).rejects.toThrow(/DATABASE_URL is a secret/);
    await expect(render({ set: ['worker.extraEnv.DURAPAY_MASTER_KEY=00'] })).rejects.toThrow(/DURAPAY_MASTER_KEY is a secret/);
  });

  it('refuses `latest`, a probe or resources taken away, a mistyped setting', async () => {
    await expect(render({ set: ['image.api.tag=latest'] })).rejects.toThrow(/image\/api\/tag/);
    await expect(render({ set: ['worker.builds[0].tag=latest'] })).rejects.toThrow(/tag/);
    await expect(render({ set: ['api.livenessProbe=null'] })).rejects.toThrow(/livenessProbe/);
    await expect(render({ set: ['worker.resources.limits=null'] })).rejects.toThrow(/limits/);
    await expect(render({ set: ['api.replcas=3'] })).rejects.toThrow(/replcas/);
  });

  it('refuses two builds whose tags give one Deployment name', async () => {
    await expect(render({ set: ['worker.builds[0].tag=1.0', 'worker.builds[1].tag=1-0'] })).rejects.toThrow(/both become the Deployment suffix/);
  });
});

type Mutation = [what: string, problem: RegExp, mutate: (objects: K8sObject[]) => void];
const api = (objects: K8sObject[]) => named(objects, 'Deployment', 'durapay-api');
const worker = (objects: K8sObject[]) => workerDeployments(objects)[0]!;
const without = (objects: K8sObject[], kind: string, name: string) => objects.splice(objects.indexOf(named(objects, kind, name)), 1);

const MUTATIONS: Mutation[] = [
  ['no API liveness probe', /API: no liveness probe on \/healthz/, (o) => delete firstContainer(api(o)).livenessProbe],
  ['API liveness on /readyz', /API: liveness probe on \/readyz/, (o) => (firstContainer(api(o)).livenessProbe!.httpGet!.path = '/readyz')],
  ['no API readiness probe', /API: no readiness probe on \/readyz/, (o) => delete firstContainer(api(o)).readinessProbe],
  ['API readiness on /healthz', /API: no readiness probe on \/readyz \(\/healthz\)/, (o) => (firstContainer(api(o)).readinessProbe!.httpGet!.path = '/healthz')],
  ['API maxUnavailable 1', /API: rolling update is not maxUnavailable 0/, (o) => (api(o).spec.strategy.rollingUpdate.maxUnavailable = 1)],
  ['API default strategy', /API: rolling update is not maxUnavailable 0/, (o) => delete api(o).spec.strategy],
  ['no API PDB', /API: no PodDisruptionBudget/, (o) => without(o, 'PodDisruptionBudget', 'durapay-api')],
  ['no worker PDB', /worker durapay-worker-0-1-0-rc-2: no PodDisruptionBudget/, (o) => without(o, 'PodDisruptionBudget', 'durapay-worker-0-1-0-rc-2')],
  ['no HPA', /API: no HorizontalPodAutoscaler/, (o) => without(o, 'HorizontalPodAutoscaler', 'durapay-api')],
  ['API limits gone', /Deployment durapay-api container api: no cpu limit/, (o) => delete firstContainer(api(o)).resources!.limits],
  ['migration requests gone', /Job durapay-migrate container migrate: no memory request/, (o) => delete firstContainer(named(o, 'Job', 'durapay-migrate')).resources!.requests!.memory],
  ['worker memory limit at the heap cap', /memory limit 256Mi is not at least twice the 256 MiB heap cap/, (o) => (firstContainer(worker(o)).resources!.limits!.memory = '256Mi')],
  ['worker grace equal to its shutdown grace', /terminationGracePeriodSeconds 30 is not above WORKER_SHUTDOWN_GRACE 30s/, (o) => (worker(o).spec.template.spec.terminationGracePeriodSeconds = 30)],
  ['worker grace left to the default', /terminationGracePeriodSeconds 30 is not above/, (o) => delete worker(o).spec.template.spec.terminationGracePeriodSeconds],
  ['no worker liveness probe', /worker durapay-worker-0-1-0: no liveness probe/, (o) => delete firstContainer(worker(o)).livenessProbe],
  ['migration not a pre-upgrade hook', /migration Job: not a pre-install,pre-upgrade hook/, (o) => (named(o, 'Job', 'durapay-migrate').metadata.annotations!['helm.sh/hook'] = 'pre-install')],
  ['migration without delete policy', /migration Job: no hook-delete-policy/, (o) => delete named(o, 'Job', 'durapay-migrate').metadata.annotations!['helm.sh/hook-delete-policy']],
  ['migration gone', /0 Jobs run dist\/scripts\/migrate\.js/, (o) => without(o, 'Job', 'durapay-migrate')],
  ['DATABASE_URL as a value', /DATABASE_URL is a value, not from a Secret/, (o) => (envOf(firstContainer(api(o)), 'DATABASE_URL')!.valueFrom = undefined, (envOf(firstContainer(api(o)), 'DATABASE_URL')!.value = 'postgres://durapay:secret@db/durapay'))],
  ['DATABASE_URL from a ConfigMap', /DATABASE_URL does not come from a Secret/, (o) => (envOf(firstContainer(worker(o)), 'DATABASE_URL')!.valueFrom = { configMapKeyRef: { name: 'settings', key: 'url' } })],
  ['a key file outside the secret mount', /ALIPAY_PRIVATE_KEY_FILE \(\/etc\/key\.pem\) is not a file mounted from a Secret/, (o) => (envOf(firstContainer(worker(o)), 'ALIPAY_PRIVATE_KEY_FILE')!.value = '/etc/key.pem')],
  ['a Secret rendered from values', /renders Secret durapay-keys/, (o) => o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'durapay-keys' }, stringData: { key: '00' } })],
  ['master key env in the API', /API: has DURAPAY_MASTER_KEY_FILE/, (o) => firstContainer(api(o)).env!.push({ name: 'DURAPAY_MASTER_KEY_FILE', value: '/run/secrets/durapay/master-key' })],
  ['master key mounted in the API', /API: can read the master key \(Secret key durapay-master-key\/master-key\)/, (o) =>
    api(o).spec.template.spec.volumes[0].projected.sources.push({ secret: { name: 'durapay-master-key', items: [{ key: 'master-key', path: 'm' }] } })],
  ['build id other than the tag', /TEMPORAL_WORKER_BUILD_ID 0\.0\.9 is not its image tag 0\.1\.0/, (o) => (envOf(firstContainer(worker(o)), 'TEMPORAL_WORKER_BUILD_ID')!.value = '0.0.9')],
  ['an unpinned image', /image durapay-worker:latest is not pinned/, (o) => (firstContainer(worker(o)).image = 'durapay-worker:latest')],
];

describe('chartProblems names what a broken rendering lacks', () => {
  it.each(MUTATIONS)('%s', (_what, problem, mutate) => {
    const objects = structuredClone(production);
    mutate(objects);
    const problems = chartProblems(objects, { workerHeapMiB: heapMiB });
    expect(problems.some((p) => problem.test(p)), problems.join('\n')).toBe(true);
  });

  it('sees a probe dropped from the API template', async () => {
    const chart = patchedChart('api.yaml', (text) => text.replace(/ {10}\{\{- with \.Values\.api\.livenessProbe \}\}[\s\S]*?\{\{- end \}\}\n/, ''));
    const problems = chartProblems(await render({ chart }), { workerHeapMiB: heapMiB });
    expect(problems).toEqual(['API: no liveness probe on /healthz (none)']);
  });

  it('sees the PodDisruptionBudgets dropped from the worker template', async () => {
    const chart = patchedChart('workers.yaml', (text) => text.slice(0, text.indexOf('---\napiVersion: policy/v1')) + '{{- end }}\n');
    const problems = chartProblems(await render({ chart }), { workerHeapMiB: heapMiB });
    expect(problems).toEqual(['worker durapay-worker-0-1-0: no PodDisruptionBudget', 'worker durapay-worker-0-1-0-rc-2: no PodDisruptionBudget']);
  });

  it('sees a worker grace period that ignores WORKER_SHUTDOWN_GRACE', async () => {
    const chart = patchedChart('workers.yaml', (text) => text.replace('{{ add $graceSeconds $.Values.worker.terminationGraceExtraSeconds }}', '30'));
    const problems = chartProblems(await render({ chart, set: ['worker.shutdownGrace=1m'] }), { workerHeapMiB: heapMiB });
    expect(problems).toEqual([
      'worker durapay-worker-0-1-0: terminationGracePeriodSeconds 30 is not above WORKER_SHUTDOWN_GRACE 1m',
      'worker durapay-worker-0-1-0-rc-2: terminationGracePeriodSeconds 30 is not above WORKER_SHUTDOWN_GRACE 1m',
    ]);
  });

  it('sees a worker memory limit set at the heap cap through the values', async () => {
    const problems = chartProblems(await render({ set: ['worker.resources.limits.memory=384Mi'] }), { workerHeapMiB: heapMiB });
    expect(problems).toEqual([
      'worker durapay-worker-0-1-0: memory limit 384Mi is not at least twice the 256 MiB heap cap',
      'worker durapay-worker-0-1-0-rc-2: memory limit 384Mi is not at least twice the 256 MiB heap cap',
    ]);
  });

  it('sees the API with the master key and an autoscaler switched off', async () => {
    const chart = patchedChart('api.yaml', (text) => text.replace('(dict "root" . "role" "api") | nindent 8', '(dict "root" . "role" "worker") | nindent 8'));
    const problems = chartProblems(await render({ chart, set: ['api.autoscaling.enabled=false'] }), { workerHeapMiB: heapMiB });
    expect(problems).toEqual(expect.arrayContaining(['API: no HorizontalPodAutoscaler', 'API: can read the master key (Secret key durapay-master-key/master-key)']));
  });

  it('sees an object the Kubernetes schemas refuse', () => {
    const objects = structuredClone(production);
    api(objects).spec.replicas = 'two';
    delete (firstContainer(worker(objects)) as Partial<IContainer>).name;
    expect(schemaProblems(objects)).toEqual([
      expect.stringMatching(/^Deployment durapay-api: .*replicas/),
      expect.stringMatching(/^Deployment durapay-worker-0-1-0: .*name/),
    ]);
  });
});
