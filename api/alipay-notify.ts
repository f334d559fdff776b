// Alipay's async notify receiver. Only a notify whose signature verifies, for our app, reaches
// Temporal; Alipay hears exactly "success" once Temporal has accepted it, and "failure" otherwise
// (it then retries on its own schedule). The workflow id follows from the app id and out_trade_no,
// so notifies keep working while PostgreSQL is down; the workflow verifies the signature again.
import { createHash } from 'node:crypto';
import express, { Router } from 'express';
import type { Logger } from 'pino';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AlipayAppDirectory } from '../lib/alipay/apps.js';
import { readNotify, type NotifyVerdict } from '../lib/alipay/notify.js';
import { ALIPAY_APP_ID_PATTERN } from '../lib/platform/config.js';
import { cutShort } from '../lib/platform/logger.js';
import { claimedOrderLogFields, orderLogFields } from '../lib/payments/order-log.js';
import {
  alipayNotifySignal,
  LATE_NOTIFY_WORKFLOW_TYPE,
  lateNotifyWorkflowId,
  paymentWorkflowId,
  type LateNotifyInput,
  type LatePaymentPolicy,
  type SignedNotify,
} from '../lib/payments/payment.js';
import { countNotify } from './metrics.js';
import { linkToOrderTrace } from './tracing.js';

export interface NotifyDeps {
  client: Client;
  appId: string;
  taskQueue: string;
  latePaymentPolicy: LatePaymentPolicy;
  /** Each app's verifier, by the notify's app_id: Alipay's public key (or certificate) for that app. */
  apps: Pick<AlipayAppDirectory, 'client'>;
  logger: Logger;
}

/** Alipay keeps one notify_id across the retries of one notification. */
function notifyKey(params: Record<string, string>): string {
  return params.notify_id || createHash('sha256').update(params.sign ?? '').digest('hex').slice(0, 32);
}

export function alipayNotifyRouter(deps: NotifyDeps): Router {
  const router = Router();
  router.post('/alipay/notify', express.urlencoded({ extended: false, limit: '64kb' }), async (req, res) => {
    const receivedAtMs = Date.now(); // the pay→PAID latency of a notify starts here
    const answer = (ok: boolean) => res.type('text/plain').send(ok ? 'success' : 'failure');
    // The app it names, checked with that app's own key: another app's signature proves nothing.
    const appId = typeof req.body?.app_id === 'string' && req.body.app_id ? (req.body.app_id as string) : deps.appId;
    // Anyone can post here: an app_id no Alipay app can have costs no lookup, and is logged cut short.
    if (!ALIPAY_APP_ID_PATTERN.test(appId)) {
      countNotify('rejected', 'malformed_app_id');
      deps.logger.warn({ reason: 'app_id is not an Alipay app id (digits, at most 32)', appId: cutShort(appId) }, 'alipay notify rejected');
      return answer(false);
    }
    let verifier: Awaited<ReturnType<NotifyDeps['apps']['client']>>;
    try {
      verifier = await deps.apps.client(appId);
    } catch (err) {
      // A registered app is read from PostgreSQL: while it is down, Alipay hears failure and retries.
      countNotify('unaccepted');
      deps.logger.error({ err, appId }, 'alipay notify for an app that could not be read; Alipay will retry it');
      return answer(false);
    }
    const verdict: NotifyVerdict = verifier
      ? readNotify(verifier, appId, req.body)
      : { ok: false, reason: `app_id ${appId} is not an app of this engine`, rejection: 'foreign_app' };
    if (!verdict.ok) {
      countNotify('rejected', verdict.rejection);
      // The order it names, unverified: whoever sent it chose it.
      deps.logger.warn({ reason: verdict.reason, ...claimedOrderLogFields(appId, req.body?.out_trade_no) }, 'alipay notify rejected');
      return answer(false);
    }
    const { outTradeNo, tradeStatus, notifyId } = verdict.report;
    const order = orderLogFields(appId, outTradeNo);
    const notify: SignedNotify = { params: req.body as Record<string, string>, receivedAtMs };
    try {
      const outcome = await deliver(appId, outTradeNo, notify);
      countNotify(outcome);
      await linkToOrderTrace(deps.client, paymentWorkflowId(appId, outTradeNo));
      deps.logger.debug(
        { ...order, tradeStatus, notifyId },
        outcome === 'late' ? "alipay notify for a finished order's workflow: a late-notify workflow reads it" : 'alipay notify handed to its order',
      );
      return answer(true);
    } catch (err) {
      countNotify('unaccepted');
      deps.logger.error({ err, ...order }, 'alipay notify not accepted by Temporal; Alipay will retry it');
      return answer(false);
    }
  });

  async function deliver(appId: string, outTradeNo: string, notify: SignedNotify): Promise<'verified' | 'late'> {
    try {
      await deps.client.workflow.getHandle(paymentWorkflowId(appId, outTradeNo)).signal(alipayNotifySignal, notify);
      return 'verified';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    // The order's workflow has finished (or never was): a workflow of its own reads the notify.
    const input: LateNotifyInput = { appId, outTradeNo, notify, latePaymentPolicy: deps.latePaymentPolicy };
    try {
      await deps.client.workflow.start(LATE_NOTIFY_WORKFLOW_TYPE, {
        workflowId: lateNotifyWorkflowId(appId, outTradeNo, notifyKey(notify.params)),
        taskQueue: deps.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (err) {
      // This very notify was read already: a repeat of it is done with.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    return 'late';
  }
  return router;
}
