// A notify that arrived after its order's workflow had finished (Alipay retries for a day; a
// buyer can pay a QR code after we closed it). Started by the notify receiver, one per notify_id,
// so Alipay hears "success" only once this is durably on its way: the notify is verified here,
// recorded on its order, and a payment Alipay really holds for a finished order is flagged.
import { log, metricMeter, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { NotifyActivities, PaymentChange, PaymentEventType } from '../lib/payments/activity-contracts.js';
import { isPaidReport as isPaid, PAID_STATUSES, paymentWorkflowId, type LateNotifyInput, type LateNotifyOutcome } from '../lib/payments/payment.js';
import { alipay, ledger } from './durable-calls.js';
import { errorMessage, isUnplaceable } from './failures.js';
import { settleLatePayment } from './late-payment.js';

const { verifyAlipayNotify } = proxyLocalActivities<NotifyActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});
const { queryTrade } = alipay;
const { findPaymentRecord, recordPaymentEvent } = ledger;

export async function lateNotifyWorkflow(input: LateNotifyInput): Promise<LateNotifyOutcome> {
  const outcome = await readLateNotify(input);
  // Counted where it is decided; workflow metrics are not emitted again on replay. The worker's
  // /metrics shows it beside the SDK's own (worker/metrics.ts).
  metricMeter
    .createCounter('durapay_alipay_late_notifies_total', 'notifies', "Notifies read after their order's workflow had finished, by outcome")
    .add(1, { outcome: outcome.outcome });
  return outcome;
}

async function readLateNotify({ appId, outTradeNo, notify, latePaymentPolicy }: LateNotifyInput): Promise<LateNotifyOutcome> {
  const paymentId = paymentWorkflowId(appId, outTradeNo);
  let eventSeq = 0;
  const record = (type: PaymentEventType, data: Record<string, unknown>, change?: PaymentChange) =>
    recordPaymentEvent({ paymentId, eventKey: `${workflowInfo().runId}:${++eventSeq}`, type, data, change });

  const verdict = await verifyAlipayNotify({ appId, outTradeNo, params: notify?.params ?? {} });
  if (!verdict.ok) return { outcome: 'rejected', detail: verdict.reason };
  const { report } = verdict;

  const order = await findPaymentRecord({ paymentId });
  if (!order) {
    // Every line of this workflow carries the order's number and workflow id (worker/runtime.ts).
    log.error('ALIPAY NOTIFY FOR AN UNKNOWN ORDER: this engine never issued this order number', { tradeNo: report.tradeNo });
    return { outcome: 'unknown_order', detail: `no order ${outTradeNo} in the record` };
  }
  await record('notify_received', { ...report, late: true, statusThen: order.status });
  if (!isPaid(report)) return { outcome: 'recorded', detail: `${report.tradeStatus} for a ${order.status} order` };
  // A paid order's trade: a repeat, or the TRADE_SUCCESS Alipay sends after a partial refund.
  const isOurs = (tradeNo?: string) =>
    tradeNo !== undefined &&
    ((PAID_STATUSES.includes(order.status) && order.alipayTradeNo === tradeNo) || order.latePayment?.tradeNo === tradeNo);
  if (isOurs(report.tradeNo)) return { outcome: 'recorded', detail: `about the trade already settled (${order.status})` };

  // A payment for an order that is not (or not so) paid here: Alipay's own query decides.
  try {
    const trade = await queryTrade({ appId, outTradeNo });
    await record('query_result', { ...trade });
    if (!isPaid(trade)) return { outcome: 'recorded', detail: `the query says ${trade.tradeStatus}` };
    if (isOurs(trade.tradeNo)) return { outcome: 'recorded', detail: `the query shows the trade already settled (${order.status})` };
    const change = await settleLatePayment({ appId, outTradeNo, trade, status: order.status, policy: latePaymentPolicy ?? 'refund', record });
    return change.status === 'REVIEW'
      ? { outcome: 'flagged', detail: change.reason ?? 'late payment' }
      : { outcome: 'refunding', detail: `late payment ${trade.tradeNo} is being refunded` };
  } catch (err) {
    if (!isUnplaceable(err)) throw err;
    const reason = `a payment notify arrived for a ${order.status} order and Alipay's answer to the check could not be placed (${errorMessage(err)})`;
    log.error('LATE PAYMENT flagged for review', { reason });
    await record('anomaly', { reason }, { status: 'REVIEW', reason });
    return { outcome: 'flagged', detail: reason };
  }
}
