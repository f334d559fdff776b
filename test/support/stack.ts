// A whole durapay for one test file: its own database, task queue, Alipay app and simulator, a
// real worker and the real API, configured through the same environment variables as production.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pg from 'pg';
import { inject } from 'vitest';
import { startApiServer, type RunningApi } from '../../api/server.js';
import { loadApiConfig, loadConfig, type Config } from '../../lib/platform/config.js';
import { createPool, migrate } from '../../lib/platform/database.js';
import { signRequest } from '../../lib/merchants/signing.js';
import { createMerchant } from '../../lib/merchants/accounts.js';
import { merchantSecretsVault } from '../../lib/platform/key-vault.js';
import { deriveApiKeys } from '../../lib/platform/master-key.js';
import { fromAlipayOutTradeNo, toAlipayOutTradeNo } from '../../lib/alipay/order-numbers.js';
import { paymentWorkflowId, type PaymentOrder, type PaymentWorkflowInput } from '../../lib/payments/payment.js';
import { reconciliationScheduleId } from '../../lib/payments/reconciliation.js';
import { createLogger } from '../../lib/platform/logger.js';
import { temporalConnectionOptions } from '../../lib/platform/temporal-connection.js';
import { startEngineProcess, type EngineProcess } from '../../scripts/embedded/engine-process.js';
import { findFreePort } from '../../lib/platform/free-port.js';
import { ensureSearchAttributes } from '../../scripts/embedded/temporal.js';
import { generateRsaKeyPair, startSimulator, type RunningSimulator } from '../../simulator/index.js';
import { createPaymentWorker } from '../../worker/worker.js';
import { waitFor } from './wait.js';

export interface StackOptions {
  /** 'cert': the simulator in certificate mode, the engine configured with its certificates. */
  alipayMode?: 'key' | 'cert';
  /** A second Alipay app at the simulator, with an Alipay key of its own, for a merchant of its own
   *  (registered with `npm run merchant -- app set`); key mode only. */
  secondApp?: boolean;
  orderTimeout?: string;
  pollLadder?: string;
  sellerId?: string;
  historyLimit?: number;
  unplaceableRetry?: string;
  /** Extra or replaced environment variables, e.g. to reach Temporal through a TLS front. */
  env?: Record<string, string>;
  /**
   * A PostgreSQL cluster of the test's own (a superuser URL) to create this stack's database in,
   * for tests that stop or freeze PostgreSQL; default: the run's shared cluster.
   */
  postgresUrl?: string;
  /** DATABASE_CONNECT_TIMEOUT and DATABASE_STATEMENT_TIMEOUT; default: the production defaults. */
  databaseConnectTimeout?: string;
  databaseStatementTimeout?: string;
  /** RECONCILIATION_BILL_WAIT and RECONCILIATION_BILL_TRIES; default 200ms and 3. */
  reconciliationBillWait?: string;
  reconciliationBillTries?: number;
}

export interface HttpAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** A merchant's credentials, as `npm run merchant -- create` prints them. */
export interface TestMerchant {
  id: string;
  secret: string;
  webhookSecret: string;
}

