// The whole of durapay on one machine, as `npm start` and `npm run bench` run it. Each part is
// embedded only while its own variable is unset: no TEMPORAL_ADDRESS → a Temporal dev server
// (with its UI), or with TEMPORAL_MODE=cluster a Temporal server on the PostgreSQL below; no
// DATABASE_URL → an embedded PostgreSQL; no ALIPAY_GATEWAY_URL (nor ALIPAY_ENV)
// → the Alipay simulator. Then the worker and the API.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { NativeConnection } from '@temporalio/worker';
import type pg from 'pg';
import type { Logger } from 'pino';
import { startApiServer } from '../api/server.js';
import { loadApiConfig, loadConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { TEMPORAL_SECURITY_VARIABLES } from '../lib/platform/temporal-connection.js';
import { createPool } from '../lib/platform/database.js';
import { consoleLoginsFile, databaseUrlFile, devMerchantFile, masterKeyFile, opsTokenFile } from '../lib/platform/data-dir.js';
import { createConsoleUser, findConsoleUserByEmail, generatePassword, resetConsoleUserPassword, verifyPassword } from '../lib/console/users.js';
import { createMerchant, findMerchantCredentials, migrateSealingMerchantSecrets } from '../lib/merchants/accounts.js';
import { merchantSecretsVault, type KeyProvider } from '../lib/platform/key-vault.js';
import { deriveApiKeys, formatApiKeys } from '../lib/platform/master-key.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { generateRsaKeyPair, startSimulator } from '../simulator/index.js';
import { createPaymentWorker } from '../worker/worker.js';
import { findFreePort, isPortOpen } from '../lib/platform/free-port.js';
import { startEngineProcess } from './embedded/engine-process.js';
import { startEmbeddedPostgres } from './embedded/postgres.js';
import { startTemporalDevServer } from './embedded/temporal.js';
import { startTemporalCluster } from './embedded/temporal-cluster.js';
import { startTemporalUi } from './embedded/temporal-ui.js';

export interface LocalStackOptions {
  dataDir: string;
  /** Keep Temporal, PostgreSQL and the simulator's keys in dataDir across starts (npm start), or
   *  throw them away on stop (the bench). */
  persistent: boolean;
  env: Record<string, string | undefined>;
  logger: Logger;
  say: (msg: string) => void;
  /** 'processes' (npm start): the worker and the API in processes of their own; 'one-process':
   *  both in this process, as the benchmark compares. */
  layout?: 'processes' | 'one-process';
  /** Where the worker's and the API's log lines go in the 'processes' layout; default stdout. */
  engineOutput?: (line: string) => void;
}

export interface LocalStack {
  /** What runs where, for people: [name, url], the API first. */
  urls: [string, string][];
  apiUrl: string;
  simulatorUrl?: string;
  /** The merchant for local use, kept in <data folder>/dev-merchant.json. */
  devMerchant: DevMerchant & { file: string; created: boolean };
  /** The web console's logins for local use, kept in <data folder>/console-logins.json. */
  consoleLogins: { operator: ConsoleLogin; merchant: ConsoleLogin; file?: string };
  /** The processes running the worker and the API (this one in the 'one-process' layout). */
  enginePids: { worker: number; api: number };
  /** The /ops bearer token: OPS_TOKEN, or one generated and kept in the data folder (file set). */
  ops: { token: string; file?: string; created: boolean };
  /** The embedded PostgreSQL's cluster when it is not in the data folder (as root, out of the
   *  `postgres` OS user's reach: see scripts/embedded/postgres.ts). */
  postgresDataDir?: string;
  /** The environment the worker and the API run with. */
  engineEnv: Record<string, string | undefined>;
  /** Stops every part it started, the API first, Temporal and PostgreSQL last. */
  stop(): Promise<void>;
}

export interface DevMerchant {
  merchantId: string;
  secret: string;
  webhookSecret: string;
}

/** The dev merchant of this data folder: reused while it exists and is active, else created.
 *  Its secrets go to a mode-600 file, never to a log. */
async function ensureDevMerchant(pool: pg.Pool, merchantSecrets: KeyProvider, dataDir: string): Promise<LocalStack['devMerchant']> {
  const file = devMerchantFile(dataDir);
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as DevMerchant;
    const known = await findMerchantCredentials(pool, merchantSecrets, saved.merchantId);
    if (known?.status === 'active' && known.secrets.includes(saved.secret)) return { ...saved, file, created: false };
  }
  const merchant = await createMerchant(pool, merchantSecrets, 'Dev merchant');
  const devMerchant: DevMerchant = { merchantId: merchant.id, secret: merchant.secret, webhookSecret: merchant.webhookSecret };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(devMerchant, null, 2)}\n`, { mode: 0o600 });
  return { ...devMerchant, file, created: true };
}

export interface ConsoleLogin {
  email: string;
  password: string;
}

export const DEV_CONSOLE_EMAILS = { operator: 'operator@durapay.local', merchant: 'merchant@durapay.local' } as const;

/**
 * The console's dev logins: an operator, and the dev merchant's staff. Made once and kept (with
 * their passwords, mode 600) in the data folder, like the dev merchant; made again when the file or
 * a login is gone or no longer matches, and the merchant login follows a dev merchant made anew.
 */
async function ensureConsoleLogins(pool: pg.Pool, devMerchantId: string, dataDir: string, persistent: boolean): Promise<LocalStack['consoleLogins']> {
  const file = consoleLoginsFile(dataDir);
  let saved: Partial<Record<'operator' | 'merchant', ConsoleLogin>> = {};
  if (persistent && existsSync(file)) {
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      saved = {};
    }
  }
  const logins = {} as Record<'operator' | 'merchant', ConsoleLogin>;
  for (const kind of ['operator', 'merchant'] as const) {
    const email = DEV_CONSOLE_EMAILS[kind];
    const role = kind === 'operator' ? 'operator' : `merchant:${devMerchantId}`;
    const known = await findConsoleUserByEmail(pool, email);
    const kept = saved[kind];
    if (known && kept?.email === email && !known.disabled && (await verifyPassword(kept.password, known.passwordHash))) {
      if (known.role !== role) await pool.query('UPDATE console_users SET role = $2 WHERE id = $1', [known.id, role]);
      logins[kind] = kept;
      continue;
    }
    const password = generatePassword();
    if (known) {
      await resetConsoleUserPassword(pool, email, password);
      await pool.query('UPDATE console_users SET role = $2, disabled = false WHERE id = $1', [known.id, role]);
    } else {
      await createConsoleUser(pool, { email, role, password });
    }
    logins[kind] = { email, password };
  }
  if (!persistent) return logins;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(logins, null, 2)}\n`, { mode: 0o600 });
  return { ...logins, file };
}

