// The Express app: merchant API under /v1 (payments, refunds, webhook events and endpoints), operator endpoints under /ops (reconciliation),
// the web console under /console (its API under /console/api),
// Alipay's notify receiver, buyers' cashier pages under /pay, health and readiness, Prometheus metrics, and the OpenAPI
// document with its rendered docs.
import express from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Client } from '@temporalio/client';
import { reconciliationSettings, type ApiConfig } from '../lib/platform/config.js';
import { createAlipayClient } from '../lib/alipay/client.js';
import { AlipayAppDirectory } from '../lib/alipay/apps.js';
import { merchantSecretsVault } from '../lib/platform/key-vault.js';
import { PaymentCodeSealer } from '../lib/alipay/payment-code.js';
import { alipayNotifyRouter } from './alipay-notify.js';
import { cashierRouter } from './cashier.js';
import { consoleApiRouter } from './console.js';
import { consolePages } from './console-pages.js';
import { errorHandler, HttpError } from './errors.js';
import { listRouter } from './list.js';
import { eventsRouter } from './events.js';
import { jsonBody, signedMerchant } from './merchant.js';
import { httpMetrics, metricsRouter } from './metrics.js';
import { docsRouter } from './openapi.js';
import { opsRouter } from './ops.js';
import { paymentsRouter } from './payments.js';
import { MerchantCredentialCache } from './merchant-credentials.js';
import type { PgNotifications } from './pg-notifications.js';
import { PostgresRateLimitStore } from './rate-limit-store.js';
import { AuthFailureLimit, ipRateLimit, merchantRateLimit } from './rate-limits.js';
import { refundsRouter } from './refunds.js';
import { requestIds } from './request-ids.js';
import { webhookEndpointsRouter } from './webhook-endpoints.js';

export interface AppDeps {
  config: ApiConfig;
  client: Client;
  pool: pg.Pool;
  logger: Logger;
  /** Where buyers reach this API: PUBLIC_BASE_URL, or the address it listens on. */
  publicBaseUrl: string;
  /** What other API processes announce through PostgreSQL; without it, merchants are not cached
   *  and a blocked address is learnt by each process from its own count. */
  notifications?: PgNotifications;
}

/** A readiness probe answers within this, whatever hangs behind it: a check that slow is down. */
const READINESS_CHECK_TIMEOUT_MS = 2_000;

function within<T>(ms: number, check: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([check(), timeout]).finally(() => clearTimeout(timer));
}

