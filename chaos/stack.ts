// The stack the chaos run drives, every part a real one and each breakable on purpose: the Temporal
// dev server on its SQLite file (stopped and started again on the same file), PostgreSQL (frozen
// with SIGSTOP, or shut down and started again on its data), two worker processes and two API
// processes (killed with SIGKILL and started again), the simulator with two Alipay apps (one in key mode, one in certificate mode) and two
// merchants, one on each, and a small load balancer in front of the APIs that Alipay's notifies
// and the merchants' requests go through.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import pg from 'pg';
import { assignAlipayApp, saveAlipayApp } from '../lib/alipay/apps.js';
import { createPool, migrate } from '../lib/platform/database.js';
import { findFreePort } from '../lib/platform/free-port.js';
import { MasterKeyProvider, merchantSecretsVault } from '../lib/platform/key-vault.js';
import { deriveApiKeys, parseMasterKey } from '../lib/platform/master-key.js';
import { beijingDay, beijingDayStart } from '../lib/payments/reconciliation.js';
import { createMerchant, type NewMerchant } from '../lib/merchants/accounts.js';
import { startEngineProcess, type EngineProcess, type EngineRole } from '../scripts/embedded/engine-process.js';
import { freezePostgres, startEmbeddedPostgres, type RunningPostgres } from '../scripts/embedded/postgres.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/embedded/temporal.js';
import { startTemporalCluster, type TemporalCluster } from '../scripts/embedded/temporal-cluster.js';
import { generateRsaKeyPair, startSimulator, type RunningSimulator } from '../simulator/index.js';
import { bundleWorkflowsApart } from '../worker/worker.js';

export interface ChaosStackOptions {
  /** PAYMENT_TIMEOUT and PAYMENT_POLL_LADDER of the engine. */
  orderTimeout: string;
  pollLadder: string;
  /** The Temporal dev server on its SQLite file, or a Temporal server on a PostgreSQL of its own
   *  (its database apart from durapay's, as in production: PostgreSQL faults hit durapay's only). */
  temporal: 'dev' | 'cluster';
  say: (message: string) => void;
}

export interface ChaosMerchant extends NewMerchant {
  appId: string;
  /** How Alipay and the app sign for each other: with keys, or with certificates (公钥证书). */
  alipayMode: 'key' | 'cert';
}

/** An engine process that can be killed and started again in the same place. */
export class EnginePart {
  private current: EngineProcess | undefined;
  constructor(
    private readonly role: EngineRole,
    private readonly env: () => Record<string, string>,
    private readonly output: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    this.current = await startEngineProcess({ role: this.role, env: this.env(), output: this.output });
  }

  /** SIGKILL, as the kernel would. */
  async kill(): Promise<void> {
    const process = this.current;
    this.current = undefined;
    await process?.kill();
  }

  async stop(): Promise<void> {
    const process = this.current;
    this.current = undefined;
    await process?.stop();
  }
}

/** The stacks that run in this process, for a Ctrl-C to stop (chaos/main.ts). */
const running = new Set<ChaosStack>();
export async function stopRunningStacks(): Promise<void> {
  await Promise.all([...running].map((stack) => stack.stop()));
}

export class ChaosStack {
  readonly workers: EnginePart[] = [];
  readonly apis: EnginePart[] = [];
  readonly merchants: ChaosMerchant[] = [];
  /** The two Alipay apps, whichever merchant is on them now. */
  readonly apps: { appId: string; alipayMode: 'key' | 'cert' }[] = [];
  /** The engine's log lines at warning and above, counted by process role, level and message. */
  readonly engineWarnings = new Map<string, number>();
  simulator!: RunningSimulator;
  pool!: pg.Pool;
  temporalAddress = '';
  temporalNamespace = 'default';
  balancerUrl = '';
  /** Who is behind the balancer now: ports of the APIs that run. */
  private readonly apiPorts: number[] = [];
  private temporal: TemporalDevServer | TemporalCluster | undefined;
  /** The cluster's own PostgreSQL (cluster mode). */
  private temporalPostgres: RunningPostgres | undefined;
  private temporalPorts = { port: 0, uiPort: 0 };
  private postgres: RunningPostgres | undefined;
  private postgresPort = 0;
  private balancer: Server | undefined;
  private receiver: Server | undefined;
  /** The merchants' webhook receiver: every delivery as it arrived, and whether it is up. */
  readonly webhooks: { merchantId: string; signature: string; body: string; receivedAt: number }[] = [];
  webhookReceiverUp = true;
  webhookUrl = '';
  readonly opsToken = randomBytes(32).toString('hex');
  /** The Beijing day the run's trades are on at Alipay (its clock runs behind). */
  billDay = '';
  private thawFrozenPostgres: (() => void) | undefined;
  private readonly dataDir: string;
  private env: Record<string, string> = {};

