// The Temporal SDK's runtime in the worker process, installed once before anything connects. Its
// logs (the SDK's, core's, and the workflows' and activities' own) go through pino, so its redaction
// applies to them too and every line about an order carries the order's fields; core's Prometheus
// exporter listens on a loopback port of its own, behind the worker's /metrics (worker/metrics.ts).
import { Runtime, type TelemetryOptions } from '@temporalio/worker';
import type { Logger as SdkLogger, LogLevel, LogMetadata } from '@temporalio/common';
import type { Level, Logger } from 'pino';
import { findFreePort } from '../lib/platform/free-port.js';
import { orderLogFieldsOfWorkflow } from '../lib/payments/order-log.js';

const PINO_LEVELS: Record<LogLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** The SDK's own lifecycle lines (INFO from the worker and core) show at LOG_LEVEL=debug, so that
 *  info stays quiet; everything else keeps its level: each activity and workflow task (DEBUG) at
 *  debug, warnings and errors always, the workflows' and activities' own lines as they are written. */
function pinoLevel(level: LogLevel, sdkComponent: unknown): Level {
  if (level === 'INFO' && sdkComponent !== 'workflow' && sdkComponent !== 'activity') return 'debug';
  return PINO_LEVELS[level];
}

/** The SDK's logger interface onto pino; a line from an order's workflow or its activities gains
 *  the order's fields, which its workflow id gives (lib/payments/order-log.ts). */
class PinoSdkLogger implements SdkLogger {
  constructor(private readonly logger: Logger) {}

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    const pinoLevelName = pinoLevel(level, meta.sdkComponent);
    if (!this.logger.isLevelEnabled(pinoLevelName)) return;
    // pino serializes an Error under `err` only.
    const { error, ...fields } = meta;
    const order = typeof fields.workflowId === 'string' ? orderLogFieldsOfWorkflow(fields.workflowId) : undefined;
    this.logger[pinoLevelName]({ ...order, ...fields, ...(error === undefined ? {} : { err: error }) }, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

const PORT_TRIES = 5;

/**
 * Installs the runtime; with coreMetrics, core's exporter listens on a free loopback port and its
 * URL is returned. Core cannot tell which port it bound when given port 0, so a free one is
 * looked up first, and looked up again if another process takes it before core binds it.
 */
export async function installWorkerRuntime(logger: Logger, { coreMetrics }: { coreMetrics: boolean }): Promise<string | undefined> {
  const telemetryOptions: TelemetryOptions = { logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } } };
  const install = (more: TelemetryOptions = {}) => Runtime.install({ logger: new PinoSdkLogger(logger), telemetryOptions: { ...telemetryOptions, ...more } });
  if (!coreMetrics) {
    install();
    return undefined;
  }
  for (let attempt = 1; ; attempt += 1) {
    const port = await findFreePort();
    try {
      install({ metrics: { prometheus: { bindAddress: `127.0.0.1:${port}` } } });
      return `http://127.0.0.1:${port}/metrics`;
    } catch (err) {
      if (attempt >= PORT_TRIES || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}
