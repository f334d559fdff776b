// What a reconciliation's findings do to an order. Shared by the payment workflow (findings
// signalled while it runs) and by the findings workflow started for an order whose own workflow
// has finished, so the order's history in the Temporal UI shows them either way.
//
// - missing_local (Alipay holds a payment durapay never confirmed): Alipay's own query decides, and
//   money it really holds goes into the late-payment path (refunded or sent to review by policy).
//   A reconciliation never confirms a payment by itself.
// - missing_gateway and amount_mismatch: the order goes to REVIEW.
// - status_mismatch and refund_mismatch: recorded on the order for an operator.
import { allHandlersFinished, condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { PaymentChange, PaymentEventType, TradeNotFound } from '../lib/payments/activity-contracts.js';
import { isPaidReport as isPaid, PAID_STATUSES, type LatePayment, type LatePaymentPolicy, type PaymentStatus, type TradeReport } from '../lib/payments/payment.js';
import type { Finding } from '../lib/payments/findings.js';
import { reconciliationFindingsSignal, type ReconciliationFindingsInput } from '../lib/payments/reconciliation.js';
import { alipay, ledger } from './durable-calls.js';
import { errorMessage, isUnplaceable } from './failures.js';
import { settleLatePayment } from './late-payment.js';

type Record = (type: PaymentEventType, data: { [key: string]: unknown }, change?: PaymentChange) => Promise<unknown>;

/** The order as the finding finds it. */
export interface OrderAtFinding {
  status: PaymentStatus;
  alipayTradeNo?: string;
  latePayment?: LatePayment;
}

export function findingReason(finding: Finding): string {
  return `reconciliation of ${finding.date}: ${finding.type}: ${finding.detail}`;
}

/** Records the finding on the order and acts on it; returns the change it made, if any. */
export async function applyFinding(args: {
  appId: string;
  /** Alipay's out_trade_no of the order. */
  outTradeNo: string;
  finding: Finding;
  order: OrderAtFinding;
  policy: LatePaymentPolicy;
  record: Record;
  /** alipay.trade.query, recorded on the order. */
  queryTrade: () => Promise<TradeReport | TradeNotFound>;
}): Promise<PaymentChange | undefined> {
  const { finding, order, record } = args;
  await record('reconciliation_mismatch', { ...finding });
  switch (finding.type) {
    case 'missing_local': {
      // Alipay's bill says paid: only Alipay's answer now decides what the money is.
      const isOurs = (tradeNo?: string) =>
        tradeNo !== undefined &&
        ((PAID_STATUSES.includes(order.status) && order.alipayTradeNo === tradeNo) || order.latePayment?.tradeNo === tradeNo);
      try {
        const trade = await args.queryTrade();
        if (!isPaid(trade) || isOurs(trade.tradeNo)) return undefined;
        return await settleLatePayment({ appId: args.appId, outTradeNo: args.outTradeNo, trade, status: order.status, policy: args.policy, record });
      } catch (err) {
        if (!isUnplaceable(err)) throw err;
        const reason = `${findingReason(finding)}; Alipay's answer to the check could not be placed (${errorMessage(err)})`;
        const change: PaymentChange = { status: 'REVIEW', reason };
        await record('anomaly', { reason }, change);
        return change;
      }
    }
    case 'missing_gateway':
    case 'amount_mismatch': {
      if (order.status === 'REVIEW') return undefined; // already before an operator
      const reason = findingReason(finding);
      log.error('RECONCILIATION MISMATCH: order sent to review', { type: finding.type, date: finding.date });
      const change: PaymentChange = { status: 'REVIEW', reason };
      await record('anomaly', { reason, finding: { ...finding } }, change);
      return change;
    }
    default:
      log.warn('RECONCILIATION MISMATCH recorded for an operator', { type: finding.type, date: finding.date });
      return undefined;
  }
}

const { findPaymentRecord, recordPaymentEvent } = ledger;

/**
 * Started (signal-with-start) by a reconciliation for an order whose own workflow has finished:
 * it takes the findings signalled to it, one after the other, and ends when none is left.
 */
export async function reconciliationFindingsWorkflow({ appId, outTradeNo, paymentId, latePaymentPolicy }: ReconciliationFindingsInput): Promise<string[]> {
  const pending: Finding[] = [];
  const outcomes: string[] = [];
  setHandler(reconciliationFindingsSignal, ({ findings }) => {
    pending.push(...findings);
  });
  let eventSeq = 0;
  const record = (type: PaymentEventType, data: { [key: string]: unknown }, change?: PaymentChange) =>
    recordPaymentEvent({ paymentId, eventKey: `${workflowInfo().runId}:${++eventSeq}`, type, data, change });

  await condition(() => pending.length > 0, '1m');
  for (;;) {
    for (let finding = pending.shift(); finding; finding = pending.shift()) {
      const order = await findPaymentRecord({ paymentId });
      if (!order) {
        outcomes.push(`${finding.type}: no order ${outTradeNo} in the record`);
        continue;
      }
      const change = await applyFinding({
        appId,
        outTradeNo,
        finding,
        order,
        policy: latePaymentPolicy,
        record,
        queryTrade: async () => {
          const report = await alipay.queryTrade({ appId, outTradeNo });
          await record('query_result', { ...report });
          return report;
        },
      });
      outcomes.push(`${finding.type}: ${change?.status ? `order sent to ${change.status}` : change?.latePayment ? 'late payment being refunded' : 'recorded'}`);
    }
    await condition(allHandlersFinished);
    if (pending.length === 0) return outcomes;
  }
}
