// docker-compose.yml, the files it mounts from deploy/ and the Dockerfile, read and checked against
// the code they deploy (there is no Docker engine to run them in the tests). Each check lists what
// is wrong, and each is also shown a broken copy, so it is seen to fail: a variable the
// configuration does not know, a secret file not mounted, a port or health check missing, an image
// not pinned, Temporal's schema, namespace or search attributes other than the cluster's of
// TEMPORAL_MODE=cluster, a service started before what it needs, a final image that runs tsx or
// runs as root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DockerfileParser } from 'dockerfile-ast';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../lib/platform/config.js';
import { searchAttributes } from '../lib/payments/payment.js';
import { PAYMENT_SEARCH_ATTRIBUTES } from '../scripts/embedded/temporal.js';
import {
  CLUSTER_DATABASES,
  CLUSTER_DYNAMIC_CONFIG,
  CLUSTER_NAMESPACE,
  CLUSTER_RETENTION_DAYS,
  CLUSTER_SCHEMA,
  clusterSchemaSteps,
  NUM_HISTORY_SHARDS,
  TEMPORAL_SERVER_VERSION,
} from '../scripts/embedded/temporal-cluster.js';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

interface Service {
  build?: unknown;
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  secrets?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
  command?: string | string[];
  entrypoint?: string | string[];
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  secrets?: Record<string, unknown>;
}

/** As Compose reads it: `<<` merges the shared environment into the worker's and the API's. */
const parseCompose = (text: string) => parse(text, { merge: true }) as Compose;
const composeText = read('docker-compose.yml');
const dockerfileText = read('Dockerfile');
const caddyText = existsSync(new URL('../deploy/Caddyfile', import.meta.url)) ? read('deploy/Caddyfile') : '';
const initScriptText = ['db/docker-init.sh', 'db/docker-init.sql'].filter((file) => existsSync(new URL(`../${file}`, import.meta.url))).map(read).join('\n');

/** The services built from this repository: durapay's own processes. */
const durapayServices = (compose: Compose) => Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

/** A one-shot job: run to its end on every start, never restarted; what waits for it waits for its exit. */
const isJob = (service: Service) => service.restart === 'no';

function environmentProblems(compose: Compose): string[] {
  const known = new Set(CONFIG_VARIABLES);
  return durapayServices(compose).flatMap(([name, service]) =>
    Object.keys(service.environment ?? {})
      // OTEL_*: the OpenTelemetry SDK's own (docs/reference/tracing.md).
      .filter((variable) => !known.has(variable) && !variable.startsWith('OTEL_'))
      .map((variable) => `${name}: ${variable} is not a configuration variable`),
  );
}

function secretProblems(compose: Compose): string[] {
  return durapayServices(compose).flatMap(([name, service]) =>
    Object.entries(service.environment ?? {}).flatMap(([variable, value]) => {
      const secret = /^\/run\/secrets\/(.+)$/.exec(String(value ?? ''))?.[1];
      if (!variable.endsWith('_FILE') || !secret) return [];
      if (!service.secrets?.includes(secret)) return [`${name}: ${variable} reads secret ${secret}, which the service does not mount`];
      if (!compose.secrets?.[secret]) return [`${name}: secret ${secret} is not declared`];
      return [];
    }),
  );
}

/** The API faces the internet: it must hold only what lib/platform/master-key.ts derives for it. */
function masterKeyProblems(compose: Compose): string[] {
  const problems: string[] = [];
  const api = compose.services.api;
  for (const variable of ['DURAPAY_MASTER_KEY', 'DURAPAY_MASTER_KEY_FILE']) {
    if (api?.environment?.[variable]) problems.push(`api: holds the master key (${variable})`);
  }
  const masterSecret = /^\/run\/secrets\/(.+)$/.exec(String(compose.services.worker?.environment?.DURAPAY_MASTER_KEY_FILE ?? ''))?.[1];
  if (!masterSecret) problems.push('worker: no DURAPAY_MASTER_KEY_FILE');
  if (masterSecret && api?.secrets?.includes(masterSecret)) problems.push(`api: mounts the secret ${masterSecret}`);
  if (!api?.environment?.DURAPAY_API_KEYS_FILE) problems.push('api: no DURAPAY_API_KEYS_FILE');
  return problems;
}

/** "host_ip:host:container", "host:container" or "container". */
function publishedPort(spec: string): { hostIp?: string; container: number } {
  const parts = spec.split(':');
  return { hostIp: parts.length === 3 ? parts[0] : undefined, container: Number(parts.at(-1)) };
}

/** The TLS-terminating proxy: the one service that faces the network. */
const PROXY = 'proxy';

function portProblems(compose: Compose): string[] {
  const problems: string[] = [];
  const api = compose.services.api;
  const apiPort = Number(api?.environment?.PORT ?? 3000);
  if (!api?.ports?.some((spec) => publishedPort(spec).container === apiPort)) problems.push(`api: its PORT ${apiPort} is not published`);
  if (!compose.services[PROXY]?.ports?.some((spec) => publishedPort(spec).container === 443)) problems.push(`${PROXY}: 443 is not published`);
  // Only the proxy faces the network: the API's /metrics and /readyz, Temporal and its UI have no
  // authentication (see the file's header).
  for (const [name, service] of Object.entries(compose.services)) {
    if (name === PROXY) continue;
    for (const spec of service.ports ?? []) {
      if (publishedPort(spec).hostIp !== '127.0.0.1') problems.push(`${name}: ${spec} is published beyond loopback`);
    }
  }
  return problems;
}

/** The paths the Caddyfile's @public matcher names; only those reach the API. */
function publicPaths(caddyfile: string): string[] {
  return /^\s*@public\s+path\s+(.+)$/m.exec(caddyfile)?.[1]?.trim().split(/\s+/) ?? [];
}

/** Caddy's path matcher: * matches anything, / included; case does not count. */
const matchesCaddyPath = (pattern: string, path: string) =>
  new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i').test(path);