export function createApp({ config, client, pool, logger, publicBaseUrl, notifications }: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Who the client is for the per-IP limit: the TCP peer unless proxies are configured as trusted.
  app.set('trust proxy', config.trustProxy);
  // First, so every answer has its Request-Id and every log line of it the same id.
  app.use(requestIds);
  // Then every answer is counted, refusals included.
  app.use(httpMetrics());
  // Prometheus scrapes without credentials, every few seconds: outside the per-IP limit and /v1's auth.
  app.use(metricsRouter());
  // Before every route, so a flood of notifies or readiness checks is refused before any work.
  // Counted in PostgreSQL, so every API process (with the same limit) counts the same minute.
  const { ipPerMinute, merchantPerMinute, authFailuresPerMinute, databaseWaitMs } = config.rateLimits;
  const countedIn = (prefix: string) => new PostgresRateLimitStore(pool, prefix, logger, databaseWaitMs);
  app.use(ipRateLimit(ipPerMinute, logger, countedIn(`ip/${ipPerMinute}/`)));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.allSettled([
      within(READINESS_CHECK_TIMEOUT_MS, () => pool.query('SELECT 1')),
      within(READINESS_CHECK_TIMEOUT_MS, () =>
        client.withDeadline(Date.now() + READINESS_CHECK_TIMEOUT_MS, () => client.workflowService.getSystemInfo({})),
      ),
    ]);
    // Which part is down, for anyone; why (driver messages name addresses and ports) only in the log.
    const [postgres, temporal] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'down'));
    const ready = checks.every((c) => c.status === 'fulfilled');
    checks.forEach((check, index) => {
      if (check.status === 'rejected') logger.warn({ err: check.reason, dependency: ['postgres', 'temporal'][index] }, 'readiness check failed');
    });
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', postgres, temporal });
  });

  // The configured Alipay app and those registered in PostgreSQL, by app id: the API verifies
  // their notifies and never holds a private key.
  const apps = new AlipayAppDirectory(
    pool,
    { app: config.alipay, client: createAlipayClient({ appId: config.alipay.appId, credentials: config.alipay.credentials }) },
    'verify-only',
  );

  // Unauthenticated: the document describes how to sign, so it cannot require a signature.
  app.use(docsRouter());

  app.use(
    alipayNotifyRouter({
      client,
      appId: config.alipay.appId,
      taskQueue: config.temporal.taskQueue,
      latePaymentPolicy: config.latePaymentPolicy,
      apps,
      logger,
    }),
  );

  // Buyers: the token in the path is the only key.
  app.use(cashierRouter({ pool, simulatorUrl: config.simulatorUrl, streams: config.cashierStreams, logger }));

  // Operators: bearer OPS_TOKEN; the daily reconciliation on demand, and what it found.
  const opsApi = (authorize?: express.RequestHandler) =>
    opsRouter({
      client,
      pool,
      taskQueue: config.temporal.taskQueue,
      opsToken: config.opsToken,
      settings: reconciliationSettings(config),
      answerTimeoutMs: config.answerTimeoutMs,
      publicBaseUrl,
      temporalUiUrl: config.temporalUiUrl,
      ...(authorize ? { authorize } : {}),
    });
  app.use('/ops', opsApi());

  const merchantSecrets = merchantSecretsVault(config.apiKeys.merchantSecrets);
  const webhooks = { client, taskQueue: config.temporal.taskQueue, settings: config.webhooks, historyLimit: config.timings.historyLimit };
  // The merchant API's routers, once: the signed /v1 and the console's /console/api/v1 serve the same ones.
  const merchantApi = [
    listRouter({ pool, publicBaseUrl }),
    paymentsRouter({
      client,
      pool,
      taskQueue: config.temporal.taskQueue,
      timings: config.timings,
      answerTimeoutMs: config.answerTimeoutMs,
      apps,
      latePaymentPolicy: config.latePaymentPolicy,
      barcode: config.barcode,
      // Seals payment codes to the worker's key; this process cannot open them again.
      paymentCodes: new PaymentCodeSealer(config.apiKeys),
      publicBaseUrl,
      webhookPrivateTargets: config.webhookPrivateTargets,
    }),
    refundsRouter({ client, pool, taskQueue: config.temporal.taskQueue, answerTimeoutMs: config.answerTimeoutMs }),
    eventsRouter({ pool, webhooks }),
    webhookEndpointsRouter({ pool, merchantSecrets, webhooks, webhookPrivateTargets: config.webhookPrivateTargets }),
  ];
  // Keyed by res.locals.merchant, so it must follow the middleware that sets it.
  const perMerchant = merchantRateLimit(merchantPerMinute, logger, countedIn(`merchant/${merchantPerMinute}/`));
  // The signature covers the raw bytes, so the body is kept raw until it has been checked.
  const rawBody = express.raw({ type: () => true, limit: '16kb' });
  app.use(
    '/v1',
    rawBody,
    signedMerchant({
      pool,
      appId: config.alipay.appId,
      merchantSecrets,
      ...(notifications ? { credentials: new MerchantCredentialCache(pool, merchantSecrets, notifications) } : {}),
      authFailures: new AuthFailureLimit(
        authFailuresPerMinute,
        countedIn(`auth-failure/${authFailuresPerMinute}/`),
        pool,
        notifications,
        logger,
      ),
    }),
    perMerchant,
    jsonBody,
    ...merchantApi,
  );

  // The web console: its API behind logins (the same routers as /v1 and /ops), and its pages.
  app.use(
    '/console/api',
    consoleApiRouter({
      pool,
      logger,
      settings: config.console,
      appId: config.alipay.appId,
      merchantSecrets,
      merchantApi,
      merchantRateLimit: perMerchant,
      merchantBody: [rawBody, jsonBody],
      opsApi: (authorize) => opsApi(authorize),
    }),
  );
  app.use('/console', consolePages());

  app.use((req, _res, next) => next(new HttpError('NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(logger));
  return app;
}
