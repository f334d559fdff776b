// The worker: payment, refund, webhook and reconciliation workflows plus the activities that reach
// Alipay and PostgreSQL; it keeps the daily reconciliation's Schedule in place.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { NativeConnection, Worker, type ActivityInterceptorsFactory, type WorkflowBundle } from '@temporalio/worker';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.js';
import { AlipayAppDirectory, listAlipayAppIds } from '../lib/alipay/apps.js';
import { MasterKeyProvider, merchantSecretsVault } from '../lib/platform/key-vault.js';
import { deriveApiKeys } from '../lib/platform/master-key.js';
import { PaymentCodeOpener } from '../lib/alipay/payment-code.js';
import { createAlipayClient } from '../lib/alipay/client.js';
import type { Config } from '../lib/platform/config.js';
import { moduleFile, nodeFlagsToRun } from '../lib/platform/module-files.js';
import { withRequestId } from '../lib/platform/request-context.js';
import { temporalClientInterceptors } from '../lib/platform/tracing.js';
import { REQUEST_ID_TEMPORAL_HEADER } from '../lib/platform/request-ids.js';
import { webhookTaskQueue } from '../lib/merchants/webhooks.js';
import { PollSweeper } from './poll-sweeper.js';
import { activityTracingInterceptors, workflowTracingSinks } from './tracing.js';
import { ensureReconciliationSchedule } from './schedule.js';
import { deploymentOptions, takeUpVersion, workerVersionOf, type VersionStanding, type WorkerVersion } from './versions.js';

const execFileAsync = promisify(execFile);

export const WORKFLOWS_PATH = moduleFile('../workflows/index', import.meta.url);
/** Bundled with the workflows wherever they are bundled. */
export const WORKFLOW_INTERCEPTOR_MODULES = [moduleFile('../workflows/request-ids', import.meta.url), moduleFile('../workflows/tracing', import.meta.url)];

/** An activity of a workflow an API request started runs in that request's context: its log lines
 *  (the SDK's and pino's own) carry the request id (workflows/request-ids.ts sends it along). */
const requestIdActivityInterceptors: ActivityInterceptorsFactory = () => {
  let requestId: string | undefined;
  return {
    inbound: {
      execute(input, next) {
        const header = input.headers[REQUEST_ID_TEMPORAL_HEADER];
        requestId = header ? defaultPayloadConverter.fromPayload<string>(header) : undefined;
        return withRequestId(requestId, () => next(input));
      },
    },
    outbound: {
      getLogAttributes(attributes, next) {
        return next(requestId === undefined ? attributes : { ...attributes, requestId });
      },
    },
  };
};

export interface PaymentWorkerOptions {
  config: Config;
  connection: NativeConnection;
  pool: pg.Pool;
  /** A prebuilt bundle (tests share one); otherwise the workflows are bundled at start. Without a
   *  configured build id, the worker's version is derived from it. */
  workflowBundle?: WorkflowBundle;
  logger: Logger;
}

/** The Temporal worker of the payment task queue, the one of the webhook POSTs on the same
 *  connection, and the poll sweeper beside them, run and stopped together; both workers serve one
 *  version of the worker deployment. */
export class PaymentWorker {
  constructor(
    readonly worker: Worker,
    readonly webhookWorker: Worker,
    private readonly sweeper: PollSweeper,
    readonly version: WorkerVersion,
    private readonly takeUp: () => Promise<VersionStanding>,
  ) {}

  /**
   * Once running: waits until Temporal lists this version with both task queues, and makes it
   * current if TEMPORAL_WORKER_SET_CURRENT says so or the deployment has no current version yet.
   * Until a version is current, no new workflow starts on it.
   */
  takeUpVersion(): Promise<VersionStanding> {
    return this.takeUp();
  }

  /** Until shutdown; whatever stops one of the workers stops the other, and the sweeper. */
  async run(): Promise<void> {
    this.sweeper.start();
    const runs = [this.worker, this.webhookWorker].map((worker) =>
      worker.run().finally(() => {
        if (this.getState() === 'RUNNING') this.worker.shutdown();
        if (this.webhookWorker.getState() === 'RUNNING') this.webhookWorker.shutdown();
      }),
    );
    try {
      const [payments, webhooks] = await Promise.allSettled(runs);
      for (const run of [payments!, webhooks!]) if (run.status === 'rejected') throw run.reason;
    } finally {
      await this.sweeper.stop();
    }
  }

  shutdown(): void {
    void this.sweeper.stop();
    this.worker.shutdown();
    if (this.webhookWorker.getState() === 'RUNNING') this.webhookWorker.shutdown();
  }

  getState(): ReturnType<Worker['getState']> {
    return this.worker.getState();
  }
}

