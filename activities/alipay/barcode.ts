// The barcode order's charge: the sealed payment code opened, then alipay.trade.pay, whose every
// answer is sorted into an outcome (an unknown one is settled by queries, not here).
import { ApplicationFailure } from '@temporalio/activity';
import { FAILURE, type AlipayActivities, type ChargeOutcome } from '../../lib/payments/activity-contracts.js';
import { formatYuan } from '../../lib/payments/money.js';
import type { PaymentCodeOpener } from '../../lib/alipay/payment-code.js';
import { describe, type Gateway, type GatewayAnswer } from './gateway.js';
import { toReport } from './trades.js';

/** alipay.trade.pay refusals that say a trade under this out_trade_no exists: a query decides. */
const PAY_REFUSALS_ABOUT_THE_TRADE = new Set(['ACQ.TRADE_HAS_SUCCESS', 'ACQ.TRADE_STATUS_ERROR', 'ACQ.TRADE_HAS_CLOSE']);

export function chargeActivities({ call, unexpected }: Gateway, paymentCodes: PaymentCodeOpener | undefined): Pick<AlipayActivities, 'chargePaymentCode'> {
  return {
    async chargePaymentCode(input): Promise<ChargeOutcome> {
      const authCode = paymentCodes?.open(input.sealedCode, input.orderId);
      if (authCode === undefined) {
        // Nothing was sent to Alipay: the order fails, and the buyer's money never moved.
        throw ApplicationFailure.nonRetryable(
          paymentCodes
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
          return { outcome: 'paid', report: { ...toReport(unexpected, { ...answer, tradeStatus: 'TRADE_SUCCESS', sendPayDate: answer.gmtPayment }), source: 'pay' } };
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
  };
}
