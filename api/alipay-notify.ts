// Alipay's async notify receiver. Only a notify whose signature verifies, for our app and an order
// we know, reaches its workflow; Alipay hears exactly "success" once Temporal has accepted it, and
// "failure" otherwise (it then retries on its own schedule). Nothing else changes.
import express, { Router } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { AlipaySdk } from 'alipay-sdk';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { readNotify } from '../lib/alipay-notify.js';
import { alipayNotifySignal } from '../lib/payment.js';
import { findPayment } from './read-model.js';

export interface NotifyDeps {
  client: Client;
  pool: pg.Pool;
  appId: string;
  /** Verifies with Alipay's public key; holds no private key and never calls Alipay. */
  verifier: AlipaySdk;
  logger: Logger;
}

export function alipayNotifyRouter(deps: NotifyDeps): Router {
  const router = Router();
  router.post('/alipay/notify', express.urlencoded({ extended: false, limit: '64kb' }), async (req, res) => {
    const answer = (ok: boolean) => res.type('text/plain').send(ok ? 'success' : 'failure');
    const verdict = readNotify(deps.verifier, deps.appId, req.body);
    if (!verdict.ok) {
      deps.logger.warn({ reason: verdict.reason, outTradeNo: req.body?.out_trade_no }, 'alipay notify rejected');
      return answer(false);
    }
    const { report } = verdict;
    const payment = await findPayment(deps.pool, deps.appId, report.outTradeNo);
    if (!payment) {
      deps.logger.warn({ outTradeNo: report.outTradeNo }, 'alipay notify for an unknown order');
      return answer(false);
    }
    try {
      await deps.client.workflow.getHandle(payment.id).signal(alipayNotifySignal, report);
      return answer(true);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    // The order's workflow has finished. A repeat of what it already settled is done with.
    const settledSame =
      (payment.status === 'PAID' || payment.status === 'REVIEW') && payment.alipay_trade_no === report.tradeNo;
    const nothingToDo = report.tradeStatus === 'WAIT_BUYER_PAY' || report.tradeStatus === 'TRADE_CLOSED';
    if (settledSame || nothingToDo) return answer(true);
    // A payment for an order we closed: keep saying "failure" so Alipay keeps it on record and
    // retries, and page someone; automatic late-payment refunds come with the refunds work.
    deps.logger.error(
      { outTradeNo: report.outTradeNo, tradeNo: report.tradeNo, status: payment.status, tradeStatus: report.tradeStatus },
      'LATE PAYMENT: Alipay reports a payment for an order that is no longer awaiting payment',
    );
    return answer(false);
  });
  return router;
}