/** The workflow code bundled by a child process, so the bundler's memory never lives here. */
export async function bundleWorkflowsApart(): Promise<WorkflowBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'durapay-workflows-'));
  const codePath = join(dir, 'workflows.js');
  try {
    const script = moduleFile('./bundle-workflows', import.meta.url);
    const { stderr } = await execFileAsync(process.execPath, [...nodeFlagsToRun(script), script, codePath], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    if (stderr.trim()) process.stderr.write(stderr);
    return { code: await readFile(codePath, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function createPaymentWorker({ config, connection, pool, workflowBundle: givenBundle, logger }: PaymentWorkerOptions): Promise<PaymentWorker> {
  const workflowBundle = givenBundle ?? (await bundleWorkflowsApart());
  const version = workerVersionOf(config.workerVersion, workflowBundle);
  // The configured app, and those registered in PostgreSQL (their private keys opened with the master key).
  const alipay = new AlipayAppDirectory(
    pool,
    {
      app: { appId: config.alipay.appId, credentials: config.alipay.credentials, sellerId: config.alipay.sellerId, notifyUrl: config.alipay.notifyUrl },
      client: createAlipayClient({
        appId: config.alipay.appId,
        privateKey: config.alipay.privateKey,
        credentials: config.alipay.credentials,
        gatewayUrl: config.alipay.gatewayUrl,
      }),
    },
    { vault: new MasterKeyProvider(config.masterKey) },
  );
  // The activities that write webhook events start their delivery through the worker's own connection.
  const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: temporalClientInterceptors() });
  const webhooks = {
    client,
    taskQueue: config.temporal.taskQueue,
    settings: config.webhooks,
    historyLimit: config.timings.historyLimit,
  };
  const alipayOptions = {
    unplaceableRetryMs: config.unplaceableRetryMs,
    paymentCodes: new PaymentCodeOpener(config.masterKey),
  };
  const activities = createActivities({
    alipay,
    pool,
    alipayOptions,
    webhooks,
    temporal: { client, taskQueue: config.temporal.taskQueue },
    lateRefundRetry: config.lateRefundRetry,
    webhookPrivateTargets: config.webhookPrivateTargets,
    // Opens the merchants' webhook secrets to sign their webhooks.
    merchantSecrets: merchantSecretsVault(deriveApiKeys(config.masterKey).merchantSecrets),
  });
  // The webhook POSTs run on their own queue; precreate runs inside the order opening.
  const { deliverWebhook, precreateTrade: _openedInOrderOpening, ...paymentActivities } = activities;
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowBundle,
    workerDeploymentOptions: deploymentOptions(version),
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: config.workerActivityConcurrency,
    // A deploy's SIGTERM lets an Alipay call or a ledger write in flight finish, rather than
    // cancelling it for another worker to make again.
    shutdownGraceTime: config.workerShutdownGraceMs,
    activities: paymentActivities,
    interceptors: { activity: [requestIdActivityInterceptors, ...activityTracingInterceptors()] },
    sinks: workflowTracingSinks(),
  });
  // The webhook POSTs: activities only, in slots of their own (WEBHOOK_CONCURRENCY).
  const webhookWorker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: webhookTaskQueue(config.temporal.taskQueue),
    // The same version: a pinned delivery's POSTs go to workers of its own build.
    workerDeploymentOptions: deploymentOptions(version),
    maxConcurrentActivityTaskExecutions: config.webhookConcurrency,
    shutdownGraceTime: config.workerShutdownGraceMs,
    activities: { deliverWebhook },
    interceptors: { activity: [requestIdActivityInterceptors, ...activityTracingInterceptors()] },
  });
  // The daily reconciliation, on a Schedule visible in the Temporal UI: created once, kept current.
  // One per app: the configured one, and each registered in PostgreSQL (an app registered later has
  // its Schedule from the worker's next start; an operator can reconcile it meanwhile via /ops).
  for (const appId of new Set([config.alipay.appId, ...(await listAlipayAppIds(pool))])) {
    await ensureReconciliationSchedule(client, config, appId);
  }
  // The sweeper asks Alipay through the same query the workflows' activities make.
  const sweeper = new PollSweeper({ pool, client, queryTrade: activities.queryTrade, logger: logger.child({ component: 'poll-sweeper' }) });
  const takeUp = () =>
    takeUpVersion({
      client,
      namespace: config.temporal.namespace,
      version,
      taskQueues: [config.temporal.taskQueue, webhookTaskQueue(config.temporal.taskQueue)],
      setCurrent: config.workerVersion.setCurrent,
    });
  return new PaymentWorker(worker, webhookWorker, sweeper, version, takeUp);
}