function proxyProblems(caddyfile: string): string[] {
  const problems: string[] = [];
  // One site, TLS by Caddy's automatic HTTPS for the domain; the API proxied only for @public.
  if (!/^\{\$DURAPAY_DOMAIN\}\s*\{/m.test(caddyfile)) problems.push('the site is not {$DURAPAY_DOMAIN} (automatic HTTPS for the domain)');
  const proxied = [...caddyfile.matchAll(/reverse_proxy\s+(\S+)/g)].map((match) => match[1]);
  if (proxied.length !== 1 || proxied[0] !== 'api:3000') problems.push(`reverse_proxy to ${proxied.join(', ') || 'nothing'}, not once to api:3000`);
  if (!/handle\s+@public\s*\{\s*reverse_proxy\s+api:3000\s*\}/.test(caddyfile)) problems.push('reverse_proxy is not inside handle @public');
  const paths = publicPaths(caddyfile);
  for (const path of ['/v1/payments', '/v1/payments/order-1/refunds', '/alipay/notify', '/pay/AbCdEfGhIjKlMnOpQrStUv', '/pay/AbCdEfGhIjKlMnOpQrStUv/events', '/docs/', '/openapi.json']) {
    if (!paths.some((pattern) => matchesCaddyPath(pattern, path))) problems.push(`${path} does not reach the API`);
  }
  for (const path of ['/metrics', '/METRICS', '/metrics/', '/readyz', '/Readyz', '/readyz/', '/ops/reconciliations', '/']) {
    if (paths.some((pattern) => matchesCaddyPath(pattern, path))) problems.push(`${path} reaches the API from the internet`);
  }
  return problems;
}

/** A secret the operator generates (see the file's header): `${NAME:?…}`, never a default. */
const generatedSecret = /^\$\{[A-Z_]+:\?[^}]*\}$/;

function passwordProblems(compose: Compose, initScript: string): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    for (const [variable, value] of Object.entries(service.environment ?? {})) {
      const text = String(value ?? '');
      if (/PASSWORD|PWD/.test(variable) && !variable.endsWith('_FILE') && !generatedSecret.test(text)) problems.push(`${name}: ${variable} is not a generated secret`);
      const urlPassword = /^postgres(?:ql)?:\/\/[^:/@]+:([^@]*)@/.exec(text)?.[1];
      if (urlPassword !== undefined && !generatedSecret.test(urlPassword)) problems.push(`${name}: ${variable} holds a password that is not a generated secret`);
    }
  }
  if (/PASSWORD\s+'/i.test(initScript)) problems.push('the database init script sets a literal password');
  return problems;
}

function healthcheckProblems(compose: Compose): string[] {
  const problems: string[] = [];
  // One-shot jobs are waited for by their exit, not their health.
  for (const [name, service] of durapayServices(compose)) {
    if (!isJob(service) && !service.healthcheck?.test?.length) problems.push(`${name}: no healthcheck`);
  }
  for (const [name, service] of Object.entries(compose.services)) {
    const dependencies = Array.isArray(service.depends_on) ? {} : (service.depends_on ?? {});
    for (const [dependency, { condition }] of Object.entries(dependencies)) {
      if (condition === 'service_healthy' && !compose.services[dependency]?.healthcheck) {
        problems.push(`${name} waits for ${dependency} to be healthy, but ${dependency} has no healthcheck`);
      }
    }
  }
  return problems;
}

// Temporal's layout: the one-shot jobs in the admin-tools image and the server between them.
const SCHEMA_JOB = 'temporal-schema';
const SERVER = 'temporal';
const NAMESPACE_JOB = 'temporal-namespace';
const UI = 'temporal-ui';
const MIGRATE = 'migrate';

const words = (value: string | string[] | undefined) => (Array.isArray(value) ? value : (value ?? '').split(/\s+/).filter(Boolean));

/** The file of this repository mounted at a container path ("./file:/path[:ro]"). */
function mountedFrom(service: Service | undefined, containerPath: string): string | undefined {
  for (const spec of service?.volumes ?? []) {
    const [host = '', container] = spec.split(':');
    if (container === containerPath && host.startsWith('./')) return host.slice(2);
  }
  return undefined;
}

/** The script of this repository a job runs: its entrypoint is `sh <path>`, the path mounted from here. */
function jobScript(service: Service | undefined): string | undefined {
  const [shell, script, ...rest] = words(service?.entrypoint);
  return shell === 'sh' && script && rest.length === 0 ? mountedFrom(service, script) : undefined;
}

/** The tag of an image built here: the build id the operator names (the worker's version). */
const BUILT_IMAGE_TAG = /^\$\{DURAPAY_BUILD_ID:\?[^}]+\}$/;

/** An image's tag is an exact version: three numbers (PostgreSQL names its releases with two); an
 *  image built here is tagged with the build id. */
function imageProblems(compose: Compose): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    const runs = [...words(service.entrypoint), ...words(service.command)];
    if (/auto-?setup/.test(service.image ?? '') || runs.includes('autosetup')) problems.push(`${name}: runs Temporal's auto-setup`);
    if (!service.image) continue;
    if (service.build !== undefined) {
      const tag = service.image.slice(service.image.indexOf(':') + 1);
      if (!BUILT_IMAGE_TAG.test(tag)) problems.push(`${name}: ${service.image} is built here but not tagged with DURAPAY_BUILD_ID`);
      continue;
    }
    const [repository = '', tag = 'latest'] = service.image.split(':');
    // Prometheus' tags begin with a v (v3.5.0).
    const exact = repository === 'postgres' ? /^\d+\.\d+(-|$)/ : /^v?\d+\.\d+\.\d+(-|$)/;
    if (!exact.test(tag)) problems.push(`${name}: ${service.image} is not pinned to an exact version`);
    // The server and its tools (whose tag names the server's version first) are the cluster's version.
    if (/^temporalio\/(server|admin-tools)$/.test(repository) && tag !== TEMPORAL_SERVER_VERSION && !tag.startsWith(`${TEMPORAL_SERVER_VERSION}-`)) {
      problems.push(`${name}: ${service.image} is not Temporal ${TEMPORAL_SERVER_VERSION}, the cluster's`);
    }
  }
  return problems;
}

interface JobRun {
  status: number | null;
  /** Each call of a fake tool: its name, then its arguments. */
  calls: string[][];
}

/**
 * A job's script run by sh with fake `temporal`, `temporal-sql-tool` and `sleep` first on PATH: they
 * record their arguments and succeed, `temporal operator namespace describe` only once the namespace
 * exists, and the schema tool fails on the command `failOn`.
 */
