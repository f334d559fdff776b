// The container health check (the Dockerfile's HEALTHCHECK and docker-compose.yml's healthcheck):
// `node dist/scripts/healthcheck.js api|worker`, run inside the container of that role, with its
// environment. Exit 0: healthy; 1: not, with the reason on stderr (never a secret).
//   api:    this container's API answers GET /readyz with 200 (PostgreSQL and Temporal answer it).
//   worker: Temporal saw this container's worker poll its task queue lately, so it takes work.
import { hostname } from 'node:os';
import { Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { loadApiConfig, loadConfig } from '../lib/platform/config.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';

const CHECK_TIMEOUT_MS = 5_000;
/** An idle worker's long poll lasts about a minute before it polls again: two missed polls is down. */
const POLLED_WITHIN_MS = 150_000;

async function checkApi(): Promise<void> {
  const { port } = loadApiConfig();
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`/readyz answered ${res.status}: ${await res.text()}`);
}

async function checkWorker(): Promise<void> {
  const { temporal } = loadConfig();
  const connection = await Connection.connect({ ...temporalConnectionOptions(temporal), connectTimeout: CHECK_TIMEOUT_MS });
  try {
    const { pollers } = await connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () =>
      connection.workflowService.describeTaskQueue({
        namespace: temporal.namespace,
        taskQueue: { name: temporal.taskQueue },
        taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    // The SDK names a worker <pid>@<host name>; the container's host name is its own.
    const ours = (pollers ?? []).filter((poller) => poller.identity?.endsWith(`@${hostname()}`));
    const lastPoll = Math.max(0, ...ours.map((poller) => tsToMs(poller.lastAccessTime)));
    if (Date.now() - lastPoll > POLLED_WITHIN_MS) {
      throw new Error(
        ours.length === 0
          ? `no worker of this container (${hostname()}) polls task queue ${temporal.taskQueue}`
          : `this container's worker last polled task queue ${temporal.taskQueue} at ${new Date(lastPoll).toISOString()}`,
      );
    }
  } finally {
    await connection.close();
  }
}

const checks: Record<string, () => Promise<void>> = { api: checkApi, worker: checkWorker };
const role = process.argv[2] ?? '';
const check = checks[role];
if (!check) {
  console.error(`usage: node dist/scripts/healthcheck.js ${Object.keys(checks).join('|')}`);
  process.exit(2);
}
try {
  await check();
} catch (err) {
  console.error(`${role} unhealthy: ${(err as Error).message}`);
  process.exit(1);
}
