// TEMPORAL_MODE=cluster: the engine on a real Temporal server whose persistence and advanced
// visibility are in PostgreSQL, set up by the server's own schema tool, as `npm start` runs it.
// A paid order and a refund go through it; the order's workflow is in the `durapay` namespace,
// found by its search attributes, and its history is in PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { createLogger } from '../lib/platform/logger.js';
import { CLUSTER_DATABASES, CLUSTER_NAMESPACE, CLUSTER_RETENTION_DAYS, startTemporalCluster } from '../scripts/embedded/temporal-cluster.js';
import { startEmbeddedPostgres } from '../scripts/embedded/postgres.js';
import { startLocalStack, type LocalStack } from '../scripts/local-stack.js';
import { merchantClient } from './support/stack.js';
import { waitFor } from './support/wait.js';

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

    const [histories] = await inDatabase<{ count: string }>(CLUSTER_DATABASES.persistence, 'SELECT count(*) FROM history_node');
    expect(Number(histories!.count)).toBeGreaterThan(0);
    const visible = await inDatabase(CLUSTER_DATABASES.visibility, 'SELECT workflow_id FROM executions_visibility WHERE workflow_id LIKE $1', [`payment:%${toAlipayOutTradeNo(merchant.id, outTradeNo)}`]);
    expect(visible).toHaveLength(1);
  });
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