function runJob(script: string, fake: { namespaceExists?: boolean; failOn?: string } = {}): JobRun {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-compose-'));
  try {
    const fakeTool = `#!/bin/sh
line=$(basename "$0"); for arg in "$@"; do line="$line\t$arg"; done
printf '%s\\n' "$line" >> "${dir}/calls"
case " $* " in *" $FAKE_FAIL_ON "*) exit 1 ;; esac
case "$*" in
  "operator namespace describe"*) [ -e "${dir}/namespace" ] || exit 1 ;;
  "operator namespace create"*) : > "${dir}/namespace" ;;
esac
`;
    mkdirSync(join(dir, 'bin'));
    for (const tool of ['temporal', 'temporal-sql-tool', 'sleep']) writeFileSync(join(dir, 'bin', tool), fakeTool, { mode: 0o755 });
    if (fake.namespaceExists) writeFileSync(join(dir, 'namespace'), '');
    writeFileSync(join(dir, 'job.sh'), script);
    const { status } = spawnSync('sh', [join(dir, 'job.sh')], {
      env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, FAKE_FAIL_ON: fake.failOn ?? '(none)', TEMPORAL_ADDRESS: 'temporal:7233' },
      stdio: 'ignore',
      timeout: 10_000,
    });
    const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').filter(Boolean).map((line) => line.split('\t')) : [];
    return { status, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The steps the cluster runs with its schema tool, as `--db <database> <command…>`. */
const clusterSchemaRuns = () =>
  (['persistence', 'visibility'] as const).flatMap((kind) => Object.values(clusterSchemaSteps(kind)).map((step) => ['--db', CLUSTER_DATABASES[kind], ...step].join(' ')));

function schemaJobProblems(compose: Compose, script: string): string[] {
  const job = compose.services[SCHEMA_JOB];
  if (!job) return [`no ${SCHEMA_JOB} job`];
  const problems: string[] = [];
  const env = job.environment ?? {};
  const postgres = compose.services.postgresql?.environment ?? {};
  if (env.SQL_PLUGIN !== CLUSTER_SCHEMA.plugin) problems.push(`${SCHEMA_JOB}: SQL_PLUGIN is ${env.SQL_PLUGIN}, not the cluster's ${CLUSTER_SCHEMA.plugin}`);
  if (env.SQL_HOST !== 'postgresql' || String(env.SQL_PORT) !== '5432') problems.push(`${SCHEMA_JOB}: does not connect to postgresql:5432`);
  if (env.SQL_USER !== postgres.POSTGRES_USER || env.SQL_PASSWORD !== postgres.POSTGRES_PASSWORD) problems.push(`${SCHEMA_JOB}: does not connect as PostgreSQL's user`);

  const { status, calls } = runJob(script);
  if (status !== 0) problems.push(`${SCHEMA_JOB}: its script fails (exit ${status})`);
  const ran = calls.filter(([tool]) => tool === 'temporal-sql-tool').map(([, ...args]) => args.join(' '));
  const wanted = clusterSchemaRuns();
  for (const step of wanted) if (!ran.includes(step)) problems.push(`${SCHEMA_JOB}: does not run the cluster's step ${step}`);
  for (const step of ran) if (!wanted.includes(step)) problems.push(`${SCHEMA_JOB}: runs ${step}, not a step of the cluster's`);
  if (problems.length === 0 && ran.join('\n') !== wanted.join('\n')) problems.push(`${SCHEMA_JOB}: runs the cluster's steps in another order`);
  // The server must never start on a schema half made.
  if (runJob(script, { failOn: 'setup-schema' }).status === 0) problems.push(`${SCHEMA_JOB}: its script succeeds when a step fails`);
  return problems;
}

/** Temporal's dynamic config file: each setting a list of values with their constraints. */
const dynamicConfigFile = (settings: Readonly<Record<string, unknown>>) =>
  Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, [{ value, constraints: {} }]]));

function serverProblems(compose: Compose, readFile: (file: string) => string): string[] {
  const server = compose.services[SERVER];
  if (!server) return [`no ${SERVER} service`];
  const problems: string[] = [];
  const env = server.environment ?? {};
  const postgres = compose.services.postgresql?.environment ?? {};
  // What the image's config template (docker/config_template.yaml of the server's version) reads.
  const wanted: Record<string, unknown> = {
    DB: CLUSTER_SCHEMA.plugin,
    POSTGRES_SEEDS: 'postgresql',
    DB_PORT: 5432,
    POSTGRES_USER: postgres.POSTGRES_USER,
    POSTGRES_PWD: postgres.POSTGRES_PASSWORD,
    DBNAME: CLUSTER_DATABASES.persistence,
    VISIBILITY_DBNAME: CLUSTER_DATABASES.visibility,
    NUM_HISTORY_SHARDS,
  };
  for (const [variable, value] of Object.entries(wanted)) {
    if (String(env[variable]) !== String(value)) problems.push(`${SERVER}: ${variable} is ${env[variable]}, not ${value}`);
  }
  const path = String(env.DYNAMIC_CONFIG_FILE_PATH ?? '');
  const file = mountedFrom(server, path);
  if (!file) return [...problems, `${SERVER}: DYNAMIC_CONFIG_FILE_PATH ${path || '(unset)'} is not a file mounted from this repository`];
  const settings: unknown = parse(readFile(file));
  if (!isDeepStrictEqual(settings, dynamicConfigFile(CLUSTER_DYNAMIC_CONFIG))) {
    problems.push(`${file}: ${JSON.stringify(settings)}, not the cluster's dynamic config ${JSON.stringify(CLUSTER_DYNAMIC_CONFIG)}`);
  }
  return problems;
}

/** The search attributes a run of the namespace job creates, name → type. */
function registeredSearchAttributes(run: JobRun): Record<string, string> {
  const registered: Record<string, string> = {};
  for (const [tool, ...args] of run.calls) {
    if (tool !== 'temporal' || args.slice(0, 3).join(' ') !== 'operator search-attribute create') continue;
    const names = flagValues(args, '--name');
    const types = flagValues(args, '--type');
    names.forEach((name, i) => (registered[name] = types[i] ?? '(no type)'));
  }
  return registered;
}

/** Every value of a flag in a command's arguments: `--name A --name B` → [A, B]. */
const flagValues = (args: string[], flag: string) => args.flatMap((arg, i) => (arg === flag && i + 1 < args.length ? [args[i + 1]!] : []));

