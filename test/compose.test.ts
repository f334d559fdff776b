// docker-compose.yml and the Dockerfile, read and checked against the code they deploy (there is
// no Docker engine to run them in the tests). Each check lists what is wrong, and each is also
// shown a broken copy, so it is seen to fail: a variable the configuration does not know, a
// secret file not mounted, a port or health check missing, search attributes that differ from the
// workflows', a final image that runs tsx or runs as root.
import { existsSync, readFileSync } from 'node:fs';
import { DockerfileParser } from 'dockerfile-ast';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../lib/platform/config.js';
import { searchAttributes } from '../lib/payments/payment.js';
import { PAYMENT_SEARCH_ATTRIBUTES } from '../scripts/embedded/temporal.js';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

interface Service {
  build?: unknown;
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  secrets?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
  command?: string | string[];
}
interface Compose {
  services: Record<string, Service>;
  secrets?: Record<string, unknown>;
}

/** As Compose reads it: `<<` merges the shared environment into the API's. */
const parseCompose = (text: string) => parse(text, { merge: true }) as Compose;
const composeText = read('docker-compose.yml');
const dockerfileText = read('Dockerfile');
const caddyText = existsSync(new URL('../deploy/Caddyfile', import.meta.url)) ? read('deploy/Caddyfile') : '';
const initScriptText = ['db/docker-init.sh', 'db/docker-init.sql'].filter((file) => existsSync(new URL(`../${file}`, import.meta.url))).map(read).join('\n');

/** The services built from this repository: durapay's own processes. */
const durapayServices = (compose: Compose) => Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

function environmentProblems(compose: Compose): string[] {
  const known = new Set(CONFIG_VARIABLES);
  return durapayServices(compose).flatMap(([name, service]) =>
    Object.keys(service.environment ?? {})
      .filter((variable) => !known.has(variable))
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
  for (const [name, service] of durapayServices(compose)) {
    if (!service.healthcheck?.test?.length) problems.push(`${name}: no healthcheck`);
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

/** The attributes the one-shot admin-tools service creates: "Name=Type" pairs of its shell loop. */
function registeredSearchAttributes(compose: Compose): Record<string, string> {
  const command = [compose.services['temporal-search-attributes']?.command ?? ''].flat().join(' ');
  const pairs = /for sa in ([^;]+);/.exec(command)?.[1]?.trim().split(/\s+/) ?? [];
  return Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]));
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

  it('runs the API and the worker from this repository', () => {
    expect(durapayServices(compose).map(([name]) => name).sort()).toEqual(['api', 'worker']);
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
    expect(healthcheckProblems(broken)).toEqual(['worker: no healthcheck', 'temporal waits for postgresql to be healthy, but postgresql has no healthcheck']);
  });

  it('registers the search attributes the workflows use, with their types', () => {
    const registered = registeredSearchAttributes(compose);
    expect(registered).toEqual(PAYMENT_SEARCH_ATTRIBUTES);
    const used = Object.fromEntries(Object.values(searchAttributes).map(({ name, type }) => [name, type.toLowerCase()]));
    expect(Object.fromEntries(Object.entries(registered).map(([name, type]) => [name, type.toLowerCase()]))).toEqual(used);

    const broken = parseCompose(composeText.replace('AmountFen=Int ', ''));
    expect(registeredSearchAttributes(broken)).not.toEqual(PAYMENT_SEARCH_ATTRIBUTES);
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
