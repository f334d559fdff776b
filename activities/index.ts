// Every activity the worker registers, built from its infrastructure clients.
import type pg from 'pg';
import type { Client } from '@temporalio/client';
import type { LateRefundRetryPolicy } from '../lib/payments/activity-contracts.js';
import type { WebhookPrivateTargets } from '../lib/merchants/webhook-targets.js';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import type { WebhookTarget } from '../lib/merchants/webhooks.js';
import { createAlipayActivities, type AlipayActivityOptions, type AlipayClients } from './alipay.js';
import { createNotifyActivities } from './alipay-notify.js';
import { createLedgerActivities } from './ledger.js';
import { createOrderOpeningActivities } from './order-opening.js';
import { createReconciliationActivities } from './reconciliation.js';
import { createRefundActivities } from './refunds.js';
import { createWebhookWaker } from './webhook-outbox.js';
import { createWebhookActivities } from './webhooks.js';

export function createActivities(deps: {
  /** Each Alipay app's signing client, by app id (lib/alipay/apps.ts). */
  alipay: AlipayClients;
  pool: pg.Pool;
  alipayOptions: AlipayActivityOptions;
  /** Where the writers of ledger events start or wake each order's webhook delivery. */
  webhooks: WebhookTarget;
  /** Where a reconciliation signals its findings to the orders' workflows. */
  temporal: { client: Client; taskQueue: string };
  /** How a late payment's refund is sent again after a refusal that can pass. */
  lateRefundRetry?: LateRefundRetryPolicy;
  /** WEBHOOK_PRIVATE_TARGETS: whether webhooks may reach private addresses. */
  webhookPrivateTargets: WebhookPrivateTargets;
  /** Opens the merchants' sealed webhook secrets. */
  merchantSecrets: KeyProvider;
}) {
  const wakeWebhooks = createWebhookWaker(deps.pool, deps.webhooks);
  const alipay = createAlipayActivities(deps.alipay, deps.alipayOptions);
  const ledger = createLedgerActivities(deps.pool, wakeWebhooks);
  return {
    ...alipay,
    ...createNotifyActivities(deps.alipay),
    ...ledger,
    ...createOrderOpeningActivities(ledger, alipay),
    ...createRefundActivities(deps.pool, wakeWebhooks, deps.lateRefundRetry),
    ...createWebhookActivities(deps.pool, { timeoutMs: deps.webhooks.settings.timeoutMs, privateTargets: deps.webhookPrivateTargets, merchantSecrets: deps.merchantSecrets }),
    ...createReconciliationActivities({ alipay: deps.alipay, pool: deps.pool, temporal: deps.temporal }),
  };
}
