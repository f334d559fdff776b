// The mismatches fed back: each order's findings signalled to its workflow (or to a findings
// workflow started for it), and those of no known order logged for an operator.
import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type pg from 'pg';
import type { ReconciliationRun } from '../../lib/payments/activity-contracts.js';
import { searchAttributes } from '../../lib/payments/payment.js';
import {
  RECONCILIATION_FINDINGS_WORKFLOW_TYPE,
  reconciliationFindingsSignal,
  reconciliationFindingsWorkflowId,
  type FeedbackSummary,
  type ReconciliationFindingsInput,
} from '../../lib/payments/reconciliation.js';
import type { Finding } from '../../lib/payments/findings.js';
import { fromAlipayOutTradeNo } from '../../lib/alipay/order-numbers.js';

const DISPATCH_CONCURRENCY = 8;

/** Where findings are signalled, and findings workflows started. */
export interface FindingsTarget {
  client: Client;
  taskQueue: string;
}

type FeedbackRun = ReconciliationRun & { latePaymentPolicy: ReconciliationFindingsInput['latePaymentPolicy'] };

/** Feeds the run's undispatched mismatches back, a page of orders at a time; a retried attempt carries on. */
export async function feedBackMismatches(pool: pg.Pool, temporal: FindingsTarget, input: FeedbackRun): Promise<FeedbackSummary> {
  const ctx = Context.current();
  const summary = { signalled: 0, started: 0, unknownOrders: 0 };
  // No order to tell: left for an operator, in the list and in the worker's log.
  const { rows: unknown } = await pool.query(
    `UPDATE reconciliation_mismatches SET dispatched_at = now()
     WHERE run_id = $1 AND payment_id IS NULL AND dispatched_at IS NULL
     RETURNING type, out_trade_no, alipay_trade_no, gateway_amount_fen, detail`,
    [input.runId],
  );
  for (const m of unknown) {
    log.error('RECONCILIATION: a mismatch of no order, for an operator', { date: input.date, type: m.type, outTradeNo: m.out_trade_no, tradeNo: m.alipay_trade_no, detail: m.detail });
  }
  summary.unknownOrders = unknown.length;
  for (;;) {
    const { rows: orders } = await pool.query(
      `SELECT payment_id, min(out_trade_no) AS out_trade_no, min(alipay_trade_no) AS alipay_trade_no,
              json_agg(json_strip_nulls(json_build_object(
                'date', $2::text, 'type', type, 'detail', detail, 'alipayTradeNo', alipay_trade_no, 'outRequestNo', out_request_no,
                'localAmountFen', local_amount_fen, 'gatewayAmountFen', gateway_amount_fen)) ORDER BY id) AS findings
       FROM reconciliation_mismatches WHERE run_id = $1 AND payment_id IS NOT NULL AND dispatched_at IS NULL
       GROUP BY payment_id ORDER BY payment_id LIMIT 200`,
      [input.runId, input.date],
    );
    if (orders.length === 0) return summary;
    let next = 0;
    const workers = Array.from({ length: Math.min(DISPATCH_CONCURRENCY, orders.length) }, async () => {
      for (let order = orders[next++]; order; order = orders[next++]) {
        summary[await dispatch(temporal, input, order)] += 1;
        await pool.query('UPDATE reconciliation_mismatches SET dispatched_at = now() WHERE run_id = $1 AND payment_id = $2', [input.runId, order.payment_id]);
      }
    });
    await Promise.all(workers);
    ctx.heartbeat(summary);
  }
}

/** Signals one order's findings to its running workflow, or to a findings workflow for it. */
async function dispatch(temporal: FindingsTarget, run: FeedbackRun, order: {
  payment_id: string;
  out_trade_no: string;
  alipay_trade_no: string | null;
  findings: Finding[];
}): Promise<'signalled' | 'started'> {
  const { client, taskQueue } = temporal;
  const findings = { findings: order.findings };
  try {
    await client.workflow.getHandle(order.payment_id).signal(reconciliationFindingsSignal, findings);
    return 'signalled';
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const input: ReconciliationFindingsInput = {
    appId: run.appId,
    outTradeNo: order.out_trade_no,
    paymentId: order.payment_id,
    latePaymentPolicy: run.latePaymentPolicy,
  };
  const merchantOrder = fromAlipayOutTradeNo(order.out_trade_no);
  await client.workflow.signalWithStart(RECONCILIATION_FINDINGS_WORKFLOW_TYPE, {
    workflowId: reconciliationFindingsWorkflowId(run.appId, run.date, order.out_trade_no),
    taskQueue,
    args: [input],
    signal: reconciliationFindingsSignal,
    signalArgs: [findings],
    typedSearchAttributes: [
      { key: searchAttributes.outTradeNo, value: merchantOrder?.orderNo ?? order.out_trade_no },
      ...(merchantOrder ? [{ key: searchAttributes.merchantId, value: merchantOrder.merchantId }] : []),
      ...(order.alipay_trade_no ? [{ key: searchAttributes.alipayTradeNo, value: order.alipay_trade_no }] : []),
    ],
  });
  return 'started';
}
