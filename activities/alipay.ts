// Alipay calls through the unmodified alipay-sdk, every answer's RSA2 signature verified.
// Failures are sorted here: transport errors, timeouts, HTTP errors, code 20000 and
// ACQ.SYSTEM_ERROR mean Alipay is unavailable and are retried for as long as it takes (every
// call is idempotent by out_trade_no); precreate's parameter and business errors are final; an
// answer that cannot be placed is retried for a bounded time, then reported as unplaceable.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AlipaySdk } from 'alipay-sdk';
import {
  FAILURE,
  type AlipayActivities,
  type AlipayRefusal,
  type ChargeOutcome,
  type CloseOutcome,
  type RefundOutcome,
  type TradeNotFound,
} from '../lib/payments/activity-contracts.js';
import { parseBeijingTime } from '../lib/alipay/time.js';
import { formatYuan } from '../lib/payments/money.js';
import type { AlipayTradeStatus, TradeReport } from '../lib/payments/payment.js';
import type { PaymentCodeOpener } from '../lib/alipay/payment-code.js';
import { countGatewayCall, type GatewayResult } from './metrics.js';

/** alipay-sdk answers in camelCase. */
export interface GatewayAnswer {
  code: string;
  msg?: string;
  subCode?: string;
  subMsg?: string;
  [field: string]: unknown;
}

export const RETRYABLE_SUB_CODES = new Set(['ACQ.SYSTEM_ERROR', 'isp.unknow-error', 'aop.ACQ.SYSTEM_ERROR']);
/** alipay.trade.cancel refusals that no retry changes. */
const FINAL_VOID_REFUSALS = new Set(['ACQ.TRADE_CANCEL_TIME_OUT', 'ACQ.CANCEL_NOT_ALLOWED', 'ACQ.TRADE_STATUS_ERROR', 'ACQ.TRADE_NOT_EXIST']);

export interface AlipayActivityOptions {
  /** How long an answer that cannot be placed is retried before it is reported as unplaceable. */
  unplaceableRetryMs: number;
  /** Opens the payment codes the API sealed (DURAPAY_MASTER_KEY); unset: barcode orders fail. */
  paymentCodes?: PaymentCodeOpener;
}

/** alipay.trade.pay refusals that say a trade under this out_trade_no exists: a query decides. */
const PAY_REFUSALS_ABOUT_THE_TRADE = new Set(['ACQ.TRADE_HAS_SUCCESS', 'ACQ.TRADE_STATUS_ERROR', 'ACQ.TRADE_HAS_CLOSE']);

/** alipay-sdk's errors before any answer was read: the gateway could not be reached or failed. */
export function isTransportFailure(err: unknown): boolean {
  const message = (err as Error).message ?? '';
  return message.startsWith('HttpClient Request error') || message.startsWith('HTTP 请求错误');
}
const TRADE_STATUSES = new Set<AlipayTradeStatus>(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED']);

/** gmt_refund_pay, Beijing time "yyyy-MM-dd HH:mm:ss" (sometimes with milliseconds), as ISO. */
function refundTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const at = parseBeijingTime(value.slice(0, 19));
  return at === undefined ? undefined : new Date(at).toISOString();
}
const withTime = (refundedAt: string | undefined) => (refundedAt ? { refundedAt } : {});

/** When the running activity was first scheduled; undefined outside an activity. */
function activityScheduledAt(): number | undefined {
  try {
    return Context.current().info.scheduledTimestampMs;
  } catch {
    return undefined;
  }
}

export function describe(method: string, answer: GatewayAnswer): string {
  return `${method}: ${answer.code} ${answer.msg ?? ''}${answer.subCode ? ` (${answer.subCode}: ${answer.subMsg ?? ''})` : ''}`.trim();
}

/** Each app's signing client (lib/alipay/apps.ts): the configured app when none is named. */
export interface AlipayClients {
  client(appId?: string): Promise<AlipaySdk | undefined>;
}

