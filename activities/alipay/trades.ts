// The QR-code order's trade: precreated, queried, closed, voided (alipay.trade.cancel), and
// Alipay's trade answer read as a report.
import { ApplicationFailure } from '@temporalio/activity';
import { FAILURE, type AlipayActivities, type AlipayRefusal, type CloseOutcome, type TradeNotFound } from '../../lib/payments/activity-contracts.js';
import { parseBeijingTime } from '../../lib/alipay/time.js';
import { formatYuan } from '../../lib/payments/money.js';
import type { AlipayTradeStatus, TradeReport } from '../../lib/payments/payment.js';
import { describe, type Gateway, type GatewayAnswer } from './gateway.js';

/** alipay.trade.cancel refusals that no retry changes. */
const FINAL_VOID_REFUSALS = new Set(['ACQ.TRADE_CANCEL_TIME_OUT', 'ACQ.CANCEL_NOT_ALLOWED', 'ACQ.TRADE_STATUS_ERROR', 'ACQ.TRADE_NOT_EXIST']);
const TRADE_STATUSES = new Set<AlipayTradeStatus>(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED']);

export function tradeActivities({ call, unexpected }: Gateway): Pick<AlipayActivities, 'precreateTrade' | 'queryTrade' | 'closeTrade' | 'voidTrade'> {
  return {
    async precreateTrade(input) {
      const method = 'alipay.trade.precreate';
      const answer = await call(input.appId, method, {
        notifyUrl: input.notifyUrl,
        bizContent: {
          outTradeNo: input.outTradeNo,
          totalAmount: formatYuan(input.amountFen),
          subject: input.subject,
          timeExpire: input.timeExpire,
          productCode: 'FACE_TO_FACE_PAYMENT',
          ...(input.sellerId ? { sellerId: input.sellerId } : {}),
        },
      });
      if (answer.code !== '10000' || typeof answer.qrCode !== 'string') throw rejected(method, answer);
      return { qrCode: answer.qrCode };
    },

    async queryTrade({ outTradeNo, appId }): Promise<TradeReport | TradeNotFound> {
      const method = 'alipay.trade.query';
      const answer = await call(appId, method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') return toReport(unexpected, answer);
      // Not scanned yet: Alipay only creates the trade when the buyer scans.
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { tradeStatus: 'NOT_EXIST', outTradeNo };
      throw unexpected(method, answer);
    },

    async closeTrade({ outTradeNo, appId }): Promise<CloseOutcome> {
      const method = 'alipay.trade.close';
      const answer = await call(appId, method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') return { outcome: 'closed', tradeNo: answer.tradeNo === undefined ? undefined : String(answer.tradeNo) };
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { outcome: 'not_exist' };
      // Paid or already closed: only a query tells which, and the caller asks it.
      if (answer.subCode === 'ACQ.TRADE_STATUS_ERROR' || answer.subCode === 'ACQ.TRADE_HAS_SUCCESS') {
        return { outcome: 'not_open' };
      }
      throw unexpected(method, answer);
    },

    async voidTrade({ outTradeNo, appId }) {
      const method = 'alipay.trade.cancel';
      const answer = await call(appId, method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') {
        // retry_flag Y: Alipay asks for the same call again.
        if (answer.retryFlag === 'Y') throw ApplicationFailure.retryable(describe(method, answer), 'AlipaySystemError');
        const tradeNo = answer.tradeNo === undefined ? {} : { tradeNo: String(answer.tradeNo) };
        if (answer.action === 'refund') return { action: 'refund', ...tradeNo };
        if (answer.action === 'close' || answer.action === undefined) return { action: 'close', ...tradeNo };
        throw unexpected(method, `unknown action ${String(answer.action)}`);
      }
      if (answer.subCode && FINAL_VOID_REFUSALS.has(answer.subCode)) return { action: 'refused', subCode: answer.subCode };
      throw unexpected(method, answer);
    },
  };
}

/** alipay.trade.query's answer (or alipay.trade.pay's, dressed as one) as a report. */
export function toReport(unexpected: Gateway['unexpected'], answer: GatewayAnswer): TradeReport {
  const status = answer.tradeStatus as AlipayTradeStatus;
  if (!TRADE_STATUSES.has(status)) throw unexpected('alipay.trade.query', `unknown trade_status ${String(status)}`);
  const paidAt = typeof answer.sendPayDate === 'string' ? parseBeijingTime(answer.sendPayDate) : undefined;
  return {
    source: 'query',
    outTradeNo: String(answer.outTradeNo),
    tradeNo: answer.tradeNo === undefined ? undefined : String(answer.tradeNo),
    tradeStatus: status,
    totalAmount: answer.totalAmount === undefined ? undefined : String(answer.totalAmount),
    paidAt: paidAt === undefined ? undefined : new Date(paidAt).toISOString(),
  };
}

/** Final: precreate's parameter and business errors; the order ends PRECREATE_FAILED. */
function rejected(method: string, answer: GatewayAnswer): ApplicationFailure {
  const refusal: AlipayRefusal = { code: answer.code, msg: answer.msg, subCode: answer.subCode, subMsg: answer.subMsg };
  return ApplicationFailure.nonRetryable(describe(method, answer), FAILURE.alipayRejected, refusal);
}
