// One refund of one order, keyed by the merchant's out_request_no: reserve the amount in the
// record, ask Alipay, settle. An unknown outcome is asked about and repeated under the same
// out_request_no until Alipay gives one, so money is never sent back twice.
import { allHandlersFinished, condition, log, proxyActivities, proxyLocalActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { AlipayActivities, RefundLedgerActivities, RefundOutcome } from '../lib/activities.js';
import { paymentWorkflowId } from '../lib/payment.js';
import { refundOutcomeUpdate, refundStateQuery, type RefundAnswer, type RefundWorkflowInput } from '../lib/refund.js';
import { errorMessage, isUnplaceable } from './failures.js';

// The reservation runs in the first workflow task, so a refused refund answers at once.
const { reserveRefund } = proxyLocalActivities<RefundLedgerActivities>({
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

/** How long a refund whose answers cannot be placed waits before it asks Alipay again. */
const UNPLACEABLE_PAUSE = '1m';

export async function refundWorkflow(input: RefundWorkflowInput): Promise<RefundAnswer> {
  const paymentId = paymentWorkflowId(input.appId, input.outTradeNo);
  let answer: RefundAnswer | undefined;
  let eventSeq = 0;
  const eventKey = () => `${workflowInfo().runId}:${++eventSeq}`;
  setHandler(refundStateQuery, () => answer);
  setHandler(refundOutcomeUpdate, async () => {
    await condition(() => answer !== undefined && (!answer.ok || answer.refund.status !== 'PENDING'));
    return answer!;
  });

  // 1. Reserve the amount before Alipay hears of it.
  const reservation = await reserveRefund({ ...input, paymentId, eventKey: eventKey() });
  if (reservation.outcome === 'refused') {
    answer = { ok: false, code: reservation.code, message: reservation.message, refundableFen: reservation.refundableFen };
    return finish();
  }
  answer = { ok: true, refund: reservation.refund };
  if (reservation.refund.status !== 'PENDING') return finish(); // settled by an earlier run

  // 2. Ask Alipay; retried under the same out_request_no while the outcome is unknown.
  const outcome = await askAlipay();

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