  constructor(private readonly options: ChaosStackOptions) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'durapay-chaos-'));
    chmodSync(this.dataDir, 0o755); // PostgreSQL runs as its own OS user when we are root
  }

  async start(): Promise<void> {
    running.add(this);
    const say = this.options.say;
    say(this.options.temporal === 'cluster' ? 'starting a Temporal server on a PostgreSQL of its own' : 'starting the Temporal dev server on its SQLite file');
    const [port, uiPort] = [await findFreePort(), await findFreePort()];
    this.temporalPorts = { port, uiPort };
    await this.startTemporal();
    say('starting PostgreSQL');
    this.postgresPort = await findFreePort();
    const postgresUrl = await this.startPostgres();
    await migrate(postgresUrl, () => {});
    this.pool = createPool(postgresUrl, { connectTimeoutMs: 5_000, statementTimeoutMs: 10_000 });

    // Two apps at the simulator, each with its own key pair: app A in key mode (the engine's
    // configured app), app B in certificate mode (registered in the database, per merchant).
    const appA = { appId: `2021${randomDigits(12)}`, keys: generateRsaKeyPair(), alipay: generateRsaKeyPair() };
    const appB = { appId: `2021${randomDigits(12)}`, keys: generateRsaKeyPair() };
    this.simulator = await startSimulator({
      apps: [
        { appId: appA.appId, publicKey: appA.keys.publicKey },
        { appId: appB.appId, publicKey: appB.keys.publicKey, alipayMode: 'cert' },
      ],
      alipayPrivateKey: appA.alipay.privateKey,
      notifyRetryDelaysMs: [500, 1_000, 2_000, 4_000, 8_000],
    });
    // Alipay publishes a day's bill the next morning, so the run happens, for Alipay, on yesterday
    // (Beijing): its clock runs behind ours by the difference, and the run's trades are in a bill
    // the reconciliation can read as soon as the run ends. Durapay's own deadlines stay ours.
    this.billDay = beijingDay(Date.now() - 86_400_000);
    const skew = await jsonRequest(`${this.simulator.url}/sim/faults`, 'POST', { clockSkewMs: Date.now() - (beijingDayStart(this.billDay)! + 12 * 3_600_000) });
    if (skew.status < 200 || skew.status > 299) throw new Error(`the simulator refused the clock skew: HTTP ${skew.status}`);
    this.balancer = await this.startBalancer();
    this.receiver = await this.startWebhookReceiver();
    const masterKey = randomBytes(32).toString('base64');
    this.env = {
      ...(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined)) as Record<string, string>),
      TEMPORAL_ADDRESS: this.temporalAddress,
      TEMPORAL_NAMESPACE: this.temporalNamespace,
      TEMPORAL_TASK_QUEUE: 'payments',
      // Both workers run one build: its version takes every order.
      TEMPORAL_WORKER_SET_CURRENT: 'on',
      DATABASE_URL: postgresUrl,
      ALIPAY_GATEWAY_URL: this.simulator.gatewayUrl,
      ALIPAY_APP_ID: appA.appId,
      ALIPAY_PRIVATE_KEY: appA.keys.privateKey,
      ALIPAY_PUBLIC_KEY: appA.alipay.publicKey,
      ALIPAY_NOTIFY_URL: `${this.balancerUrl}/alipay/notify`,
      DURAPAY_MASTER_KEY: masterKey,
      OPS_TOKEN: this.opsToken,
      PAYMENT_TIMEOUT: this.options.orderTimeout,
      PAYMENT_POLL_LADDER: this.options.pollLadder,
      RATE_LIMIT_MERCHANT_PER_MINUTE: '1000000',
      RATE_LIMIT_IP_PER_MINUTE: '1000000',
      AUTH_FAILURES_PER_MINUTE: '1000000',
      LOG_LEVEL: 'warn',
      WORKER_METRICS_PORT: 'off', // two workers on one machine
      // A receiver down for a few seconds is retried within the run.
      WEBHOOK_RETRY_SCHEDULE: '1s,2s,3s,5s,8s,13s,21s',
      WEBHOOK_TIMEOUT: '5s',
      // The run's webhook receiver listens on this machine.
      WEBHOOK_PRIVATE_TARGETS: 'allow',
      // A late payment's refund Alipay refuses is sent again after 1 s, 2 s, 4 s, …, for 20 s,
      // then the order goes to REVIEW.
      LATE_REFUND_RETRY_FIRST: '1s',
      LATE_REFUND_RETRY_WINDOW: '20s',
    };
    const merchantSecrets = merchantSecretsVault(deriveApiKeys(parseMasterKey(masterKey)!).merchantSecrets);
    const [merchantA, merchantB] = [await createMerchant(this.pool, merchantSecrets, 'Chaos merchant A'), await createMerchant(this.pool, merchantSecrets, 'Chaos merchant B')];
    await saveAlipayApp(this.pool, new MasterKeyProvider(parseMasterKey(masterKey)!), {
      appId: appB.appId,
      privateKey: appB.keys.privateKey,
      credentials: {
        mode: 'cert',
        appCert: this.simulator.certificates!.appCerts[appB.appId]!,
        alipayPublicCert: this.simulator.certificates!.alipayPublicCert,
        alipayRootCert: this.simulator.certificates!.alipayRootCert,
      },
      notifyUrl: `${this.balancerUrl}/alipay/notify`,
      gatewayUrl: this.simulator.gatewayUrl,
    });
    await assignAlipayApp(this.pool, merchantB.id, appB.appId);
    this.merchants.push({ ...merchantA, appId: appA.appId, alipayMode: 'key' }, { ...merchantB, appId: appB.appId, alipayMode: 'cert' });
    this.apps.push({ appId: appA.appId, alipayMode: 'key' }, { appId: appB.appId, alipayMode: 'cert' });

    say('bundling the workflows once for both workers');
    const bundlePath = join(this.dataDir, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await bundleWorkflowsApart()).code);
    this.env.WORKFLOW_BUNDLE = bundlePath;
    const output = (role: 'worker' | 'api') => (line: string) => {
      if (!/"level":(40|50|60)/.test(line)) return;
      let entry: { level?: number; msg?: string } = {};
      try {
        entry = JSON.parse(line);
      } catch {
        // not one of pino's lines
      }
      const key = `${role} ${entry.level === 40 ? 'warn' : entry.level === 50 ? 'error' : 'fatal'}: ${entry.msg ?? line.slice(0, 120)}`;
      this.engineWarnings.set(key, (this.engineWarnings.get(key) ?? 0) + 1);
    };
    for (let i = 0; i < 2; i++) {
      this.workers.push(new EnginePart('worker', () => this.env, output('worker')));
      const apiPort = await findFreePort();
      this.apiPorts.push(apiPort);
      // One API keeps late payments' money for an operator to decide, the other gives it back, so
      // that late payments meet both policies (a notify reaches either API).
      const latePaymentPolicy = i === 0 ? 'refund' : 'review';
      this.apis.push(new EnginePart('api', () => ({ ...this.env, PORT: String(apiPort), HOST: '127.0.0.1', LATE_PAYMENT_POLICY: latePaymentPolicy }), output('api')));
    }
    say('starting two workers and two APIs');
    for (const part of [...this.workers, ...this.apis]) await part.start();
  }

  /** The merchant's new orders go to another Alipay app from now on (the CLI's `app set`); its
   *  earlier orders stay with the app they were paid under. Tried until PostgreSQL answers. */
  async moveMerchant(merchant: ChaosMerchant, app: { appId: string; alipayMode: 'key' | 'cert' }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await assignAlipayApp(this.pool, merchant.id, app.appId);
        break;
      } catch (err) {
        if (attempt >= 60) throw err;
        await sleep(500);
      }
    }
    merchant.appId = app.appId;
    merchant.alipayMode = app.alipayMode;
  }

  private async startTemporal(): Promise<void> {
    if (this.options.temporal === 'cluster') {
      this.temporalPostgres ??= await startEmbeddedPostgres({ dataDir: join(this.dataDir, 'temporal-postgres'), persistent: true });
      this.temporal = await startTemporalCluster({
        databaseUrl: this.temporalPostgres.url,
        dir: join(this.dataDir, 'temporal-cluster'),
        port: this.temporalPorts.port,
      });
      this.temporalNamespace = this.temporal.namespace;
    } else {
      this.temporal = await startTemporalDevServer({ dbFile: join(this.dataDir, 'temporal.sqlite'), ...this.temporalPorts });
    }
    this.temporalAddress = this.temporal.address;
  }

  /** A cluster kept on disk, on a fixed port, so that it starts again as it was, at the same URL. */
  private async startPostgres(): Promise<string> {
    this.postgres = await startEmbeddedPostgres({ dataDir: join(this.dataDir, 'postgres'), persistent: true, port: this.postgresPort });
    return this.postgres.url;
  }

  /** Shut down (fast: sessions cut, open transactions rolled back), then started again. */
  async restartPostgres(downMs: number): Promise<void> {
    await this.postgres?.stop();
    this.postgres = undefined;
    await sleep(downMs);
    await this.startPostgres();
  }

  /** Stopped, then started again on the same file (or database) and port, as a restarted server would be. */
  async restartTemporal(downMs: number): Promise<void> {
    await this.temporal?.stop();
    this.temporal = undefined;
    await sleep(downMs);
    await this.startTemporal();
  }

  /** Every PostgreSQL process stopped (SIGSTOP): connections hang, as on a frozen host. */
  async freezePostgres(): Promise<void> {
    this.thawPostgres();
    this.thawFrozenPostgres = (await freezePostgres(this.postgres!.dataDir)).thaw;
  }

  thawPostgres(): void {
    this.thawFrozenPostgres?.();
    this.thawFrozenPostgres = undefined;
  }

  /** Forwards each request to an API that runs, the next one when a connection is refused. */
  private async startBalancer(): Promise<Server> {
    let next = 0;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const attempt = (tries: number) => {
          const port = this.apiPorts[next++ % this.apiPorts.length]!;
          const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          upstream.on('error', (err: NodeJS.ErrnoException) => {
            // Only a request that never reached an API goes to the other one (as a proxy's
            // next-upstream does for POST): one that did may have been acted on already.
            if (err.code === 'ECONNREFUSED' && tries > 1 && !res.headersSent) attempt(tries - 1);
            else if (!res.headersSent) res.writeHead(502).end('no API answered');
            else res.destroy();
          });
          upstream.end(body);
        };
        attempt(this.apiPorts.length * 2);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.balancerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return server;
  }

  /** Answers 503 while down (a failed attempt, retried later), 204 when up; keeps what it took. */
  private async startWebhookReceiver(): Promise<Server> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (!this.webhookReceiverUp) return void res.writeHead(503).end();
        const merchantId = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
        this.webhooks.push({
          merchantId,
          signature: String(req.headers['durapay-signature'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
          receivedAt: Date.now(),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
    return server;
  }

  private stopping: Promise<void> | undefined;
  stop(): Promise<void> {
    this.stopping ??= this.stopParts().finally(() => running.delete(this));
    return this.stopping;
  }

  private async stopParts(): Promise<void> {
    this.thawPostgres();
    await new Promise((resolve) => this.receiver?.close(resolve) ?? resolve(undefined));
    for (const part of [...this.apis, ...this.workers]) await part.stop().catch(() => {});
    await new Promise((resolve) => this.balancer?.close(resolve) ?? resolve(undefined));
    await this.simulator?.stop().catch(() => {});
    await this.pool?.end().catch(() => {});
    await this.postgres?.stop().catch(() => {});
    await this.temporal?.stop().catch(() => {});
    await this.temporalPostgres?.stop().catch(() => {});
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function randomDigits(n: number): string {
  return Array.from(randomBytes(n), (b) => String(b % 10)).join('');
}

/** A request with an optional JSON body: its status, and its JSON answer if it has one. */
export async function jsonRequest(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}