/**
 * TEMPORAL_MODE: `dev` (the default), the Temporal CLI's dev server on a SQLite file; or `cluster`, a
 * Temporal server on the stack's PostgreSQL (scripts/embedded/temporal-cluster.ts). Either is
 * started only when TEMPORAL_ADDRESS names no Temporal of its own.
 */
function temporalModeOf(env: Record<string, string | undefined>): 'dev' | 'cluster' {
  const mode = env.TEMPORAL_MODE?.trim() || 'dev';
  if (mode !== 'dev' && mode !== 'cluster') throw new ConfigError(`TEMPORAL_MODE: "${mode}" is neither dev nor cluster`);
  if (mode === 'cluster' && env.TEMPORAL_ADDRESS) {
    throw new ConfigError('TEMPORAL_MODE=cluster starts a Temporal server of its own: unset TEMPORAL_ADDRESS, or TEMPORAL_MODE to use that one');
  }
  return mode;
}

/** A preferred port when it is free (stable URLs for people), else any free one. */
async function portOr0(preferred: number): Promise<number> {
  return (await isPortOpen(preferred)) ? 0 : preferred;
}

interface SimulatorIdentity {
  appId: string;
  appPrivateKey: string;
  appPublicKey: string;
  alipayPrivateKey: string;
  alipayPublicKey: string;
}