function namespaceJobProblems(compose: Compose, script: string): string[] {
  const job = compose.services[NAMESPACE_JOB];
  if (!job) return [`no ${NAMESPACE_JOB} job`];
  const problems: string[] = [];
  const address = compose.services.worker?.environment?.TEMPORAL_ADDRESS;
  if (job.environment?.TEMPORAL_ADDRESS !== address) problems.push(`${NAMESPACE_JOB}: TEMPORAL_ADDRESS is not the server's, ${address}`);

  const fresh = runJob(script);
  if (fresh.status !== 0) problems.push(`${NAMESPACE_JOB}: its script fails on a new server (exit ${fresh.status})`);
  for (const [tool, ...args] of fresh.calls) {
    if (tool !== 'temporal') continue;
    const namespaces = flagValues(args, '--namespace');
    if (namespaces.join() !== CLUSTER_NAMESPACE) problems.push(`${NAMESPACE_JOB}: temporal ${args.slice(0, 3).join(' ')} in ${namespaces.join() || 'the default namespace'}, not ${CLUSTER_NAMESPACE}`);
  }
  const creates = fresh.calls.filter(([tool, ...args]) => tool === 'temporal' && args.slice(0, 3).join(' ') === 'operator namespace create');
  if (creates.length !== 1) problems.push(`${NAMESPACE_JOB}: creates the namespace ${creates.length} times on a new server`);
  for (const [, ...args] of creates) {
    const retention = flagValues(args, '--retention').join();
    if (retention !== `${CLUSTER_RETENTION_DAYS}d`) problems.push(`${NAMESPACE_JOB}: retention ${retention || "(the CLI's default)"}, not the cluster's ${CLUSTER_RETENTION_DAYS}d`);
  }
  const registered = registeredSearchAttributes(fresh);
  for (const [name, type] of Object.entries(PAYMENT_SEARCH_ATTRIBUTES)) {
    if (!(name in registered)) problems.push(`${NAMESPACE_JOB}: does not create the search attribute ${name}`);
    else if (registered[name] !== type) problems.push(`${NAMESPACE_JOB}: creates ${name} as ${registered[name]}, not ${type}`);
  }
  for (const name of Object.keys(registered)) {
    if (!(name in PAYMENT_SEARCH_ATTRIBUTES)) problems.push(`${NAMESPACE_JOB}: creates ${name}, not a payment search attribute`);
  }

  // Run again on every start: an existing namespace is fine and kept as it is.
  const again = runJob(script, { namespaceExists: true });
  if (again.status !== 0) problems.push(`${NAMESPACE_JOB}: its script fails when the namespace exists (exit ${again.status})`);
  if (again.calls.some(([tool, ...args]) => tool === 'temporal' && args.slice(0, 3).join(' ') === 'operator namespace create')) {
    problems.push(`${NAMESPACE_JOB}: creates the namespace again when it exists`);
  }
  return problems;
}

/** Who waits for whom, and for what: Temporal's schema, then the server, then its namespace; durapay's schema; then durapay. */
const START_ORDER: [service: string, waitsFor: string, condition: string][] = [
  [SCHEMA_JOB, 'postgresql', 'service_healthy'],
  [SERVER, SCHEMA_JOB, 'service_completed_successfully'],
  [NAMESPACE_JOB, SERVER, 'service_healthy'],
  [UI, SERVER, 'service_healthy'],
  [MIGRATE, 'postgresql', 'service_healthy'],
  ['worker', MIGRATE, 'service_completed_successfully'],
  ['worker', NAMESPACE_JOB, 'service_completed_successfully'],
  ['api', MIGRATE, 'service_completed_successfully'],
  ['api', NAMESPACE_JOB, 'service_completed_successfully'],
];
const ONE_SHOT_JOBS = [SCHEMA_JOB, NAMESPACE_JOB, MIGRATE];

const dependencies = (service: Service | undefined): Record<string, string> =>
  Array.isArray(service?.depends_on)
    ? Object.fromEntries(service.depends_on.map((name) => [name, 'service_started']))
    : Object.fromEntries(Object.entries(service?.depends_on ?? {}).map(([name, { condition }]) => [name, condition]));

function orderProblems(compose: Compose): string[] {
  const problems: string[] = [];
  const what: Record<string, string> = { service_healthy: 'be healthy', service_completed_successfully: 'complete successfully' };
  for (const [service, waitsFor, condition] of START_ORDER) {
    if (dependencies(compose.services[service])[waitsFor] !== condition) problems.push(`${service} does not wait for ${waitsFor} to ${what[condition]}`);
  }
  for (const name of ONE_SHOT_JOBS) {
    if (compose.services[name] && !isJob(compose.services[name])) problems.push(`${name}: a one-shot job, but restart is ${compose.services[name].restart ?? '(unset)'}, not "no"`);
  }
  for (const [name, service] of Object.entries(compose.services)) {
    for (const [dependency, condition] of Object.entries(dependencies(service))) {
      const other = compose.services[dependency];
      if (!other) problems.push(`${name} waits for ${dependency}, which is not a service`);
      else if (condition === 'service_completed_successfully' && !isJob(other)) problems.push(`${name} waits for ${dependency} to complete, but ${dependency} is restarted`);
    }
  }
  return problems;
}

/** durapay's own processes: the migration step, the namespace, and the worker's version. */
function durapayProblems(compose: Compose): string[] {
  const problems: string[] = [];
  const { worker, api, [MIGRATE]: migrate, [UI]: ui } = compose.services;
  if (!migrate) problems.push(`no ${MIGRATE} job`);
  else {
    const target = (migrate.build as { target?: string } | undefined)?.target;
    if (target !== 'worker') problems.push(`${MIGRATE}: built from ${target ?? '(the default target)'}, not the worker's target`);
    const command = JSON.stringify(migrate.command);
    if (command !== JSON.stringify(['node', 'dist/scripts/migrate.js'])) problems.push(`${MIGRATE}: runs ${command}, not node dist/scripts/migrate.js`);
    if (!existsSync(new URL('../scripts/migrate.ts', import.meta.url))) problems.push(`${MIGRATE}: dist/scripts/migrate.js is not the compiled output of a source file`);
    for (const variable of ['DATABASE_URL', 'DURAPAY_MASTER_KEY_FILE']) {
      if (!migrate.environment?.[variable] || migrate.environment[variable] !== worker?.environment?.[variable]) problems.push(`${MIGRATE}: ${variable} is not the worker's`);
    }
  }
  for (const [name, service] of [['worker', worker], ['api', api]] as const) {
    const namespace = service?.environment?.TEMPORAL_NAMESPACE;
    if (namespace !== CLUSTER_NAMESPACE) problems.push(`${name}: TEMPORAL_NAMESPACE is ${namespace}, not ${CLUSTER_NAMESPACE}`);
  }
  if (ui?.environment?.TEMPORAL_DEFAULT_NAMESPACE !== CLUSTER_NAMESPACE) problems.push(`${UI}: does not open on the namespace ${CLUSTER_NAMESPACE}`);
  if (worker?.environment?.TEMPORAL_WORKER_DEPLOYMENT !== 'durapay') problems.push('worker: TEMPORAL_WORKER_DEPLOYMENT is not durapay');
  // Compose builds the image here: the operator names the build, and compose refuses to start without it.
  if (!/^\$\{DURAPAY_BUILD_ID:\?[^}]+\}$/.test(String(worker?.environment?.TEMPORAL_WORKER_BUILD_ID ?? ''))) {
    problems.push('worker: TEMPORAL_WORKER_BUILD_ID is not the required ${DURAPAY_BUILD_ID:?…}');
  }
  return problems;
}

