// The fields every log line about an order carries, so that one search finds all of an order's
// lines, from the API and from the worker: the merchant's order number (outTradeNo, as the merchant
// API and the search attribute have it), the merchant, and the order's workflow id, which holds the
// out_trade_no Alipay knows.
import { fromAlipayOutTradeNo } from '../alipay/order-numbers.js';
import { paymentWorkflowId } from './payment.js';

export interface OrderLogFields {
  outTradeNo: string;
  merchantId?: string;
  workflowId: string;
}

/** Alipay's out_trade_no: letters, digits and underscores, at most 64. */
const ALIPAY_OUT_TRADE_NO = /^\w{1,64}$/;

/** For Alipay's out_trade_no of an order of this app; numbers from before merchants stay as they are. */
export function orderLogFields(appId: string, alipayOutTradeNo: string): OrderLogFields {
  const ours = fromAlipayOutTradeNo(alipayOutTradeNo);
  return {
    outTradeNo: ours?.orderNo ?? alipayOutTradeNo,
    ...(ours ? { merchantId: ours.merchantId } : {}),
    workflowId: paymentWorkflowId(appId, alipayOutTradeNo),
  };
}

/** The same for an out_trade_no someone sent (a notify not yet verified): only one of Alipay's form. */
export function claimedOrderLogFields(appId: string, claimed: unknown): OrderLogFields | undefined {
  return typeof claimed === 'string' && ALIPAY_OUT_TRADE_NO.test(claimed) ? orderLogFields(appId, claimed) : undefined;
}

// The workflows of one order name it after their kind: payment:, late-notify:, refund: and
// webhooks:payment: <appId>:<out_trade_no>[:…]; a reconciliation's finding for an order,
// reconciliation:<appId>:<day>:<out_trade_no> (lib/payments/payment.ts, refund.ts and reconciliation.ts,
// lib/merchants/webhooks.ts).
const ORDER_WORKFLOW_IDS = [/^(?:webhooks:)?(?:payment|late-notify|refund):(\d+):(\w+)(?::|$)/, /^reconciliation:(\d+):\d{4}-\d{2}-\d{2}:(\w+)$/];

/**
 * For a line from one of an order's workflows or their activities: the order's fields, with the
 * payment workflow's id as paymentWorkflowId when the line's own workflow is another one.
 */
export function orderLogFieldsOfWorkflow(workflowId: string): Omit<OrderLogFields, 'workflowId'> & { paymentWorkflowId?: string } | undefined {
  for (const pattern of ORDER_WORKFLOW_IDS) {
    const match = pattern.exec(workflowId);
    if (!match) continue;
    const { workflowId: paymentId, ...fields } = orderLogFields(match[1]!, match[2]!);
    return paymentId === workflowId ? fields : { ...fields, paymentWorkflowId: paymentId };
  }
  return undefined;
}