function newSimulatorIdentity(): SimulatorIdentity {
  const app = generateRsaKeyPair();
  const alipay = generateRsaKeyPair();
  return {
    appId: `2021${randomInt(10 ** 11, 10 ** 12)}`,
    appPrivateKey: app.privateKey,
    appPublicKey: app.publicKey,
    alipayPrivateKey: alipay.privateKey,
    alipayPublicKey: alipay.publicKey,
  };
}

/** Dev keys are generated on the first start and kept (mode 600) so later starts match the data. */
function loadOrCreateSimulatorIdentity(dataDir: string): SimulatorIdentity {
  const file = join(dataDir, 'simulator-keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SimulatorIdentity;
  const identity = newSimulatorIdentity();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(identity, null, 2), { mode: 0o600 });
  return identity;
}

/** OPS_TOKEN when set; otherwise the token kept in the data folder, or a new one written there (mode 600). */
function loadOrCreateOpsToken(dataDir: string, persistent: boolean): LocalStack['ops'] {
  if (!persistent) return { token: randomBytes(32).toString('hex'), created: true };
  const file = opsTokenFile(dataDir);
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return { token: kept, file, created: false };
  }
  const token = randomBytes(32).toString('hex');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, file, created: true };
}

/** The master key kept in the data folder, or a new one written there (mode 600); never printed. */
function loadOrCreateMasterKey(dataDir: string, persistent: boolean): string {
  if (!persistent) return randomBytes(32).toString('hex');
  const file = masterKeyFile(dataDir);
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return kept;
  }
  const key = randomBytes(32).toString('hex');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/**
 * `npm start`'s WEBHOOK_PRIVATE_TARGETS: allow when unset, since a local receiver (on this machine)
 * is what a local stack's webhooks are for; a value given is kept. With the banner's line saying so.
 */
export function npmStartWebhookTargets(env: Record<string, string | undefined>): { value: string; banner: string } {
  const given = env.WEBHOOK_PRIVATE_TARGETS?.trim();
  if (given) return { value: given, banner: `WEBHOOK_PRIVATE_TARGETS=${given} (as given)` };
  return {
    value: 'allow',
    banner: "WEBHOOK_PRIVATE_TARGETS=allow (npm start's default: webhooks may go to this machine and private addresses; production's default is deny)",
  };
}

