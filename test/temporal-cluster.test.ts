// TEMPORAL_MODE=cluster: the engine on a real Temporal server whose persistence and advanced
// visibility are in PostgreSQL, set up by the server's own schema tool, as `npm start` runs it.
// A paid order and a refund go through it; the order's workflow is in the `durapay` namespace,
// found by its search attributes and in the Temporal UI beside the cluster, and its history is in
// PostgreSQL. A rollout of a changed workflow runs on it while orders are in flight.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { startApiServer } from '../api/server.js';
import { paymentWorkflowId } from '../lib/payments/payment.js';
import { loadApiConfig, loadConfig } from '../lib/platform/config.js';
import { createPool } from '../lib/platform/database.js';
import { createLogger } from '../lib/platform/logger.js';
import { CLUSTER_DATABASES, CLUSTER_NAMESPACE, CLUSTER_RETENTION_DAYS, startTemporalCluster } from '../scripts/embedded/temporal-cluster.js';
import { startEmbeddedPostgres } from '../scripts/embedded/postgres.js';
import { startLocalStack, type LocalStack } from '../scripts/local-stack.js';
import { resolveTemporalCli } from '../scripts/temporal-cli.js';
import { createPaymentWorker } from '../worker/worker.js';
import { bundleChangedWorkflows } from './support/changed-workflows.js';
import { merchantClient } from './support/stack.js';
import { waitFor } from './support/wait.js';

const execFileAsync = promisify(execFile);