/** One request: a JSON body (a string is sent as it is), and the answer parsed when it is JSON. */
async function send(method: string, url: string, body: unknown, headersFor: (payload?: string) => Record<string, string>): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    ...headersFor(payload),
  };
  const res = await fetch(url, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain text answers (Alipay notify replies) stay text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

async function call(method: string, url: string, body?: unknown, signAs?: TestMerchant): Promise<HttpAnswer> {
  const { pathname, search } = new URL(url);
  // Every /v1 request is signed, exactly as a merchant's client signs it.
  return send(method, url, body, (payload) =>
    signAs && pathname.startsWith('/v1') ? signRequest(signAs.id, signAs.secret, { method, pathWithQuery: pathname + search, body: payload }) : {},
  );
}

/** A request to /ops with `Authorization: Bearer <token>` (none when token is null). */
async function opsCall(method: string, url: string, body: unknown, token: string | null): Promise<HttpAnswer> {
  return send(method, url, body, (): Record<string, string> => (token === null ? {} : { authorization: `Bearer ${token}` }));
}

/** Signed requests to one API as one merchant. */
export function merchantClient(baseUrl: string, merchant: TestMerchant) {
  const as = (method: string, path: string, body?: unknown) => call(method, `${baseUrl}${path}`, body, merchant);
  return {
    merchant,
    call: as,
    createPayment: (body: unknown) => as('POST', '/v1/payments', body),
    getPayment: (outTradeNo: string) => as('GET', `/v1/payments/${outTradeNo}`),
    cancelPayment: (outTradeNo: string) => as('POST', `/v1/payments/${outTradeNo}/cancel`),
  };
}

/** A new, empty database in the cluster at `clusterUrl` (no schema: startStack migrates it). */
export async function createDatabase(clusterUrl: string): Promise<string> {
  const name = `durapay_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: clusterUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

let runtimeInstalled = false;

export async function startStack(options: StackOptions = {}) {
  if (!runtimeInstalled) {
    // Tests inject gateway failures on purpose; their activity-failure warnings would bury the
    // output. TEST_TEMPORAL_LOG_LEVEL=WARN (or DEBUG) brings them back.
    const level = (process.env.TEST_TEMPORAL_LOG_LEVEL ?? 'ERROR') as 'ERROR';
    Runtime.install({ logger: new DefaultLogger(level) });
    runtimeInstalled = true;
  }
  const databaseUrl = await createDatabase(options.postgresUrl ?? inject('databaseUrl'));
  await migrate(databaseUrl);
  const pool = createPool(databaseUrl, { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 }, 4);
  const masterKey = randomBytes(32);
  // What the API and the worker open merchant secrets with (derived from the master key).
  const merchantSecrets = merchantSecretsVault(deriveApiKeys(masterKey).merchantSecrets);
  const merchant: TestMerchant = await createMerchant(pool, merchantSecrets, 'Test Tea House');
  const appKeys = generateRsaKeyPair();
  const alipayKeys = generateRsaKeyPair();
  const appId = `2021${randomInt(10 ** 11, 10 ** 12)}`;
  const sellerId = options.sellerId ?? '2088102177846880';
  const secondApp = options.secondApp
    ? { appId: `2021${randomInt(10 ** 11, 10 ** 12)}`, appKeys: generateRsaKeyPair(), alipayKeys: generateRsaKeyPair() }
    : undefined;
  const sim = await startSimulator({
    apps: [
      { appId, publicKey: appKeys.publicKey },
      ...(secondApp ? [{ appId: secondApp.appId, publicKey: secondApp.appKeys.publicKey, alipayPrivateKey: secondApp.alipayKeys.privateKey }] : []),
    ],
    alipayPrivateKey: alipayKeys.privateKey,
    alipayMode: options.alipayMode,
    sellerId,
    notifyRetryDelaysMs: [200, 400, 800, 1600],
  });
  const alipayCredentials = sim.certificates
    ? {
        ALIPAY_APP_CERT: sim.certificates.appCerts[appId],
        ALIPAY_PUBLIC_CERT: sim.certificates.alipayPublicCert,
        ALIPAY_ROOT_CERT: sim.certificates.alipayRootCert,
      }
    : { ALIPAY_PUBLIC_KEY: alipayKeys.publicKey };
  const apiPort = await findFreePort();
  const opsToken = randomBytes(32).toString('hex');
  const stackId = randomBytes(4).toString('hex');
  const env = {
    ALIPAY_GATEWAY_URL: sim.gatewayUrl,
    ALIPAY_APP_ID: appId,
    ALIPAY_PRIVATE_KEY: appKeys.privateKey,
    ...alipayCredentials,
    ALIPAY_SELLER_ID: options.sellerId,
    ALIPAY_NOTIFY_URL: `http://127.0.0.1:${apiPort}/alipay/notify`,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: `payments-${stackId}`,
    // A worker deployment of the stack's own: its version is made current without touching the
    // routing of other test files' workers on the same Temporal namespace.
    TEMPORAL_WORKER_DEPLOYMENT: `durapay-${stackId}`,
    TEMPORAL_WORKER_SET_CURRENT: 'on',
    DATABASE_URL: databaseUrl,
    PORT: String(apiPort),
    PAYMENT_TIMEOUT: options.orderTimeout ?? '4s',
    PAYMENT_POLL_LADDER: options.pollLadder ?? '1s',
    PAYMENT_HISTORY_LIMIT: options.historyLimit === undefined ? undefined : String(options.historyLimit),
    ALIPAY_UNPLACEABLE_ANSWER_RETRY: options.unplaceableRetry ?? '2s',
    API_ANSWER_TIMEOUT: '2s',
    DATABASE_CONNECT_TIMEOUT: options.databaseConnectTimeout,
    DATABASE_STATEMENT_TIMEOUT: options.databaseStatementTimeout,
    LOG_LEVEL: 'silent',
    // Tests poll every 50 ms, concurrently, far faster than any integration; the limits have their
    // own tests, which set them through `env`.
    RATE_LIMIT_MERCHANT_PER_MINUTE: '1000000',
    RATE_LIMIT_IP_PER_MINUTE: '1000000',
    AUTH_FAILURES_PER_MINUTE: '1000000',
    OPS_TOKEN: opsToken,
    DURAPAY_MASTER_KEY: masterKey.toString('hex'),
    BARCODE_QUERY_INTERVAL: '1s',
    BARCODE_CONFIRM_WINDOW: '4s',
    BARCODE_ANSWER_TIMEOUT: '2s',
    RECONCILIATION_BILL_WAIT: options.reconciliationBillWait ?? '200ms',
    RECONCILIATION_BILL_TRIES: String(options.reconciliationBillTries ?? 3),
    // Cashier pages link to the simulator's pay page.
    SIMULATOR_URL: sim.url,
    // Spawned workers run side by side (and beside other test files' workers): any free port each.
    WORKER_METRICS_PORT: '127.0.0.1:0',
    // The tests' webhook receivers listen on 127.0.0.1; the tests of `deny` set it through `env`.
    WEBHOOK_PRIVATE_TARGETS: 'allow',
    ...options.env,
  };
  const config: Config = loadConfig(env);
  const logger = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent');
  const apiConfig = loadApiConfig(env);
  const api: RunningApi = await startApiServer(apiConfig, logger);
  const workflowBundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };

  async function runWorker(workerConfig: Config) {
    const connection = await NativeConnection.connect(temporalConnectionOptions(workerConfig.temporal));
    const instance = await createPaymentWorker({ config: workerConfig, connection, pool, workflowBundle, logger });
    const running = instance.run();
    await instance.takeUpVersion();
    return async () => {
      instance.shutdown();
      await running;
      await connection.close();
    };
  }
  let stopRunningWorker: (() => Promise<void>) | undefined;
  async function startWorker() {
    stopRunningWorker = await runWorker(config);
  }
  async function stopWorker() {
    const stop = stopRunningWorker;
    stopRunningWorker = undefined;
    await stop?.();
  }
  await startWorker();

  /** The same database, Alipay app and simulator under a Temporal namespace that has never
   *  heard of any order: what the engine sees once Temporal's retention has passed. */
  async function startEngineOnFreshNamespace() {
    const namespace = `forgetful-${randomBytes(4).toString('hex')}`;
    const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
    try {
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
      await waitFor(`namespace ${namespace}`, async () => {
        await connection.workflowService.describeNamespace({ namespace });
        return true;
      });
      await ensureSearchAttributes(connection, namespace);
    } finally {
      await connection.close();
    }
    const freshEnv = { ...env, TEMPORAL_NAMESPACE: namespace, PORT: '0' };
    const freshApi = await startApiServer(loadApiConfig(freshEnv), logger);
    const stopFreshWorker = await runWorker(loadConfig(freshEnv));
    return {
      namespace,
      createPayment: (body: unknown) => call('POST', `${freshApi.url}/v1/payments`, body, merchant),
      async stop() {
        await stopFreshWorker();
        await freshApi.close();
      },
    };
  }

  /** A worker in a process of its own, as `npm run worker` runs it (for tests that kill it, or read its logs). */
  async function spawnWorkerProcess(more: Record<string, string> = {}, output: (line: string) => void = () => {}) {
    const worker = await startEngineProcess({ role: 'worker', env: { ...process.env, ...definedEnv(), LOG_LEVEL: 'info', ...more }, output });
    spawned.push(worker);
    return worker;
  }
  /** An API in a process of its own, as `npm run api` runs it, with the merchant's client; on
   *  `more.PORT` when given (e.g. to have Alipay's notifies sent to it through ALIPAY_NOTIFY_URL). */
  async function spawnApiProcess(more: Record<string, string> = {}, output: (line: string) => void = () => {}) {
    const port = more.PORT ? Number(more.PORT) : await findFreePort();
    const api = await startEngineProcess({
      role: 'api',
      env: { ...process.env, ...definedEnv(), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...more, PORT: String(port) },
      output,
    });
    spawned.push(api);
    const url = `http://127.0.0.1:${port}`;
    return { ...api, url, client: merchantClient(url, merchant) };
  }
  const spawned: EngineProcess[] = [];
  const definedEnv = () => Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));

  /** Another API process on the same Temporal, database and Alipay app. */
  async function startAnotherApi() {
    const other = await startApiServer(loadApiConfig({ ...env, PORT: '0' }), logger);
    return {
      url: other.url,
      call: (method: string, path: string, body?: unknown) => call(method, `${other.url}${path}`, body, merchant),
      stop: () => other.close(),
    };
  }

  let orderSeq = 0;
  const stack = {
    config,
    /** What the stack's API was started with. */
    apiConfig,
    /** Seals and opens the merchants' secrets, as the API and the worker do. */
    merchantSecrets,
    appId,
    sellerId,
    /** The second app's id and keys (with `secondApp`): its own key pair, and its own Alipay key pair. */
    secondApp,
    /** The first app's Alipay key pair (what signs its answers and notifies at the simulator). */
    alipayKeys,
    api,
    sim,
    pool,
    startWorker,
    stopWorker,
    startEngineOnFreshNamespace,
    startAnotherApi,
    spawnWorkerProcess,
    spawnApiProcess,
    /** The environment the stack's API and worker processes are spawned with. */
    engineEnv: definedEnv,
    refund: (outTradeNo: string, body: unknown) => call('POST', `${api.url}/v1/payments/${outTradeNo}/refunds`, body, merchant),
    getRefund: (outTradeNo: string, outRequestNo: string) => call('GET', `${api.url}/v1/payments/${outTradeNo}/refunds/${outRequestNo}`, undefined, merchant),
    /** Waits until a refund reaches `status` through the merchant API. */
    async waitForRefund(outTradeNo: string, outRequestNo: string, status: string, timeoutMs = 15_000) {
      return waitFor(
        `refund ${outRequestNo} of ${outTradeNo} to be ${status}`,
        async () => {
          const answer = await stack.getRefund(outTradeNo, outRequestNo);
          return answer.body?.status === status ? answer.body : undefined;
        },
        { timeoutMs },
      );
    },
    newOrderNo: (label: string) => `${label}-${Date.now().toString(36)}-${++orderSeq}`,
    merchant,
    /** The bearer token of this stack's /ops endpoints. */
    opsToken,
    /** An /ops request with this stack's token (or the one given; null sends none). */
    ops: (method: string, path: string, body?: unknown, token: string | null = opsToken) =>
      opsCall(method, `${api.url}${path}`, body, token),
    /** Another merchant of this engine, on the same Alipay app, with its own client. */
    async newMerchant(name: string) {
      return merchantClient(api.url, await createMerchant(pool, merchantSecrets, name));
    },
    /** Alipay's out_trade_no for this stack's merchant's order number. */
    alipayNo: (outTradeNo: string) => toAlipayOutTradeNo(merchant.id, outTradeNo),
    workflowId: (outTradeNo: string) => paymentWorkflowId(appId, toAlipayOutTradeNo(merchant.id, outTradeNo)),
    /** A validly signed notify that does not match the order (0.01 paid) sends it to REVIEW while
     *  its workflow waits; then the buyer really pays, so Alipay holds the order's amount. */
    async inReviewThenPaid(outTradeNo: string) {
      await stack.simCall('POST', `/sim/trades/${outTradeNo}/scan`);
      await stack.simCall('POST', `/sim/trades/${outTradeNo}/notify`, { variant: 'valid', overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' } });
      await stack.waitForStatus(outTradeNo, 'REVIEW');
      const paid = await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
      if (paid.status !== 200) throw new Error(`the buyer's payment of ${outTradeNo} was refused: HTTP ${paid.status}`);
    },
    /** A payment workflow's input as the API builds it (api/payments.ts): 15.00 of tea unless the
     *  order says otherwise, for tests that start the workflow on Temporal themselves. */
    paymentWorkflowInput(outTradeNo: string, order: Partial<PaymentOrder> = {}): PaymentWorkflowInput {
      const barcode = order.method === 'barcode';
      const { barcode: window, timings } = config;
      return {
        order: {
          appId,
          outTradeNo,
          alipayOutTradeNo: toAlipayOutTradeNo(merchant.id, outTradeNo),
          merchantId: merchant.id,
          amountFen: 1500,
          subject: 'tea',
          alipayNotifyUrl: config.alipay.notifyUrl,
          ...order,
        },
        timings: barcode
          ? { orderTimeoutMs: window.confirmWindowMs, pollLadderMs: [window.queryEveryMs], historyLimit: timings.historyLimit, answerWithinMs: window.answerWithinMs }
          : timings,
        latePaymentPolicy: config.latePaymentPolicy,
      };
    },
    createPayment: (body: unknown) => call('POST', `${api.url}/v1/payments`, body, merchant),
    getPayment: (outTradeNo: string) => call('GET', `${api.url}/v1/payments/${outTradeNo}`, undefined, merchant),
    cancelPayment: (outTradeNo: string) => call('POST', `${api.url}/v1/payments/${outTradeNo}/cancel`, undefined, merchant),
    /** Signed as this stack's merchant on /v1; as sent elsewhere. */
    apiCall: (method: string, path: string, body?: unknown) => call(method, `${api.url}${path}`, body, merchant),
    /** The simulator speaks Alipay's numbers: a trade path takes the merchant's number and is mapped,
     *  and the call log answers with the merchant's numbers. */
    async simCall(method: string, path: string, body?: unknown) {
      const mapped = path.replace(/^\/sim\/trades\/([^/]+)/, (_m, no: string) => `/sim/trades/${toAlipayOutTradeNo(merchant.id, no)}`);
      const answer = await call(method, `${sim.url}${mapped}`, body);
      if (path === '/sim/calls' && Array.isArray(answer.body)) {
        for (const c of answer.body) {
          const ours = c.outTradeNo && fromAlipayOutTradeNo(c.outTradeNo);
          if (ours && ours.merchantId === merchant.id) c.outTradeNo = ours.orderNo;
        }
      }
      return answer;
    },
    ledger: async (outTradeNo: string) => (await call('GET', `${sim.url}/sim/trades/${toAlipayOutTradeNo(merchant.id, outTradeNo)}`)).body,
    /** Waits until the order reaches `status` through the merchant API. */
    async waitForStatus(outTradeNo: string, status: string, timeoutMs = 15_000) {
      return waitFor(
        `${outTradeNo} to be ${status}`,
        async () => {
          const answer = await stack.getPayment(outTradeNo);
          return answer.body?.status === status ? answer.body : undefined;
        },
        { timeoutMs },
      );
    },
    async events(outTradeNo: string): Promise<{ type: string; data: any }[]> {
      const { rows } = await pool.query(
        `SELECT e.type, e.data FROM payment_events e JOIN payments p ON p.id = e.payment_id
         WHERE p.merchant_id = $1 AND p.out_trade_no = $2 ORDER BY e.id`,
        [merchant.id, outTradeNo],
      );
      return rows;
    },
    async paymentCount(): Promise<number> {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM payments');
      return rows[0].n;
    },
    async stop() {
      await Promise.all(spawned.map((part) => part.kill()));
      await stopWorker();
      // Each stack's worker made its app's reconciliation Schedule; the dev server outlives the stack.
      const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
      try {
        for (const id of [appId, ...(secondApp ? [secondApp.appId] : [])]) {
          await new Client({ connection }).schedule.getHandle(reconciliationScheduleId(id)).delete().catch(() => {});
        }
      } catch {
        // never made (the worker did not start) or already gone
      } finally {
        await connection.close();
      }
      await api.close();
      await sim.stop();
      await pool.end();
    },
  };
  return stack;
}

export type Stack = Awaited<ReturnType<typeof startStack>>;
