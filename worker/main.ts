// `npm run worker`: the worker against TEMPORAL_ADDRESS, DATABASE_URL and ALIPAY_*, with its
// /metrics on WORKER_METRICS_PORT.
import { tracing } from './start-tracing.js';
import { readFileSync } from 'node:fs';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { createPool, requireCurrentSchema } from '../lib/platform/database.js';
import { createLogger } from '../lib/platform/logger.js';
import { describeTemporalConnection, temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { runUntilSignalled } from '../lib/platform/process.js';
import { startWorkerMetricsServer } from './metrics.js';
import { installWorkerRuntime } from './runtime.js';
import { bundleWorkflowsApart, createPaymentWorker } from './worker.js';
import { setCurrentCommand } from './versions.js';

const logger = createLogger('worker');
await runUntilSignalled(logger, async () => {
  if (tracing.configError) throw tracing.configError;
  const config = loadConfig();
  logger.level = config.logLevel;
  const coreMetricsUrl = await installWorkerRuntime(logger, { coreMetrics: config.workerMetrics !== undefined });
  const metrics = config.workerMetrics && (await startWorkerMetricsServer({ address: config.workerMetrics, coreMetricsUrl, logger }));
  if (metrics) logger.info({ url: metrics.url }, 'worker metrics listening');
  await requireCurrentSchema(config.databaseUrl);
  const pool = createPool(config.databaseUrl, config.databaseTimeouts);
  metrics?.readDatabase(pool, { platformAppId: config.alipay.appId });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
  const workflowBundle = config.workflowBundlePath ? readWorkflowBundle(config.workflowBundlePath) : await bundleWorkflowsApart();
  const worker = await createPaymentWorker({ config, connection, pool, workflowBundle, logger });
  const running = worker.run();
  const standing = await worker.takeUpVersion();
  const where = { taskQueue: config.temporal.taskQueue, temporal: describeTemporalConnection(config.temporal), ...worker.version };
  if (standing === 'not current') {
    // Its runs are the ones pinned to it; new orders start on the current version until a rollout.
    logger.warn({ ...where, rollout: setCurrentCommand(worker.version, config.temporal.namespace) }, 'worker running; its version is not current, so no new workflow starts on it');
  } else {
    logger.info({ ...where, standing }, 'worker running');
  }
  return async () => {
    // The SDK's runtime may already have begun shutdown on the same signal.
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection.close();
    await pool.end();
    await metrics?.close();
    await tracing.shutdown();
  };
});

/** The bundle `npm run build:workflows` wrote, when WORKFLOW_BUNDLE names one. */
function readWorkflowBundle(path: string): { code: string } {
  try {
    return { code: readFileSync(path, 'utf8') };
  } catch (err) {
    throw new ConfigError(`WORKFLOW_BUNDLE: cannot read ${path}: ${(err as Error).message} (build it with npm run build:workflows)`);
  }
}