export function createAlipayActivities(apps: AlipayClients, options: AlipayActivityOptions): AlipayActivities {
  /** Returns success and business-error answers; throws for what a retry may fix. */
  async function call(appId: string | undefined, method: string, params: Record<string, unknown>): Promise<GatewayAnswer> {
    const sdk = await apps.client(appId);
    // An order of an app this engine no longer has: pending (and visible) until the app is back.
    if (!sdk) throw ApplicationFailure.retryable(`${method}: no Alipay app ${appId} is configured or registered`, 'AlipayAppUnknown');
    const started = performance.now();
    const count = (result: GatewayResult, subCode?: string) => countGatewayCall(method, result, (performance.now() - started) / 1000, subCode);
    let answer: GatewayAnswer;
    try {
      answer = (await sdk.exec(method, params, { validateSign: true })) as unknown as GatewayAnswer;
    } catch (err) {
      if (isTransportFailure(err)) {
        count('transport_error');
        throw ApplicationFailure.retryable(`${method}: ${(err as Error).message}`, 'AlipayUnavailable');
      }
      // A body that does not parse or whose signature does not verify (an unsigned error_response).
      count('unverifiable');
      throw unexpected(method, `unverifiable answer: ${(err as Error).message}`);
    }
    if (answer.code === '20000' || (answer.subCode && RETRYABLE_SUB_CODES.has(answer.subCode))) {
      count('unavailable');
      throw ApplicationFailure.retryable(describe(method, answer), 'AlipaySystemError');
    }
    if (answer.code === '10000') count('success');
    else if (answer.code === '10003') count('waiting');
    else count('business_failure', answer.subCode ?? answer.code);
    return answer;
  }

  /** Final: precreate's parameter and business errors; the order ends PRECREATE_FAILED. */
  function rejected(method: string, answer: GatewayAnswer): ApplicationFailure {
    const refusal: AlipayRefusal = { code: answer.code, msg: answer.msg, subCode: answer.subCode, subMsg: answer.subMsg };
    return ApplicationFailure.nonRetryable(describe(method, answer), FAILURE.alipayRejected, refusal);
  }

  /** Once a QR code is out, money may move: an answer we cannot place is never taken as an
   *  outcome. It is retried (a failing pending activity in the UI) for a bounded time, in case it
   *  was transient; after that it is reported as unplaceable and the workflow decides. */
  function unexpected(method: string, answer: GatewayAnswer | string): ApplicationFailure {
    const message = typeof answer === 'string' ? `${method}: ${answer}` : describe(method, answer);
    // Outside an activity (the worker's poll sweeper) there is no retry to bound: no news.
    const scheduledTimestampMs = activityScheduledAt() ?? Date.now();
    if (Date.now() - scheduledTimestampMs >= options.unplaceableRetryMs) {
      return ApplicationFailure.nonRetryable(message, FAILURE.alipayUnplaceable);
    }
    return ApplicationFailure.retryable(message, FAILURE.alipayUnexpected);
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
      if (answer.code === '10000') return toReport(answer);
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

    async chargePaymentCode(input): Promise<ChargeOutcome> {
      const authCode = options.paymentCodes?.open(input.sealedCode, input.orderId);
      if (authCode === undefined) {
        // Nothing was sent to Alipay: the order fails, and the buyer's money never moved.
        throw ApplicationFailure.nonRetryable(
          options.paymentCodes
            ? "the payment code's seal does not open with this worker's DURAPAY_MASTER_KEY (the API's differs)"
            : 'this worker has no DURAPAY_MASTER_KEY to open payment codes with',
          FAILURE.paymentCodeUnreadable,
        );
      }
      const method = 'alipay.trade.pay';
      let answer: GatewayAnswer;
      try {
        answer = await call(input.appId, method, {
          notifyUrl: input.notifyUrl,
          bizContent: {
            outTradeNo: input.outTradeNo,
            scene: 'bar_code',
            authCode,
            totalAmount: formatYuan(input.amountFen),
            subject: input.subject,
            productCode: 'FACE_TO_FACE_PAYMENT',
            ...(input.sellerId ? { sellerId: input.sellerId } : {}),
          },
        });
      } catch (err) {
        // No answer, 20000, ACQ.SYSTEM_ERROR, an unverifiable body: the money may have moved.
        return { outcome: 'unknown', detail: err instanceof Error ? err.message : String(err) };
      }
      if (answer.code === '10000') {
        try {
          return { outcome: 'paid', report: { ...toReport({ ...answer, tradeStatus: 'TRADE_SUCCESS', sendPayDate: answer.gmtPayment }), source: 'pay' } };
        } catch (err) {
          return { outcome: 'unknown', detail: (err as Error).message };
        }
      }
      if (answer.code === '10003') return { outcome: 'confirming', ...(answer.tradeNo === undefined ? {} : { tradeNo: String(answer.tradeNo) }) };
      if ((answer.code === '40004' || answer.code === '40002') && !(answer.subCode && PAY_REFUSALS_ABOUT_THE_TRADE.has(answer.subCode))) {
        return { outcome: 'refused', refusal: { code: answer.code, msg: answer.msg, subCode: answer.subCode, subMsg: answer.subMsg } };
      }
      return { outcome: 'unknown', detail: describe(method, answer) };
    },

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
