// Alipay calls through the unmodified alipay-sdk, every answer's RSA2 signature verified.
// Failures are sorted here: transport errors, timeouts, code 20000 and ACQ.SYSTEM_ERROR are
// retryable (Temporal retries them; every call is idempotent by out_trade_no); precreate's
// parameter and business errors are final.
import { ApplicationFailure } from '@temporalio/activity';
import type { AlipaySdk } from 'alipay-sdk';
import type { AlipayActivities, CloseOutcome, TradeNotFound } from '../lib/activities.js';
import { parseBeijingTime } from '../lib/alipay-time.js';
import { formatYuan } from '../lib/money.js';
import type { AlipayTradeStatus, TradeReport } from '../lib/payment.js';

/** alipay-sdk answers in camelCase. */
interface GatewayAnswer {
  code: string;
  msg?: string;
  subCode?: string;
  subMsg?: string;
  [field: string]: unknown;
}

const RETRYABLE_SUB_CODES = new Set(['ACQ.SYSTEM_ERROR', 'isp.unknow-error', 'aop.ACQ.SYSTEM_ERROR']);
const TRADE_STATUSES = new Set<AlipayTradeStatus>(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED']);

function describe(method: string, answer: GatewayAnswer): string {
  return `${method}: ${answer.code} ${answer.msg ?? ''}${answer.subCode ? ` (${answer.subCode}: ${answer.subMsg ?? ''})` : ''}`.trim();
}

export function createAlipayActivities(sdk: AlipaySdk): AlipayActivities {
  /** Returns success and business-error answers; throws for what a retry may fix. */
  async function call(method: string, params: Record<string, unknown>): Promise<GatewayAnswer> {
    let answer: GatewayAnswer;
    try {
      answer = (await sdk.exec(method, params, { validateSign: true })) as unknown as GatewayAnswer;
    } catch (err) {
      // Transport failure, HTTP error, or an answer whose signature does not verify.
      throw ApplicationFailure.retryable(`${method}: ${(err as Error).message}`, 'AlipayUnavailable');
    }
    if (answer.code === '20000' || (answer.subCode && RETRYABLE_SUB_CODES.has(answer.subCode))) {
      throw ApplicationFailure.retryable(describe(method, answer), 'AlipaySystemError');
    }
    return answer;
  }

  /** Final: precreate's parameter and business errors; the order ends PRECREATE_FAILED. */
  function rejected(method: string, answer: GatewayAnswer): ApplicationFailure {
    return ApplicationFailure.nonRetryable(describe(method, answer), 'AlipayRejected', {
      code: answer.code,
      subCode: answer.subCode,
    });
  }

  /** Once a QR code is out, money may move: an answer we cannot place is retried (and shows as a
   *  failing pending activity) until someone fixes its cause, never taken as an outcome. */
  function unexpected(method: string, answer: GatewayAnswer | string): ApplicationFailure {
    const message = typeof answer === 'string' ? `${method}: ${answer}` : describe(method, answer);
    return ApplicationFailure.retryable(message, 'AlipayUnexpectedAnswer');
  }

  function toReport(answer: GatewayAnswer): TradeReport {
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

  return {
    async precreateTrade(input) {
      const method = 'alipay.trade.precreate';
      const answer = await call(method, {
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

    async queryTrade({ outTradeNo }): Promise<TradeReport | TradeNotFound> {
      const method = 'alipay.trade.query';
      const answer = await call(method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') return toReport(answer);
      // Not scanned yet: Alipay only creates the trade when the buyer scans.
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { tradeStatus: 'NOT_EXIST', outTradeNo };
      throw unexpected(method, answer);
    },

    async closeTrade({ outTradeNo }): Promise<CloseOutcome> {
      const method = 'alipay.trade.close';
      const answer = await call(method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') return { outcome: 'closed', tradeNo: answer.tradeNo === undefined ? undefined : String(answer.tradeNo) };
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { outcome: 'not_exist' };
      // Paid or already closed: only a query tells which, and the caller asks it.
      if (answer.subCode === 'ACQ.TRADE_STATUS_ERROR' || answer.subCode === 'ACQ.TRADE_HAS_SUCCESS') {
        return { outcome: 'not_open' };
      }
      throw unexpected(method, answer);
    },

    async voidTrade({ outTradeNo }) {
      const method = 'alipay.trade.cancel';
      const answer = await call(method, { bizContent: { outTradeNo } });
      if (answer.code === '10000') return { action: String(answer.action ?? 'close') };
      throw unexpected(method, answer);
    },
  };
}