/** The services table of a page's docker-compose.yml section: each row's service and image cells, name → image. */
function tabledServices(markdown: string): Record<string, string> {
  const section = markdown.slice(Math.max(0, markdown.indexOf('## docker-compose.yml')));
  const rows = /^\| service \| image \|.*\n\|[-| ]+\|\n((?:\|.*\n)+)/m.exec(section)?.[1] ?? '';
  return Object.fromEntries([...rows.matchAll(/^\| `([\w-]+)` \| ([^|]*) \|/gm)].map((match) => [match[1]!, match[2]!.trim()]));
}

/** Compose's options that take a value: the word after them is not the service. */
const OPTIONS_WITH_VALUES = new Set(['--entrypoint', '-e', '--env', '-u', '--user', '-w', '--workdir', '--name', '-v', '--volume', '-p', '--publish', '-l', '--label', '--index']);

/** The services of every `docker compose exec|run [options] <service>` in a text. */
function commandServices(text: string): string[] {
  return [...text.matchAll(/docker compose (?:exec|run) ([^\n`]*)/g)].flatMap((match) => {
    const args = match[1]!.trim().split(/\s+/);
    for (let i = 0; i < args.length; i++) {
      if (!args[i]!.startsWith('-')) return [args[i]!];
      if (OPTIONS_WITH_VALUES.has(args[i]!)) i++;
    }
    return [];
  });
}

const DEPLOYMENT_PAGE = 'docs/operate/deployment.md';

function docsProblems(compose: Compose, pages: Record<string, string>): string[] {
  const problems: string[] = [];
  const services = Object.keys(compose.services);
  const tabled = tabledServices(pages[DEPLOYMENT_PAGE] ?? '');
  for (const [name, image] of Object.entries(tabled)) {
    if (!services.includes(name)) problems.push(`${DEPLOYMENT_PAGE} lists ${name}, which docker-compose.yml does not run`);
    else if (compose.services[name]!.image && compose.services[name]!.build === undefined && image !== `\`${compose.services[name]!.image}\``) problems.push(`${DEPLOYMENT_PAGE} lists ${name} with the image ${image}, not ${compose.services[name]!.image}`);
  }
  for (const name of services) if (!(name in tabled)) problems.push(`docker-compose.yml runs ${name}, which ${DEPLOYMENT_PAGE} does not list`);
  for (const [file, text] of Object.entries(pages)) {
    for (const name of commandServices(text)) if (!services.includes(name)) problems.push(`${file} runs a command in ${name}, which docker-compose.yml does not run`);
  }
  return problems;
}

/** The README, the docs' pages and the compose file's own comments: where an operator reads a service's name. */
function docPages(): Record<string, string> {
  const docs = readdirSync(new URL('../docs', import.meta.url), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md') && !file.split(/[\\/]/).some((part) => part.startsWith('.') || part === 'node_modules'))
    .map((file) => `docs/${file.split('\\').join('/')}`);
  return Object.fromEntries(['README.md', 'README.zh-CN.md', 'docker-compose.yml', ...docs].filter((file) => existsSync(new URL(`../${file}`, import.meta.url))).map((file) => [file, read(file)]));
}

interface Stage {
  name: string;
  base: string;
  instructions: { keyword: string; args: string }[];
}

function dockerStages(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    const args = instruction.getArgumentsContent() ?? '';
    if (keyword === 'FROM') {
      const [base = '', , name = base] = args.split(/\s+/);
      stages.push({ name, base, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/** A target's instructions, its base stages' first. */
function stageChain(stages: Stage[], target: string): Stage['instructions'] {
  const stage = stages.find(({ name }) => name === target);
  if (!stage) return [];
  const parent = stages.some(({ name }) => name === stage.base) ? stageChain(stages, stage.base) : [];
  return [...parent, ...stage.instructions];
}

const jsonAfter = (args: string, prefix = '') => JSON.parse(args.slice(args.indexOf(`${prefix}[`) + prefix.length)) as string[];

function dockerfileProblems(text: string, compose: Compose): string[] {
  const stages = dockerStages(text);
  const problems: string[] = [];
  if (stages.at(-1)?.name !== 'api') problems.push('the last stage, the default target, is not api');
  for (const target of ['api', 'worker']) {
    const chain = stageChain(stages, target);
    if (chain.length === 0) {
      problems.push(`no ${target} stage`);
      continue;
    }
    const say = (problem: string) => problems.push(`${target}: ${problem}`);
    const all = (keyword: string) => chain.filter((instruction) => instruction.keyword === keyword);
    if (chain.some(({ args }) => /\btsx\b/.test(args))) say('uses tsx');
    if (!all('RUN').some(({ args }) => /npm ci\b.*--omit=dev/.test(args))) say('does not install with npm ci --omit=dev');
    if (all('RUN').some(({ args }) => /npm (ci|install)\b/.test(args) && !/--omit=dev/.test(args))) say('installs development dependencies');
    const user = all('USER').at(-1)?.args;
    if (!user || /^(root|0)(:|$)/.test(user)) say(`runs as ${user ?? 'root (no USER)'}`);

    const cmd = all('CMD').at(-1);
    const command = cmd ? jsonAfter(cmd.args) : [];
    const script = command.at(-1) ?? '';
    if (command[0] !== 'node') say(`CMD does not run plain node: ${cmd?.args}`);
    const source = /^dist\/(.+)\.js$/.exec(script)?.[1];
    if (!source || !existsSync(new URL(`../${source}.ts`, import.meta.url))) say(`CMD runs ${script}, not the compiled output of a source file`);

    const healthcheck = all('HEALTHCHECK').at(-1);
    if (!healthcheck) say('no HEALTHCHECK');
    const composeCheck = compose.services[target]?.healthcheck?.test;
    if (healthcheck && composeCheck && JSON.stringify(['CMD', ...jsonAfter(healthcheck.args, 'CMD ')]) !== JSON.stringify(composeCheck)) {
      say(`its HEALTHCHECK differs from docker-compose.yml's: ${healthcheck.args} vs ${JSON.stringify(composeCheck)}`);
    }
    const builtFrom = (compose.services[target]?.build as { target?: string } | undefined)?.target;
    if (compose.services[target] && builtFrom !== target) say(`docker-compose.yml builds it from target ${builtFrom ?? '(default)'}`);
  }
  return problems;
}

describe('docker-compose.yml', () => {
  const compose = parseCompose(composeText);

  it('parses as YAML, each key once', () => {
    expect(Object.keys(compose.services).length).toBeGreaterThan(5);
    expect(() => parseCompose(composeText.replace('  temporal-ui:\n', '  temporal-ui:\n    image: temporalio/ui:2.42.1\n'))).toThrow(/unique/i);
  });

  it('runs the API, the worker and the migration step from this repository', () => {
    expect(durapayServices(compose).map(([name]) => name).sort()).toEqual(['api', 'migrate', 'worker']);
  });

  it('runs the services the docs list, and the docs run commands only in services it runs', () => {
    const pages = docPages();
    expect(Object.keys(pages)).toContain(DEPLOYMENT_PAGE);
    expect(Object.keys(tabledServices(pages[DEPLOYMENT_PAGE]!)).length).toBeGreaterThan(5);
    expect(commandServices(Object.values(pages).join('\n'))).toEqual(expect.arrayContaining(['api', 'worker', NAMESPACE_JOB]));
    expect(docsProblems(compose, pages)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services['temporal-search-attributes'] = broken.services[NAMESPACE_JOB]!;
    delete broken.services[NAMESPACE_JOB];
    delete broken.services.worker;
    broken.services[UI]!.image = 'temporalio/ui:2.44.1';
    expect(docsProblems(broken, { [DEPLOYMENT_PAGE]: pages[DEPLOYMENT_PAGE]!, 'docs/operate/alipay-apps.md': pages['docs/operate/alipay-apps.md']! })).toEqual([
      `${DEPLOYMENT_PAGE} lists ${NAMESPACE_JOB}, which docker-compose.yml does not run`,
      `${DEPLOYMENT_PAGE} lists ${UI} with the image \`temporalio/ui:2.42.1\`, not temporalio/ui:2.44.1`,
      `${DEPLOYMENT_PAGE} lists worker, which docker-compose.yml does not run`,
      'docker-compose.yml runs temporal-search-attributes, which docs/operate/deployment.md does not list',
      `${DEPLOYMENT_PAGE} runs a command in worker, which docker-compose.yml does not run`,
      `${DEPLOYMENT_PAGE} runs a command in ${NAMESPACE_JOB}, which docker-compose.yml does not run`,
      'docs/operate/alipay-apps.md runs a command in worker, which docker-compose.yml does not run',
    ]);
  });

  it('pins every image to an exact version, Temporal\'s to the cluster\'s, and never runs auto-setup', () => {
    expect(imageProblems(compose)).toEqual([]);
    expect(compose.services[SERVER]!.image).toBe(`temporalio/server:${TEMPORAL_SERVER_VERSION}`);

    const broken = parseCompose(composeText);
    broken.services.postgresql!.image = 'postgres:16';
    broken.services[SCHEMA_JOB]!.image = 'temporalio/admin-tools:1.29';
    broken.services[SERVER]!.image = 'temporalio/auto-setup:1.29.1';
    broken.services[UI]!.image = 'temporalio/ui:latest';
    broken.services[NAMESPACE_JOB]!.image = 'temporalio/admin-tools:1.30.1';
    broken.services.worker!.image = 'durapay-worker:latest';
    expect(imageProblems(broken)).toEqual([
      'postgresql: postgres:16 is not pinned to an exact version',
      `${SCHEMA_JOB}: temporalio/admin-tools:1.29 is not pinned to an exact version`,
      `${SCHEMA_JOB}: temporalio/admin-tools:1.29 is not Temporal ${TEMPORAL_SERVER_VERSION}, the cluster's`,
      `${SERVER}: runs Temporal's auto-setup`,
      `${NAMESPACE_JOB}: temporalio/admin-tools:1.30.1 is not Temporal ${TEMPORAL_SERVER_VERSION}, the cluster's`,
      `${UI}: temporalio/ui:latest is not pinned to an exact version`,
      'worker: durapay-worker:latest is built here but not tagged with DURAPAY_BUILD_ID',
    ]);
  });

  it("sets up Temporal's schema with the cluster's steps, and stops at the first that fails", () => {
    const script = jobScript(compose.services[SCHEMA_JOB]);
    expect(script).toBe('deploy/temporal/schema.sh');
    const text = read(script!);
    expect(runJob(text).calls.filter(([tool]) => tool === 'temporal-sql-tool').map(([, ...args]) => args.join(' '))).toEqual([
      '--db temporal create-database',
      '--db temporal setup-schema -v 0.0',
      '--db temporal update-schema --schema-name postgresql/v12/temporal',
      '--db temporal_visibility create-database',
      '--db temporal_visibility setup-schema -v 0.0',
      '--db temporal_visibility update-schema --schema-name postgresql/v12/visibility',
    ]);
    expect(schemaJobProblems(compose, text)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services[SCHEMA_JOB]!.environment!.SQL_PLUGIN = 'postgres12_pgx';
    expect(schemaJobProblems(broken, text)).toEqual([`${SCHEMA_JOB}: SQL_PLUGIN is postgres12_pgx, not the cluster's postgres12`]);
    expect(schemaJobProblems(compose, text.replace('--schema-name postgresql/v12/visibility', '-d /etc/temporal/schema/postgresql/v12/visibility/versioned'))).toEqual([
      `${SCHEMA_JOB}: does not run the cluster's step --db temporal_visibility update-schema --schema-name postgresql/v12/visibility`,
      `${SCHEMA_JOB}: runs --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned, not a step of the cluster's`,
    ]);
    const [persistence, visibility] = text.split('\n\n', 3).slice(1);
    expect(schemaJobProblems(compose, text.replace(`${persistence}\n\n${visibility}`, `${visibility}\n\n${persistence}`))).toEqual([`${SCHEMA_JOB}: runs the cluster's steps in another order`]);
    expect(schemaJobProblems(compose, text.replace(/^set -eu$/m, ''))).toEqual([`${SCHEMA_JOB}: its script succeeds when a step fails`]);
  });

  it("runs the server on the cluster's databases, history shards and dynamic config", () => {
    expect(serverProblems(compose, read)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services[SERVER]!.environment!.NUM_HISTORY_SHARDS = 512;
    delete broken.services[SERVER]!.environment!.VISIBILITY_DBNAME;
    expect(serverProblems(broken, read)).toEqual([`${SERVER}: VISIBILITY_DBNAME is undefined, not temporal_visibility`, `${SERVER}: NUM_HISTORY_SHARDS is 512, not ${NUM_HISTORY_SHARDS}`]);
    const dynamicConfig = 'deploy/temporal/dynamicconfig.yaml';
    expect(serverProblems(compose, (file) => read(file).replace('value: 255', 'value: 1000'))).toEqual([
      `${dynamicConfig}: {"limit.maxIDLength":[{"value":1000,"constraints":{}}]}, not the cluster's dynamic config {"limit.maxIDLength":255}`,
    ]);
    broken.services[SERVER]!.volumes = [];
    expect(serverProblems(broken, read).at(-1)).toBe(`${SERVER}: DYNAMIC_CONFIG_FILE_PATH /etc/temporal/config/dynamicconfig/durapay.yaml is not a file mounted from this repository`);
  });

  it('creates the namespace durapay with the cluster\'s retention and the search attributes the workflows use, and runs again', () => {
    const script = jobScript(compose.services[NAMESPACE_JOB]);
    expect(script).toBe('deploy/temporal/namespace.sh');
    const text = read(script!);
    expect(namespaceJobProblems(compose, text)).toEqual([]);
    const registered = registeredSearchAttributes(runJob(text));
    expect(registered).toEqual(PAYMENT_SEARCH_ATTRIBUTES);
    const used = Object.fromEntries(Object.values(searchAttributes).map(({ name, type }) => [name, type.toLowerCase()]));
    expect(Object.fromEntries(Object.entries(registered).map(([name, type]) => [name, type.toLowerCase()]))).toEqual(used);

    expect(namespaceJobProblems(compose, text.replace('--name AmountFen --type Int', '--name AmountFen --type Keyword').replace(/^ {2}--name AlipayTradeNo --type Keyword$/m, '  --name AlipayTradeNumber --type Keyword'))).toEqual([
      `${NAMESPACE_JOB}: creates AmountFen as Keyword, not Int`,
      `${NAMESPACE_JOB}: does not create the search attribute AlipayTradeNo`,
      `${NAMESPACE_JOB}: creates AlipayTradeNumber, not a payment search attribute`,
    ]);
    expect(namespaceJobProblems(compose, text.replace(' --retention 7d', '').replace('search-attribute create --namespace durapay', 'search-attribute create --namespace default'))).toEqual([
      `${NAMESPACE_JOB}: temporal operator search-attribute create in default, not durapay`,
      `${NAMESPACE_JOB}: retention (the CLI's default), not the cluster's 7d`,
    ]);
    expect(namespaceJobProblems(compose, text.replace('namespace_exists || temporal', 'temporal'))).toEqual([`${NAMESPACE_JOB}: creates the namespace again when it exists`]);
  });

  it('starts Temporal\'s schema, the server, its namespace, durapay\'s migrations, then the API and the worker', () => {
    expect(orderProblems(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services[SERVER]!.depends_on = ['postgresql'];
    broken.services.worker!.depends_on = { [NAMESPACE_JOB]: { condition: 'service_completed_successfully' } };
    broken.services[MIGRATE]!.restart = 'unless-stopped';
    expect(orderProblems(broken)).toEqual([
      `${SERVER} does not wait for ${SCHEMA_JOB} to complete successfully`,
      `worker does not wait for ${MIGRATE} to complete successfully`,
      `${MIGRATE}: a one-shot job, but restart is unless-stopped, not "no"`,
      `api waits for ${MIGRATE} to complete, but ${MIGRATE} is restarted`,
    ]);
  });

  it('migrates in a step of its own, runs durapay in the namespace durapay, and the worker as a named build', () => {
    expect(durapayProblems(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services[MIGRATE]!.command = ['node', 'dist/api/main.js'];
    delete broken.services[MIGRATE]!.environment!.DURAPAY_MASTER_KEY_FILE;
    broken.services.api!.environment!.TEMPORAL_NAMESPACE = 'default';
    broken.services.worker!.environment!.TEMPORAL_WORKER_BUILD_ID = '${DURAPAY_BUILD_ID:-dev}';
    expect(durapayProblems(broken)).toEqual([
      `${MIGRATE}: runs ["node","dist/api/main.js"], not node dist/scripts/migrate.js`,
      `${MIGRATE}: DURAPAY_MASTER_KEY_FILE is not the worker's`,
      'api: TEMPORAL_NAMESPACE is default, not durapay',
      'worker: TEMPORAL_WORKER_BUILD_ID is not the required ${DURAPAY_BUILD_ID:?…}',
    ]);
  });

  it('sets only configuration variables on them, and mounts every secret file it names', () => {
    expect(environmentProblems(compose)).toEqual([]);
    expect(secretProblems(compose)).toEqual([]);
    expect(compose.services.api!.environment).toHaveProperty('TEMPORAL_TASK_QUEUE', 'payments'); // merged from the worker's

    const broken = parseCompose(composeText);
    broken.services.worker!.environment!.ALIPAY_PRIVATEKEY_FILE = '/run/secrets/alipay_app_private_key';
    broken.services.api!.environment!.ALIPAY_PUBLIC_KEY_FILE = '/run/secrets/alipay_app_private_key';
    expect(environmentProblems(broken)).toEqual(['worker: ALIPAY_PRIVATEKEY_FILE is not a configuration variable']);
    expect(secretProblems(broken)).toEqual(['api: ALIPAY_PUBLIC_KEY_FILE reads secret alipay_app_private_key, which the service does not mount']);
  });

  it('keeps the default WEBHOOK_PRIVATE_TARGETS=deny: webhooks never reach the network the containers run in', () => {
    const setting = (c: Compose) => durapayServices(c).filter(([, service]) => service.environment?.WEBHOOK_PRIVATE_TARGETS !== undefined).map(([name]) => name);
    expect(setting(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services.worker!.environment!.WEBHOOK_PRIVATE_TARGETS = 'allow';
    expect(setting(broken)).toEqual(['worker']);
  });

  it('gives the master key to the worker only, and the API the keys derived for it', () => {
    expect(masterKeyProblems(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services.api!.environment!.DURAPAY_MASTER_KEY_FILE = '/run/secrets/durapay_master_key';
    broken.services.api!.secrets = [...(broken.services.api!.secrets ?? []), 'durapay_master_key'];
    delete broken.services.api!.environment!.DURAPAY_API_KEYS_FILE;
    expect(masterKeyProblems(broken)).toEqual([
      'api: holds the master key (DURAPAY_MASTER_KEY_FILE)',
      'api: mounts the secret durapay_master_key',
      'api: no DURAPAY_API_KEYS_FILE',
    ]);
  });

  it("publishes only the TLS proxy beyond loopback; the API's port, like every other, on loopback only", () => {
    expect(portProblems(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services.api!.environment!.PORT = 8080;
    broken.services.api!.ports = ['8080:8080'];
    broken.services.temporal!.ports = ['7233:7233'];
    delete broken.services.proxy;
    expect(portProblems(broken)).toEqual(['proxy: 443 is not published', 'temporal: 7233:7233 is published beyond loopback', 'api: 8080:8080 is published beyond loopback']);
  });

  it('passes the internet only the public paths, over TLS: never /metrics, /readyz or /ops', () => {
    const proxy = compose.services.proxy!;
    expect(proxy.image).toMatch(/^caddy:\d+\.\d+/);
    expect(proxy.volumes).toContain('./deploy/Caddyfile:/etc/caddy/Caddyfile:ro');
    expect(proxy.environment).toHaveProperty('DURAPAY_DOMAIN');
    expect(compose.services.api!.environment).toHaveProperty('TRUST_PROXY', 1); // the per-IP limit counts buyers, not the proxy
    expect(proxyProblems(caddyText)).toEqual([]);

    const open = caddyText.replace(/^(\s*@public\s+path\s+)(.+)$/m, '$1/* $2');
    expect(proxyProblems(open)).toEqual(['/metrics reaches the API from the internet', '/METRICS reaches the API from the internet', '/metrics/ reaches the API from the internet', '/readyz reaches the API from the internet', '/Readyz reaches the API from the internet', '/readyz/ reaches the API from the internet', '/ops/reconciliations reaches the API from the internet', '/ reaches the API from the internet']);
    const everything = caddyText.replace(/handle\s+@public\s*\{\s*reverse_proxy\s+api:3000\s*\}/, 'reverse_proxy api:3000');
    expect(proxyProblems(everything)).toEqual(['reverse_proxy is not inside handle @public']);
  });

  it('has no default password: each is a secret the operator generates into .env', () => {
    expect(passwordProblems(compose, initScriptText)).toEqual([]);

    const broken = parseCompose(composeText);
    broken.services.postgresql!.environment!.POSTGRES_PASSWORD = 'temporal';
    broken.services.temporal!.environment!.POSTGRES_PWD = '${POSTGRES_PASSWORD:-temporal}';
    broken.services.worker!.environment!.DATABASE_URL = 'postgres://durapay:durapay@postgresql:5432/durapay';
    expect(passwordProblems(broken, "CREATE USER durapay WITH PASSWORD 'durapay';")).toEqual([
      'postgresql: POSTGRES_PASSWORD is not a generated secret',
      'temporal: POSTGRES_PWD is not a generated secret',
      'worker: DATABASE_URL holds a password that is not a generated secret',
      'the database init script sets a literal password',
    ]);
  });

  it("has health checks for the API, the worker and every service another waits on", () => {
    expect(healthcheckProblems(compose)).toEqual([]);

    const broken = parseCompose(composeText);
    delete broken.services.worker!.healthcheck;
    delete broken.services.postgresql!.healthcheck;
    delete broken.services[SERVER]!.healthcheck;
    expect(healthcheckProblems(broken)).toEqual([
      'worker: no healthcheck',
      `${SCHEMA_JOB} waits for postgresql to be healthy, but postgresql has no healthcheck`,
      `${NAMESPACE_JOB} waits for ${SERVER} to be healthy, but ${SERVER} has no healthcheck`,
      `${UI} waits for ${SERVER} to be healthy, but ${SERVER} has no healthcheck`,
      `${MIGRATE} waits for postgresql to be healthy, but postgresql has no healthcheck`,
    ]);
  });
});

describe('Dockerfile', () => {
  const compose = parseCompose(composeText);

  it('runs compiled JavaScript with plain node, production dependencies only, as a non-root user, with a health check', () => {
    expect(dockerfileProblems(dockerfileText, compose)).toEqual([]);
    // What `npm ci --omit=dev` leaves out must hold everything that needs tsx.
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(dependencies).not.toHaveProperty('tsx');
  });

  it('finds tsx, root, a development install and a missing health check in the final stage', () => {
    const broken = dockerfileText
      .replace('CMD ["node", "--enable-source-maps", "dist/api/main.js"]', 'CMD ["npx", "tsx", "api/main.ts"]')
      .replace('USER node', 'USER root')
      .replace('npm ci --omit=dev', 'npm ci')
      .replace(/^HEALTHCHECK .*"worker"\]$/m, '');
    expect(dockerfileProblems(broken, compose)).toEqual([
      'api: uses tsx',
      'api: does not install with npm ci --omit=dev',
      'api: installs development dependencies',
      'api: runs as root',
      'api: CMD does not run plain node: ["npx", "tsx", "api/main.ts"]',
      'api: CMD runs api/main.ts, not the compiled output of a source file',
      'worker: does not install with npm ci --omit=dev',
      'worker: installs development dependencies',
      'worker: runs as root',
      'worker: no HEALTHCHECK',
    ]);
  });
});