let stack: LocalStack;
let dataDir: string;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'durapay-cluster-'));
  stack = await startLocalStack({
    dataDir,
    persistent: false,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      XDG_CACHE_HOME: process.env.XDG_CACHE_HOME,
      TEMPORAL_MODE: 'cluster',
      PAYMENT_POLL_LADDER: '1s',
      LOG_LEVEL: 'warn',
      WORKER_METRICS_PORT: '127.0.0.1:0',
    },
    logger: createLogger('test', 'silent'),
    say: () => {},
    engineOutput: () => {},
  });
}, 900_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A query of one of the cluster's databases. */
async function inDatabase<T extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const url = new URL(stack.engineEnv.DATABASE_URL!);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('the engine on a Temporal cluster on PostgreSQL', () => {
  it('pays an order and refunds part of it; the workflow is in the durapay namespace, found by its search attributes, its history in PostgreSQL', async () => {
    const merchant = { id: stack.devMerchant.merchantId, secret: stack.devMerchant.secret, webhookSecret: stack.devMerchant.webhookSecret };
    const api = merchantClient(stack.apiUrl, merchant);
    const outTradeNo = `cluster-${Date.now().toString(36)}`;
    const created = await api.createPayment({ outTradeNo, amount: '8.80', subject: 'Cluster tea' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    const paid = await fetch(`${stack.simulatorUrl}/sim/trades/${toAlipayOutTradeNo(merchant.id, outTradeNo)}/pay`, { method: 'POST' });
    expect(paid.status).toBe(200);
    await waitFor(`${outTradeNo} PAID`, async () => ((await api.getPayment(outTradeNo)).body.status === 'PAID' ? true : undefined), { timeoutMs: 30_000 });

    const refund = await api.call('POST', `/v1/payments/${outTradeNo}/refunds`, { outRequestNo: 'cluster-refund-1', amount: '2.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    const order = await waitFor(
      `${outTradeNo} partly refunded`,
      async () => {
        const answer = await api.getPayment(outTradeNo);
        return answer.body.status === 'PARTIALLY_REFUNDED' ? answer.body : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(order).toMatchObject({ amount: '8.80', paidAmount: '8.80', refundedAmount: '2.00' });

    const address = stack.urls.find(([name]) => name === 'Temporal gRPC')![1];
    const connection = await Connection.connect({ address });
    try {
      const namespace = await connection.workflowService.describeNamespace({ namespace: CLUSTER_NAMESPACE });
      expect(Number(namespace.config?.workflowExecutionRetentionTtl?.seconds)).toBe(CLUSTER_RETENTION_DAYS * 86_400);
      const client = new Client({ connection, namespace: CLUSTER_NAMESPACE });
      // Advanced visibility on PostgreSQL: the payment search attributes answer a query.
      const found = await waitFor('the order by its search attributes', async () => {
        const ids: string[] = [];
        for await (const execution of client.workflow.list({ query: `OutTradeNo = "${outTradeNo}" AND MerchantId = "${merchant.id}"` })) ids.push(execution.workflowId);
        return ids.length > 0 ? ids : undefined;
      });
      expect(found).toContain(`payment:${stack.engineEnv.ALIPAY_APP_ID}:${toAlipayOutTradeNo(merchant.id, outTradeNo)}`);
    } finally {
      await connection.close();
    }

    // An engineer finds the order in the Temporal UI, which opens on the durapay namespace.
    const ui = stack.urls.find(([name]) => name === 'Temporal UI')?.[1];
    expect(ui, 'the banner names the Temporal UI').toBeDefined();
    const settings = await (await fetch(`${ui}/api/v1/settings`)).json();
    expect(settings.DefaultNamespace).toBe(CLUSTER_NAMESPACE);
    const page = await fetch(ui!);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const listed = await waitFor('the order in the UI', async () => {
      const answer = await fetch(`${ui}/api/v1/namespaces/${CLUSTER_NAMESPACE}/workflows?query=${encodeURIComponent(`OutTradeNo = "${outTradeNo}"`)}`);
      const body = (await answer.json()) as { executions?: { execution?: { workflowId?: string } }[] };
      return body.executions?.length ? body.executions.map((e) => e.execution?.workflowId) : undefined;
    });
    expect(listed).toContain(`payment:${stack.engineEnv.ALIPAY_APP_ID}:${toAlipayOutTradeNo(merchant.id, outTradeNo)}`);

    const [histories] = await inDatabase<{ count: string }>(CLUSTER_DATABASES.persistence, 'SELECT count(*) FROM history_node');
    expect(Number(histories!.count)).toBeGreaterThan(0);
    const visible = await inDatabase(CLUSTER_DATABASES.visibility, 'SELECT workflow_id FROM executions_visibility WHERE workflow_id LIKE $1', [`payment:%${toAlipayOutTradeNo(merchant.id, outTradeNo)}`]);
    expect(visible).toHaveLength(1);
  });
});

describe('a rollout of a changed workflow while orders are in flight', () => {
  it('finishes the orders of build A on A, starts new ones on B once B is current, and lets A stop once drained', async () => {
    const address = stack.urls.find(([name]) => name === 'Temporal gRPC')![1];
    const merchant = { id: stack.devMerchant.merchantId, secret: stack.devMerchant.secret, webhookSecret: stack.devMerchant.webhookSecret };
    // A task queue and a worker deployment of this test's own, beside the stack's: its API starts
    // orders there, and builds A and B serve it.
    const env: Record<string, string | undefined> = { ...stack.engineEnv, TEMPORAL_TASK_QUEUE: 'payments-rollout', TEMPORAL_WORKER_DEPLOYMENT: 'durapay-rollout', PORT: '0', HOST: '127.0.0.1' };
    const logger = createLogger('test', 'silent');
    const pool = createPool(env.DATABASE_URL!, { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 }, 4);
    const api = await startApiServer(loadApiConfig(env), logger);
    const merchantApi = merchantClient(api.url, merchant);
    const connection = await Connection.connect({ address });
    const client = new Client({ connection, namespace: CLUSTER_NAMESPACE });
    const startBuild = async (buildId: string, workflowBundle: { code: string }, setCurrent: 'on' | 'off') => {
      const config = loadConfig({ ...env, TEMPORAL_WORKER_BUILD_ID: buildId, TEMPORAL_WORKER_SET_CURRENT: setCurrent });
      const workerConnection = await NativeConnection.connect({ address });
      const worker = await createPaymentWorker({ config, connection: workerConnection, pool, workflowBundle, logger });
      const running = worker.run();
      const standing = await worker.takeUpVersion();
      return {
        standing,
        stop: async () => {
          worker.shutdown();
          await running;
          await workerConnection.close();
        },
      };
    };
    const order = (label: string) => `rollout-${label}-${Date.now().toString(36)}`;
    const create = async (outTradeNo: string) => {
      const created = await merchantApi.createPayment({ outTradeNo, amount: '5.00', subject: 'Rollout tea' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
    };
    const workflowIdOf = (outTradeNo: string) => paymentWorkflowId(env.ALIPAY_APP_ID!, toAlipayOutTradeNo(merchant.id, outTradeNo));
    const buildOf = async (outTradeNo: string) => {
      const { raw } = await client.workflow.getHandle(workflowIdOf(outTradeNo)).describe();
      return raw.workflowExecutionInfo?.versioningInfo?.deploymentVersion?.buildId;
    };
    const payAndWait = async (outTradeNo: string) => {
      const paid = await fetch(`${stack.simulatorUrl}/sim/trades/${toAlipayOutTradeNo(merchant.id, outTradeNo)}/pay`, { method: 'POST' });
      expect(paid.status).toBe(200);
      await waitFor(`${outTradeNo} PAID`, async () => ((await merchantApi.getPayment(outTradeNo)).body.status === 'PAID' ? true : undefined), { timeoutMs: 30_000 });
    };
    const failedTasks = async (outTradeNo: string) => {
      const history = await client.workflow.getHandle(workflowIdOf(outTradeNo)).fetchHistory();
      return (history.events ?? []).filter((event) => event.workflowTaskFailedEventAttributes).length;
    };

    const a = await startBuild('rollout-a', { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, 'on');
    let b: Awaited<ReturnType<typeof startBuild>> | undefined;
    try {
      expect(a.standing).toBe('made current');
      const inFlight = [order('a1'), order('a2')];
      for (const outTradeNo of inFlight) await create(outTradeNo);

      // Build B changes the payment workflow so that it cannot replay A's runs.
      b = await startBuild('rollout-b', await bundleChangedWorkflows(), 'off');
      expect(b.standing).toBe('not current');
      const beforeRollout = order('a3');
      await create(beforeRollout);
      inFlight.push(beforeRollout);
      for (const outTradeNo of inFlight) expect(await buildOf(outTradeNo)).toBe('rollout-a');

      // The rollout, as an operator makes it.
      const cli = await resolveTemporalCli();
      await execFileAsync(cli!.path, [
        'worker', 'deployment', 'set-current-version',
        '--address', address, '--namespace', CLUSTER_NAMESPACE,
        '--deployment-name', 'durapay-rollout', '--build-id', 'rollout-b', '--yes',
      ]);
      const afterRollout = order('b1');
      await create(afterRollout);
      expect(await buildOf(afterRollout)).toBe('rollout-b');

      for (const outTradeNo of [...inFlight, afterRollout]) await payAndWait(outTradeNo);
      for (const outTradeNo of inFlight) {
        expect(await buildOf(outTradeNo)).toBe('rollout-a');
        expect(await failedTasks(outTradeNo), `${outTradeNo} met a workflow task failure`).toBe(0);
      }
      expect(await failedTasks(afterRollout)).toBe(0);

      // What an operator checks before stopping A: no run pinned to it is still open.
      const openOnA = `TemporalWorkerDeploymentVersion = 'durapay-rollout:rollout-a' AND ExecutionStatus = 'Running'`;
      await waitFor('build A to drain', async () => ((await client.workflow.count(openOnA)).count === 0 ? true : undefined), { timeoutMs: 30_000 });
      await a.stop();
      const afterDrain = order('b2');
      await create(afterDrain);
      await payAndWait(afterDrain);
      expect(await buildOf(afterDrain)).toBe('rollout-b');
    } finally {
      await Promise.allSettled([a.stop(), b?.stop()]);
      await api.close();
      await connection.close();
      await pool.end();
    }
  }, 240_000);
});

describe('a restarted cluster', () => {
  it('serves at once on the same database: a schedule made before the restart is described right after it', async () => {
    const postgres = await startEmbeddedPostgres({ persistent: false });
    const dir = mkdtempSync(join(tmpdir(), 'durapay-cluster-restart-'));
    try {
      const scheduleId = 'restart-probe';
      const first = await startTemporalCluster({ databaseUrl: postgres.url, dir });
      try {
        const connection = await Connection.connect({ address: first.address });
        try {
          await new Client({ connection, namespace: first.namespace }).schedule.create({
            scheduleId,
            spec: { intervals: [{ every: '1 day' }] },
            action: { type: 'startWorkflow', workflowType: 'noSuchWorkflow', taskQueue: 'nowhere' },
            state: { paused: true },
          });
        } finally {
          await connection.close();
        }
      } finally {
        await first.stop();
      }
      // The worker's first call at start: before the fix, `Not enough hosts to serve the request`.
      const second = await startTemporalCluster({ databaseUrl: postgres.url, dir });
      try {
        const connection = await Connection.connect({ address: second.address });
        try {
          const described = await new Client({ connection, namespace: second.namespace }).schedule.getHandle(scheduleId).describe();
          expect(described.state.paused).toBe(true);
        } finally {
          await connection.close();
        }
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await postgres.stop();
    }
  }, 180_000);
});