export async function startLocalStack({
  dataDir,
  persistent,
  env: given,
  logger,
  say,
  layout = 'processes',
  engineOutput = (line) => console.log(line),
}: LocalStackOptions): Promise<LocalStack> {
  const env = { ...given };
  const urls: [string, string][] = [];
  let postgresDataDir: string | undefined;
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  const log = (msg: string) => logger.debug(msg);
  function onEngineExit(role: string, code: number | null, signal: NodeJS.Signals | null) {
    if (stopping) return;
    say(`the ${role} process exited (${signal ?? `code ${code}`}); stopping the rest`);
    void stop().then(() => process.exit(1));
  }

  let stopping = false;
  async function stop() {
    stopping = true;
    for (const { name, stop: stopPart } of stops.reverse()) {
      try {
        await stopPart();
        say(`stopped ${name}`);
      } catch (err) {
        say(`stopping ${name} failed: ${(err as Error).message}`);
      }
    }
  }

  try {
    const apiPort = env.PORT ? Number(env.PORT) : (await portOr0(3000)) || (await findFreePort());
    const temporalMode = temporalModeOf(env);

    if (!env.TEMPORAL_ADDRESS) {
      // The embedded Temporal (dev server or cluster) speaks plain gRPC on loopback: settings meant
      // for a secured cluster would only end in an obscure handshake error.
      const secured = TEMPORAL_SECURITY_VARIABLES.filter(
        (name) => (env[name] || env[`${name}_FILE`]) && !(name === 'TEMPORAL_TLS' && /^(off|false)$/i.test(env[name]?.trim() ?? '')),
      );
      if (secured.length > 0) {
        throw new ConfigError(
          `${secured.join(', ')}: set without TEMPORAL_ADDRESS, but the embedded Temporal ${temporalMode === 'dev' ? 'dev server' : 'server'} has no TLS; ` +
            'set TEMPORAL_ADDRESS to the secured cluster, or unset them',
        );
      }
    }
    if (!env.TEMPORAL_ADDRESS && temporalMode === 'dev') {
      say('starting the Temporal dev server (the first start may build the Temporal CLI: about 3 minutes)');
      const temporal = await startTemporalDevServer({
        dbFile: persistent ? join(dataDir, 'temporal.sqlite') : undefined,
        port: await portOr0(7233),
        uiPort: await portOr0(8233),
        log: say,
      });
      stops.push({ name: 'Temporal dev server', stop: temporal.stop });
      env.TEMPORAL_ADDRESS = temporal.address;
      if (temporal.uiUrl) urls.push(['Temporal UI', temporal.uiUrl]);
      if (temporal.uiUrl) env.TEMPORAL_UI_URL ??= temporal.uiUrl;
    }

    if (!env.DATABASE_URL) {
      say('starting the embedded PostgreSQL');
      const postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), persistent, log });
      stops.push({ name: 'PostgreSQL', stop: postgres.stop });
      if (persistent && postgres.dataDir !== join(dataDir, 'postgres')) postgresDataDir = postgres.dataDir;
      env.DATABASE_URL = postgres.url;
      // For `npm run merchant` beside a running `npm start`; it holds a password, hence mode 600.
      writeFileSync(databaseUrlFile(dataDir), postgres.url, { mode: 0o600 });
    }
    urls.push(['PostgreSQL', env.DATABASE_URL.replace(/:[^:@/]+@/, ':***@')]);

    if (temporalMode === 'cluster') {
      // A real Temporal server, its persistence and visibility in that PostgreSQL.
      say('starting the Temporal server on PostgreSQL (the first start builds it from its Go module: about 5 minutes)');
      const clusterDir = persistent ? join(dataDir, 'temporal-cluster') : mkdtempSync(join(tmpdir(), 'durapay-temporal-cluster-'));
      const cluster = await startTemporalCluster({ databaseUrl: env.DATABASE_URL, dir: clusterDir, port: await portOr0(7233), log: say });
      stops.push({
        name: 'Temporal server',
        stop: async () => {
          await cluster.stop();
          if (!persistent) rmSync(clusterDir, { recursive: true, force: true });
        },
      });
      env.TEMPORAL_ADDRESS = cluster.address;
      env.TEMPORAL_NAMESPACE = cluster.namespace;
      say('starting the Temporal UI (the first start builds it from its Go module: about 2 minutes)');
      const ui = await startTemporalUi({ temporalAddress: cluster.address, namespace: cluster.namespace, dir: join(clusterDir, 'ui'), port: await portOr0(8233), log: say });
      stops.push({ name: 'Temporal UI', stop: ui.stop });
      urls.push(['Temporal UI', ui.url]);
      env.TEMPORAL_UI_URL ??= ui.url;
    }
    urls.push(['Temporal gRPC', env.TEMPORAL_ADDRESS!]);
    if (temporalMode === 'cluster') urls.push(['Temporal namespace', env.TEMPORAL_NAMESPACE!]);

    env.ALIPAY_NOTIFY_URL ??= `http://127.0.0.1:${apiPort}/alipay/notify`;
    let simulatorUrl: string | undefined;
    if (!env.ALIPAY_GATEWAY_URL && !env.ALIPAY_ENV) {
      const identity = persistent ? loadOrCreateSimulatorIdentity(dataDir) : newSimulatorIdentity();
      const simulator = await startSimulator({
        port: await portOr0(8090),
        apps: [{ appId: identity.appId, publicKey: identity.appPublicKey }],
        alipayPrivateKey: identity.alipayPrivateKey,
      });
      stops.push({ name: 'Alipay simulator', stop: simulator.stop });
      Object.assign(env, {
        ALIPAY_GATEWAY_URL: simulator.gatewayUrl,
        ALIPAY_APP_ID: identity.appId,
        ALIPAY_PRIVATE_KEY: identity.appPrivateKey,
        ALIPAY_PUBLIC_KEY: identity.alipayPublicKey,
        // Cashier pages link to the simulator's pay page.
        SIMULATOR_URL: simulator.url,
      });
      simulatorUrl = simulator.url;
      urls.push(['Alipay simulator', simulator.url]);
    }

    const ops = env.OPS_TOKEN || env.OPS_TOKEN_FILE ? { token: env.OPS_TOKEN ?? '', created: false } : loadOrCreateOpsToken(dataDir, persistent);
    if (!env.OPS_TOKEN && !env.OPS_TOKEN_FILE) env.OPS_TOKEN = ops.token;
    // The root of every key (lib/platform/master-key.ts): the worker holds it, the API only what derives from it.
    if (!env.DURAPAY_MASTER_KEY && !env.DURAPAY_MASTER_KEY_FILE) env.DURAPAY_MASTER_KEY = loadOrCreateMasterKey(dataDir, persistent);
    // The engine you start is the one that takes new orders: its worker version is made current.
    env.TEMPORAL_WORKER_SET_CURRENT ||= 'on';
    const config = loadConfig(env);
    if (config.opsToken) ops.token = config.opsToken;
    const apiKeys = deriveApiKeys(config.masterKey);
    const merchantSecrets = merchantSecretsVault(apiKeys.merchantSecrets);
    await migrateSealingMerchantSecrets(config.databaseUrl, merchantSecrets, log);

    const pool = createPool(config.databaseUrl, config.databaseTimeouts);
    let devMerchant: LocalStack['devMerchant'];
    let consoleLogins: LocalStack['consoleLogins'];
    try {
      devMerchant = await ensureDevMerchant(pool, merchantSecrets, dataDir);
      consoleLogins = await ensureConsoleLogins(pool, devMerchant.merchantId, dataDir, persistent);
    } finally {
      if (layout === 'processes') await pool.end();
    }
    say('bundling the workflows and starting the worker');
    // The API faces the network: it gets the keys derived for it, never the master key.
    const apiEnv = { ...env, DURAPAY_MASTER_KEY: '', DURAPAY_MASTER_KEY_FILE: '', DURAPAY_API_KEYS: formatApiKeys(apiKeys), DURAPAY_API_KEYS_FILE: '', PORT: String(apiPort) };
    if (layout === 'processes') {
      // The worker's /metrics, on loopback like the API: 9464 when free, else any free port.
      if (!env.WORKER_METRICS_PORT) {
        env.WORKER_METRICS_PORT = `127.0.0.1:${(await portOr0(9464)) || (await findFreePort())}`;
        urls.push(['Worker metrics', `http://${env.WORKER_METRICS_PORT}/metrics`]);
      }
      // Tracing (docs/reference/tracing.md): the OTEL_* variables reach both processes with env.
      const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
      if (traces) urls.push(['Traces (OTLP)', traces]);
      const worker = await startEngineProcess({ role: 'worker', env, output: engineOutput });
      stops.push({ name: 'worker', stop: worker.stop });
      const api = await startEngineProcess({ role: 'api', env: { ...apiEnv, HOST: '127.0.0.1' }, output: engineOutput });
      stops.push({ name: 'API', stop: api.stop });
      // One part gone means the stack no longer works: say so and stop the rest.
      for (const part of [worker, api]) {
        void part.exited.then(({ code, signal }) => onEngineExit(part.role, code, signal));
      }
      const apiUrl = `http://127.0.0.1:${apiPort}`;
      urls.unshift(['API', apiUrl]);
      return { urls, apiUrl, simulatorUrl, devMerchant, consoleLogins, enginePids: { worker: worker.pid, api: api.pid }, ops, postgresDataDir, engineEnv: env, stop };
    }

    const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
    const worker = await createPaymentWorker({ config, connection, pool, logger });
    const running = worker.run();
    await worker.takeUpVersion();
    stops.push({
      name: 'worker',
      stop: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
        await connection.close();
        await pool.end();
      },
    });
    const api = await startApiServer(loadApiConfig(apiEnv), logger);
    stops.push({ name: 'API', stop: api.close });
    urls.unshift(['API', api.url]);
    return { urls, apiUrl: api.url, simulatorUrl, devMerchant, consoleLogins, enginePids: { worker: process.pid, api: process.pid }, ops, postgresDataDir, engineEnv: env, stop };
  } catch (err) {
    await stop(); // whatever did start
    throw err;
  }
}
