// The worker's GET /metrics, on WORKER_METRICS_PORT: what the activities count
// (activities/metrics.ts) and Node's process metrics, then the Temporal SDK's own (workflow and
// activity tasks, polls, the sticky cache, and the counter the late-notify workflow emits), read
// from core's exporter on loopback (worker/runtime.ts). The names cannot collide: core's begin
// with temporal_ (the workflows' own with durapay_, and prom-client defines none of those), ours
// with durapay_, Node's with process_ and nodejs_.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type pg from 'pg';
import { activityMetrics } from '../activities/metrics.js';
import { databaseMetrics, type DatabaseMetrics } from './database-metrics.js';
import type { ListenAddress } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';

const processMetrics = new Registry();
collectDefaultMetrics({ register: processMetrics });

/** Prometheus' text format, as prom-client and core both write it. */
const CONTENT_TYPE = processMetrics.contentType;
/** A scrape answers within Prometheus' default timeout (10 s) even when core does not. */
const CORE_SCRAPE_TIMEOUT_MS = 3_000;

export interface WorkerMetricsServer {
  url: string;
  /** From now on, each scrape also serves the gauges read from PostgreSQL (worker/database-metrics.ts). */
  readDatabase(pool: pg.Pool, options: { platformAppId: string }): void;
  close(): Promise<void>;
}

const withNewline = (text: string) => (text === '' || text.endsWith('\n') ? text : `${text}\n`);

/** Core's text; when it cannot be read, a comment saying so, and the worker's own metrics still. */
async function coreMetricsText(url: string, logger: Logger): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(CORE_SCRAPE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return withNewline(await res.text());
  } catch (err) {
    logger.warn({ err }, "the Temporal SDK's metrics could not be read; /metrics serves the worker's own");
    return `# the Temporal SDK's metrics could not be read: ${(err as Error).message.replace(/\s+/g, ' ')}\n`;
  }
}

export async function startWorkerMetricsServer({ address, coreMetricsUrl, logger }: { address: ListenAddress; coreMetricsUrl?: string; logger: Logger }): Promise<WorkerMetricsServer> {
  let database: DatabaseMetrics | undefined;
  const scrape = async () => {
    const parts = await Promise.all([
      activityMetrics.metrics(),
      database?.metrics() ?? '',
      processMetrics.metrics(),
      coreMetricsUrl ? coreMetricsText(coreMetricsUrl, logger) : '',
    ]);
    return parts.map(withNewline).join('');
  };
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://worker').pathname !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    scrape().then(
      (text) => res.writeHead(200, { 'Content-Type': CONTENT_TYPE }).end(text),
      (err) => {
        logger.error({ err }, 'metrics scrape failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics scrape failed\n');
      },
    );
  });
  server.listen(address.port, address.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ConfigError(`WORKER_METRICS_PORT: ${address.host}:${address.port} is in use; choose another port, or off`) : err),
    );
  });
  const { port } = server.address() as AddressInfo;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}/metrics`,
    readDatabase(pool, { platformAppId }) {
      database = databaseMetrics(pool, { platformAppId, logger });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // a scraper's keep-alive socket would hold close() open
      await closed;
    },
  };
}
