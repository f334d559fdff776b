// A refund of a trade: alipay.trade.refund, confirmed by alipay.trade.fastpay.refund.query when
// the answer alone does not prove the money moved, or when an earlier attempt's outcome is unknown.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AlipayActivities, RefundOutcome } from '../../lib/payments/activity-contracts.js';
import { parseBeijingTime } from '../../lib/alipay/time.js';
import { formatYuan } from '../../lib/payments/money.js';
import type { Gateway } from './gateway.js';

/** gmt_refund_pay, Beijing time "yyyy-MM-dd HH:mm:ss" (sometimes with milliseconds), as ISO. */
function refundTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const at = parseBeijingTime(value.slice(0, 19));
  return at === undefined ? undefined : new Date(at).toISOString();
}
const withTime = (refundedAt: string | undefined) => (refundedAt ? { refundedAt } : {});

export function refundActivities({ call, unexpected }: Gateway): Pick<AlipayActivities, 'refundTrade'> {
  /** alipay.trade.fastpay.refund.query: REFUND_SUCCESS, or an answer without refund_status
   *  when Alipay has no such refund (never received, or failed). Asks for gmt_refund_pay, the
   *  time the refund was made, which decides the day Alipay's bill lists it. */
  async function refundIsDone(appId: string | undefined, outTradeNo: string, outRequestNo: string): Promise<{ done: boolean; refundedAt?: string }> {
    const method = 'alipay.trade.fastpay.refund.query';
    const answer = await call(appId, method, { bizContent: { outTradeNo, outRequestNo, queryOptions: ['gmt_refund_pay'] } });
    if (answer.code === '10000') return { done: answer.refundStatus === 'REFUND_SUCCESS', refundedAt: refundTime(answer.gmtRefundPay) };
    if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { done: false };
    throw unexpected(method, answer);
  }

  return {
    async refundTrade({ outTradeNo, outRequestNo, amountFen, reason, appId }): Promise<RefundOutcome> {
      // Another attempt means the last one's outcome is unknown: ask Alipay first, then (if it
      // has no such refund) send the very same request again, never one under another number.
      if (Context.current().info.attempt > 1) {
        const earlier = await refundIsDone(appId, outTradeNo, outRequestNo);
        if (earlier.done) return { outcome: 'succeeded', confirmedBy: 'query', ...withTime(earlier.refundedAt) };
      }
      const method = 'alipay.trade.refund';
      const answer = await call(appId, method, {
        bizContent: {
          outTradeNo,
          outRequestNo,
          refundAmount: formatYuan(amountFen),
          ...(reason ? { refundReason: reason } : {}),
        },
      });
      if (answer.code === '10000') {
        // Alipay: only fund_change "Y" proves this call moved money; otherwise the refund query decides.
        if (answer.fundChange === 'Y') return { outcome: 'succeeded', fundChange: 'Y', confirmedBy: 'refund', ...withTime(refundTime(answer.gmtRefundPay)) };
        const done = await refundIsDone(appId, outTradeNo, outRequestNo);
        if (done.done) {
          return { outcome: 'succeeded', fundChange: String(answer.fundChange ?? ''), confirmedBy: 'query', ...withTime(done.refundedAt ?? refundTime(answer.gmtRefundPay)) };
        }
        throw ApplicationFailure.retryable(`${method}: code 10000 with fund_change ${String(answer.fundChange)} and no refund on record yet`, 'AlipayRefundUnknown');
      }
      // What reaches here is final (call() throws for 20000 and ACQ.SYSTEM_ERROR).
      return {
        outcome: 'refused',
        subCode: answer.subCode ?? answer.code,
        message: answer.subMsg ?? answer.msg ?? '',
      };
    },
  };
}
