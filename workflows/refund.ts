// One refund of one order, keyed by the merchant's out_request_no: reserve the amount in the
// record, ask Alipay, settle. An unknown outcome is asked about and repeated under the same
// out_request_no until Alipay gives one, so money is never sent back twice.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { AlipayActivities, RefundLedgerActivities, RefundOutcome } from '../lib/payments/activity-contracts.js';
import { formatYuan } from '../lib/payments/money.js';
import { paymentWorkflowId } from '../lib/payments/payment.js';
import { PASSING_REFUND_REFUSALS, refundOutcomeUpdate, refundStateQuery, type RefundAnswer, type RefundWorkflowInput } from '../lib/payments/refund.js';
import { ledger } from './durable-calls.js';
import { errorMessage, isUnplaceable } from './failures.js';

// The reservation runs in the first workflow task, so a refused refund answers at once.
const { reserveRefund, lateRefundRetryPolicy } = proxyLocalActivities<RefundLedgerActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});
const { refundTrade } = proxyActivities<AlipayActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '1m' },
});
const { settleRefund } = proxyActivities<RefundLedgerActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});
const { recordPaymentEvent } = ledger;

/** How long a refund whose answers cannot be placed waits before it asks Alipay again. */
const UNPLACEABLE_PAUSE = '1m';

export async function refundWorkflow(input: RefundWorkflowInput): Promise<RefundAnswer> {
  const paymentId = paymentWorkflowId(input.appId, input.outTradeNo);
  let answer: RefundAnswer | undefined;
  let eventSeq = 0;
  const eventKey = () => `${workflowInfo().runId}:${++eventSeq}`;
  setHandler(refundStateQuery, () => answer);
  setHandler(
    refundOutcomeUpdate,
    async () => {
      await condition(() => answer !== undefined && (!answer.ok || answer.refund.status !== 'PENDING'));
      return answer!;
    },
    {
      // The same number asked at once with another amount joins this run: it is another refund.
      validator: (request) => {
        if (request && request.amountFen !== input.amountFen) {
          throw ApplicationFailure.nonRetryable(`refund ${input.outRequestNo} exists with amount ${formatYuan(input.amountFen)}`, 'RefundConflict');
        }
      },
    },
  );

  // 1. Reserve the amount before Alipay hears of it.
  const reservation = await reserveRefund({ ...input, paymentId, eventKey: eventKey() });
  if (reservation.outcome === 'refused') {
    answer = { ok: false, code: reservation.code, message: reservation.message, refundableFen: reservation.refundableFen };
    return finish();
  }
  answer = { ok: true, refund: reservation.refund };
  if (reservation.refund.status !== 'PENDING') return finish(); // settled by an earlier run

  // 2. Ask Alipay; retried under the same out_request_no while the outcome is unknown, and (money
  //    paid after its order closed) while Alipay's refusal can pass.
  let outcome = await askAlipay();
  let refusals = 0;
  if (input.kind === 'late_payment' && outcome.outcome === 'refused') {
    const policy = await lateRefundRetryPolicy();
    const giveUpAt = Date.now() + policy.windowMs;
    let wait = policy.firstMs;
    while (outcome.outcome === 'refused' && PASSING_REFUND_REFUSALS.includes(outcome.subCode) && Date.now() + wait <= giveUpAt) {
      refusals += 1;
      const lastRefusal = { subCode: outcome.subCode, message: outcome.message, at: new Date().toISOString(), attempts: refusals, nextAttemptAt: new Date(Date.now() + wait).toISOString() };
      await recordPaymentEvent({
        paymentId,
        eventKey: eventKey(),
        type: 'refund_refused',
        data: { outRequestNo: input.outRequestNo, amountFen: input.amountFen, ...lastRefusal },
        change: { latePayment: { tradeNo: input.tradeNo!, refundStatus: 'PENDING', lastRefusal } },
      });
      await sleep(wait);
      wait = Math.min(wait * 2, policy.maxMs);
      outcome = await askAlipay();
    }
    if (outcome.outcome === 'refused') refusals += 1;
  }

  // 3. Settle: a refusal releases the reserved amount.
  const refund = await settleRefund({
    paymentId,
    outRequestNo: input.outRequestNo,
    eventKey: eventKey(),
    settlement:
      outcome.outcome === 'succeeded'
        ? { status: 'SUCCEEDED', fundChange: outcome.fundChange, ...(outcome.refundedAt ? { refundedAt: outcome.refundedAt } : {}) }
        : { status: 'FAILED', failureReason: `${outcome.subCode}: ${outcome.message}` },
  });
  answer = { ok: true, refund };

  // 4. Money paid after its order closed that Alipay will not give back stays with the merchant:
  //    the order goes to REVIEW, where an operator finds it and decides.
  if (input.kind === 'late_payment' && outcome.outcome === 'refused') {
    const reason =
      `late payment of ${formatYuan(input.amountFen)} (trade ${input.tradeNo ?? '?'}) is held at Alipay: ` +
      `its refund ${input.outRequestNo} was refused (${outcome.subCode}: ${outcome.message})` +
      (refusals > 1 ? ` ${refusals} times` : '') +
      '; resolve as PAID to keep it, or as CLOSED to send the refund again';
    log.error('LATE PAYMENT REFUND REFUSED: order sent to review', { outRequestNo: input.outRequestNo, subCode: outcome.subCode });
    await recordPaymentEvent({ paymentId, eventKey: eventKey(), type: 'anomaly', data: { reason, refusal: { ...outcome } }, change: { status: 'REVIEW', reason } });
  }
  return finish();

  async function askAlipay(): Promise<RefundOutcome> {
    for (;;) {
      try {
        return await refundTrade({
          appId: input.appId,
          outTradeNo: input.outTradeNo,
          outRequestNo: input.outRequestNo,
          amountFen: input.amountFen,
          reason: input.reason,
        });
      } catch (err) {
        if (!isUnplaceable(err)) throw err;
        // Money may have moved: the refund stays PENDING, never FAILED, until Alipay says which.
        log.error('refund outcome cannot be placed; asking again later', { outRequestNo: input.outRequestNo, detail: errorMessage(err) });
        await sleep(UNPLACEABLE_PAUSE);
      }
    }
  }

  async function finish(): Promise<RefundAnswer> {
    await condition(allHandlersFinished);
    return answer!;
  }
}
