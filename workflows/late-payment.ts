// Money Alipay holds for an order we had already closed (a buyer who paid a QR code Alipay still
// took, a trade reconciliation finds). By LATE_PAYMENT_POLICY it is refunded in full through the
// refund workflow, keyed by the trade so it can never go back twice, or sent to review.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { log, ParentClosePolicy, startChild } from '@temporalio/workflow';
import type { PaymentChange, PaymentEventType } from '../lib/payments/activity-contracts.js';
import { parseAlipayAmount } from '../lib/payments/money.js';
import { fromAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { alipayReportOf, searchAttributes, type LatePayment, type LatePaymentPolicy, type PaidReport, type PaymentStatus } from '../lib/payments/payment.js';
import { lateRefundRequestNo, refundWorkflowId } from '../lib/payments/refund.js';
import { latePaymentReason } from './failures.js';
import { refundWorkflow } from './refund.js';

type Record = (type: PaymentEventType, data: { [key: string]: unknown }, change?: PaymentChange) => Promise<unknown>;

/** Money Alipay holds for an order that is not waiting for it: a CLOSED order's is refunded (or, by
 *  policy, reviewed); any other order goes to review. Returns the change it recorded, for a running
 *  payment workflow to take into its state. */
export async function settleLatePayment(args: {
  appId: string;
  outTradeNo: string;
  trade: PaidReport;
  /** The order's status when the payment was found: only a CLOSED order's is refunded. */
  status: PaymentStatus;
  policy: LatePaymentPolicy;
  record: Record;
}): Promise<PaymentChange> {
  const { appId, outTradeNo, trade, record } = args;
  const amountFen = parseAlipayAmount(trade.totalAmount);
  if (args.status !== 'CLOSED' || args.policy === 'review' || !trade.tradeNo || amountFen === undefined) {
    const reason = latePaymentReason(trade, args.status);
    log.error('LATE PAYMENT flagged for review', { reason });
    const change: PaymentChange = { status: 'REVIEW', reason, alipayStatus: trade.tradeStatus, alipayTradeNo: trade.tradeNo, alipayReport: alipayReportOf(trade) };
    await record('anomaly', { reason, report: { ...trade } }, change);
    return change;
  }
  const outRequestNo = lateRefundRequestNo(trade.tradeNo);
  const latePayment: LatePayment = { tradeNo: trade.tradeNo, amountFen, detectedAt: new Date().toISOString(), outRequestNo, refundStatus: 'PENDING' };
  const change: PaymentChange = { latePayment, alipayStatus: trade.tradeStatus, alipayTradeNo: trade.tradeNo };
  await record('late_payment', { ...latePayment, policy: 'refund' }, change);
  try {
    // Abandoned by its parent on purpose: the refund outlives the run that found the payment.
    await startChild(refundWorkflow, {
      workflowId: refundWorkflowId(appId, outTradeNo, outRequestNo),
      args: [{ appId, outTradeNo, outRequestNo, amountFen, kind: 'late_payment', tradeNo: trade.tradeNo, reason: 'paid after the order was closed' }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [
        { key: searchAttributes.outTradeNo, value: fromAlipayOutTradeNo(outTradeNo)?.orderNo ?? outTradeNo },
        { key: searchAttributes.amountFen, value: amountFen },
        { key: searchAttributes.alipayTradeNo, value: trade.tradeNo },
      ],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err; // already on its way back
  }
  return change;
}
