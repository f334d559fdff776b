// One Alipay face-to-face payment, to PAID, CLOSED or FAILED: a QR code the buyer scans, or the
// buyer's payment code the cashier scans (barcode). Reads top to bottom as the business process;
// every side effect is an activity, every duration an input.
import {
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  FAILURE,
  type AlipayActivities,
  type ChargeOutcome,
  type LedgerActivities,
  type NotifyActivities,
  type OpenOrderOutcome,
  type OpenOutcome,
  type OrderOpeningActivities,
  type PaymentChange,
  type PaymentEventInput,
  type PaymentEventType,
  type PaymentRecord,
  type TradeNotFound,
} from '../lib/payments/activity-contracts.js';
import { formatBeijingTime } from '../lib/alipay/time.js';
import { formatYuan, parseAlipayAmount } from '../lib/payments/money.js';
import {
  alipayNotifySignal,
  alipayReportOf,
  alipayTradeChangedSignal,
  cancelPaymentUpdate,
  createPaymentUpdate,
  FINAL_STATUSES,
  isPaidReport as isPaid,
  paymentStateQuery,
  queryNowUpdate,
  resolveReviewUpdate,
  searchAttributes,
  type OperatorRequest,
  type PaymentOrder,
  type PaymentView,
  type LatePayment,
  type PaymentWorkflowInput,
  type ReviewResolution,
  type SignedNotify,
  type TradeReport,
} from '../lib/payments/payment.js';
import type { Finding } from '../lib/payments/findings.js';
import { reconciliationFindingsSignal } from '../lib/payments/reconciliation.js';
import { alipay, ledger } from './durable-calls.js';
import { alipayRefusal, errorMessage, failureType, isUnexpectedAnswer, isUnplaceable } from './failures.js';
import { settleLatePayment } from './late-payment.js';
import { applyFinding } from './reconciliation-findings.js';
import { notInReview, resolveReviewedOrder, validateResolution } from './review.js';

// The first workflow task claims the order number, precreates and records the QR code in one local
// activity, so the API's create answers after one Temporal round trip plus Alipay's own time.
const { openOrder } = proxyLocalActivities<OrderOpeningActivities>({
  startToCloseTimeout: '10s',
  // The activity makes Alipay's failures final after a bounded retry; the read model is retried
  // for as long as it takes.
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s', nonRetryableErrorTypes: [FAILURE.alipayRejected] },
});
const local = proxyLocalActivities<LedgerActivities & NotifyActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});
// One quick try at Alipay inside the workflow task that needs the answer: a poll costs one task,
// and so does a close when Alipay answers at once. Short, because notifies wait while it runs.
const quick = proxyLocalActivities<AlipayActivities>({
  startToCloseTimeout: '3s',
  retry: { maximumAttempts: 1 },
});

// After the QR code is out, Alipay calls that decide an order must eventually succeed: when the
// quick try fails, they go through `alipay` (durable-calls.ts), retried without limit, visible as
// pending activities in the UI while Alipay is down.

// alipay.trade.pay is sent by one attempt: when its outcome is unknown (no answer, a worker gone),
// the trade is queried and, failing that, cancelled; never charged again. (alipay-sdk's HTTP client
// repeats a request once on a reset connection; the out_trade_no makes that repeat charge nothing.)
const { chargePaymentCode: chargeAtAlipay } = proxyActivities<AlipayActivities>({
  startToCloseTimeout: '15s',
  retry: { maximumAttempts: 1 },
});
const { recordPaymentEvents, findPaymentRecord } = ledger;
type Settlement = { kind: 'paid'; report: TradeReport; notifiedAtMs?: number } | { kind: 'alipay_closed' } | { kind: 'deadline' } | { kind: 'cancel' };
type CloseReason = 'deadline' | 'cancel';

export async function paymentWorkflow({
  order,
  timings,
  latePaymentPolicy,
  resume,
}: PaymentWorkflowInput): Promise<PaymentView> {
  const paymentId = workflowInfo().workflowId;
  const isBarcode = order.method === 'barcode';
  // Alipay's out_trade_no: the merchant's number prefixed with the merchant.
  const alipayNo = order.alipayOutTradeNo;
  const deadline = resume?.deadline ?? Date.now() + timings.orderTimeoutMs;
  const state: PaymentView = resume?.state ?? {
    appId: order.appId,
    outTradeNo: order.outTradeNo,
    status: 'AWAITING_PAYMENT',
    amountFen: order.amountFen,
    subject: order.subject,
    expiresAt: new Date(deadline).toISOString(),
  };
  // The create can answer: the QR code is out (or precreate failed), or the barcode order is claimed.
  let createAnswerable = resume !== undefined;
  // Barcode: when the first query of the trade comes (at once when alipay.trade.pay's outcome is unknown).
  let firstQueryAt: number | undefined;
  let cancelRequested = false;
  const notifies: SignedNotify[] = [...(resume?.notifies ?? [])];
  // The poll sweeper saw news at Alipay: the next query comes now.
  let tradeChanged = false;
  // A reconciliation's findings: taken in while waiting (they only make the next query come now)
  // and acted on once the order has settled.
  const findings: Finding[] = [];
  const heldFindings: Finding[] = [...(resume?.findings ?? [])];
  // Operators: queries asked for now (each answered once a query has run), and decisions on REVIEW.
  const queryNowRequests: OperatorRequest[] = [];
  let queryNowAsked = 0;
  let queryNowAnswered = 0;
  const reviewResolutions: ReviewResolution[] = [];
  let resolutionsAsked = 0;
  let resolutionsDone = 0;
  // Resolutions that found the order decided already (a retried request behind the first one).
  const resolutionsTooLate = new Set<number>();
  let eventSeq = 0;
  const noted: PaymentEventInput[] = [];
  /** Barcode: when this run's pay call started (workflow time), the start of its pay→PAID latency. */
  let payStartedAt: number | undefined;
  const isFinal = () => FINAL_STATUSES.includes(state.status);

  setHandler(paymentStateQuery, () => state);
  setHandler(
    createPaymentUpdate,
    async () => {
      await condition(() => createAnswerable);
      // A barcode create answers with the outcome, or AWAITING_PAYMENT while the buyer confirms.
      if (isBarcode) await condition(isFinal, Math.max(timings.answerWithinMs ?? 0, 1));
      return state;
    },
    {
      // The same order number with another amount, subject, method or payment code is a different
      // order: refuse it (a repeat never charges twice).
      validator: (request) => {
        const sameOrder =
          request.amountFen === order.amountFen &&
          request.subject === order.subject &&
          (request.method ?? 'qr') === (order.method ?? 'qr') &&
          request.paymentCodeFingerprint === order.paymentCode?.fingerprint;
        if (!sameOrder) {
          throw ApplicationFailure.nonRetryable(
            `order ${order.outTradeNo} already exists with a different amount, subject, method or payment code`,
            'OrderConflict',
          );
        }
      },
    },
  );
  setHandler(
    cancelPaymentUpdate,
    async () => {
      cancelRequested = true;
      await condition(isFinal);
      return state;
    },
    {
      validator: () => {
        if (state.status === 'PAID' || state.status === 'REVIEW') {
          throw ApplicationFailure.nonRetryable(`order ${order.outTradeNo} is ${state.status}`, 'NotCancellable');
        }
      },
    },
  );
  // Accepted as it came; nothing is believed before readNotify has checked Alipay's signature.
  setHandler(alipayNotifySignal, (notify) => {
    notifies.push(notify);
  });
  setHandler(alipayTradeChangedSignal, () => {
    tradeChanged = true;
  });
  setHandler(
    queryNowUpdate,
    async (request) => {
      queryNowRequests.push(request ?? {});
      const ticket = ++queryNowAsked;
      await condition(() => queryNowAnswered >= ticket || isFinal());
      return state;
    },
    {
      validator: (_request) => {
        if (isFinal()) throw ApplicationFailure.nonRetryable(`order ${order.outTradeNo} is ${state.status}: it waits for no payment`, 'NotWaiting');
      },
    },
  );
  setHandler(
    resolveReviewUpdate,
    async (resolution) => {
      reviewResolutions.push(resolution);
      const ticket = ++resolutionsAsked;
      // Answered once carried out: settled, or still in REVIEW when Alipay refused the refund.
      await condition(() => resolutionsDone >= ticket);
      if (resolutionsTooLate.has(ticket)) throw notInReview(order.outTradeNo, state.status);
      return state;
    },
    {
      validator: (resolution) => {
        if (state.status !== 'REVIEW') throw notInReview(order.outTradeNo, state.status);
        validateResolution(resolution);
      },
    },
  );
  setHandler(reconciliationFindingsSignal, (signalled) => {
    findings.push(...(Array.isArray(signalled?.findings) ? signalled.findings : []));
  });

  /** The ledger entry of one event; keyed by run and sequence, so a retried write lands once. */
  function event(type: PaymentEventType, data: Record<string, unknown>, change?: PaymentChange) {
    return { paymentId, eventKey: `${workflowInfo().runId}:${++eventSeq}`, type, data, change };
  }
  /** Appends to payment_events and moves the read model. An activity of its own, never a local
   *  one after the first task: a workflow task that fails (a signal arriving as the run completes,
   *  a worker dying) runs again and may take another path, and what its local activities had
   *  written would stay in the ledger as events that never happened. */
  async function record(type: PaymentEventType, data: Record<string, unknown>, change?: PaymentChange) {
    await recordPaymentEvents([...noted.splice(0), event(type, data, change)]);
  }
  /** An event that goes to the ledger with the next one this step records: what a step found
   *  (a notify, a query, a close) and what it decided land in one activity and one transaction.
   *  Written on its own before the workflow waits for anything. */
  async function note(type: PaymentEventType, data: Record<string, unknown>, change?: PaymentChange) {
    noted.push(event(type, data, change));
  }
  async function writeNoted() {
    if (noted.length > 0) await recordPaymentEvents(noted.splice(0));
  }

  /** Moves the in-memory state, after the read model: a create or cancel answering from it
   *  never gets ahead of what GET /v1/payments shows. */
  function moveTo(change: PaymentChange) {
    const { latePayment, ...rest } = change;
    Object.assign(state, rest);
    // Merged as the read model merges it (merge_late_payment): never replaced by an older state.
    if (latePayment) {
      const held = state.latePayment;
      state.latePayment =
        held && held.tradeNo === latePayment.tradeNo
          ? { ...held, ...latePayment, detectedAt: held.detectedAt, ...(held.refundStatus === 'SUCCEEDED' ? { refundStatus: 'SUCCEEDED' } : {}) }
          : (held ?? (latePayment as LatePayment));
    }
    upsertSearchAttributes([
      { key: searchAttributes.paymentStatus, value: state.status },
      ...(state.alipayTradeNo ? [{ key: searchAttributes.alipayTradeNo, value: state.alipayTradeNo }] : []),
    ]);
  }

  // 1. Claim the order number, then ask Alipay for the QR code, or charge the buyer's payment code
  //    (a continued run has done this).
  if (!resume) {
    const waiting = isBarcode ? await chargePaymentCode() : await issueQrCode();
    createAnswerable = true;
    if (!waiting) return finish();
  }

  // 2. Wait for the buyer to pay, or to confirm on the phone: a notify, a merchant cancel, or the
  //    next query; until the deadline.
  const settlement = await awaitPaymentOrDeadline();

  // 3. Settle.
  if (settlement.kind === 'paid') {
    await confirmPayment(settlement.report, paidLatencyOf(settlement.notifiedAtMs));
  } else if (settlement.kind === 'alipay_closed') {
    await markClosed('closed at Alipay');
  } else {
    await closeUnpaidOrder(settlement.kind);
  }
  return finish();

  /** The read model is the record of used order numbers: a finished order is never reopened,
   *  even after Temporal has forgotten its workflow. */
  function claimOfOrderNumber({ subject, notifyUrl }: Pick<PaymentOrder, 'subject' | 'notifyUrl'> = order) {
    const paymentCode = order.paymentCode && { masked: order.paymentCode.masked, fingerprint: order.paymentCode.fingerprint };
    return {
      ...event('created', { amountFen: order.amountFen, subject, expiresAt: state.expiresAt, ...(paymentCode ? { method: 'barcode', authCode: paymentCode.masked } : {}) }),
      create: {
        appId: order.appId,
        outTradeNo: order.outTradeNo,
        alipayOutTradeNo: alipayNo,
        notifyUrl,
        amountFen: order.amountFen,
        subject,
        expiresAt: state.expiresAt,
        merchantId: order.merchantId,
        ...(paymentCode ? { method: 'barcode' as const, paymentCode } : {}),
        // A QR order's ladder of polls is the worker's poll sweeper's, read from the read model.
        ...(isBarcode ? {} : { pollLadderMs: timings.pollLadderMs }),
      },
    };
  }

  /** True when a QR code is out and the buyer may pay; false when the order is already settled. */
  async function issueQrCode(): Promise<boolean> {
    const timeExpire = formatBeijingTime(deadline);
    const claim = claimOfOrderNumber();
    const precreate = { appId: order.appId, outTradeNo: alipayNo, amountFen: order.amountFen, subject: order.subject, timeExpire, notifyUrl: order.alipayNotifyUrl, sellerId: order.sellerId };
    try {
      const opened = await openOrderWhenReadModelAnswers({ claim, precreate, issued: event('qr_issued', { timeExpire }) });
      if (!opened.opened) return takeRecorded(opened.record);
      state.qrCode = opened.qrCode;
      return true;
    } catch (err) {
      if (failureType(err) === FAILURE.orderDataUnstorable) return reviewUnstorableOrder(err);
      const refusal = alipayRefusal(err);
      if (refusal?.subCode === 'ACQ.TRADE_HAS_SUCCESS') {
        // Alipay already holds a payment under this order number: confirm or flag it, never fail it.
        const report = await queryTrade();
        if (isPaid(report)) {
          await confirmPayment(report);
          return false;
        }
      }
      // Merchants hear Alipay's own code and message; transport detail stays in history and logs.
      const reason = refusal
        ? `Alipay refused the order: ${refusal.subCode ?? refusal.code} ${refusal.subMsg ?? refusal.msg ?? ''}`.trim()
        : 'Alipay could not be reached to issue a QR code';
      const detail = errorMessage(err);
      log.warn('precreate failed', { outTradeNo: order.outTradeNo, detail });
      const change: PaymentChange = { status: 'PRECREATE_FAILED', reason };
      await local.recordPaymentEvent(event('precreate_failed', { reason, detail }, change));
      moveTo(change);
      return false;
    }
  }

  /** Barcode: true while the buyer may still confirm or the outcome is unknown; false once settled. */
  async function chargePaymentCode(): Promise<boolean> {
    let claimed: OpenOutcome;
    try {
      claimed = await local.openPayment(claimOfOrderNumber());
    } catch (err) {
      if (failureType(err) !== FAILURE.orderDataUnstorable) throw err;
      return reviewUnstorableOrder(err);
    }
    if (!claimed.opened) return takeRecorded(claimed.record);
    createAnswerable = true;
    let charged: ChargeOutcome;
    payStartedAt = Date.now();
    try {
      charged = await chargeAtAlipay({
        appId: order.appId,
        outTradeNo: alipayNo,
        amountFen: order.amountFen,
        subject: order.subject,
        sealedCode: order.paymentCode!.sealed,
        orderId: paymentId,
        notifyUrl: order.alipayNotifyUrl,
        sellerId: order.sellerId,
      });
    } catch (err) {
      if (failureType(err) === FAILURE.paymentCodeUnreadable) {
        await markFailed(`the payment code could not be read, so nothing was sent to Alipay: ${errorMessage(err)}`);
        return false;
      }
      // Timed out, or the worker died during the call: the money may have moved.
      charged = { outcome: 'unknown', detail: errorMessage(err) };
    }
    await note('pay_result', { authCode: order.paymentCode!.masked, ...payResultData(charged) });
    switch (charged.outcome) {
      case 'paid':
        await confirmPayment(charged.report, paidLatencyOf());
        return false;
      case 'refused': {
        const { code, subCode, subMsg, msg } = charged.refusal;
        await markFailed(`Alipay refused the payment: ${subCode ?? code} ${subMsg ?? msg ?? ''}`.trim(), subCode ?? code);
        return false;
      }
      case 'confirming':
        return true;
      case 'unknown':
        // Alipay's rule for an unknown outcome: ask it, then cancel what stays unknown.
        log.warn('barcode payment outcome unknown; querying', { outTradeNo: order.outTradeNo, detail: charged.detail });
        firstQueryAt = Date.now();
        return true;
    }
  }

  /** The order number is taken: the record says what the order is. */
  function takeRecorded(record: PaymentRecord): false {
    Object.assign(state, record);
    moveTo({ status: record.status });
    return false;
  }

  /** PostgreSQL refused the order's own data at the claim (a lone surrogate, a NUL): no retry
   *  changes that, and nothing was sent to Alipay. The order is claimed with its text made storable
   *  and goes to REVIEW, where operators see why and close it. Data that even this cannot store (an
   *  amount that is not positive) fails the run, with PostgreSQL's refusal in its history. */
  async function reviewUnstorableOrder(err: unknown): Promise<false> {
    const reason = `PostgreSQL refused the order's data: ${errorMessage(err)}; nothing was sent to Alipay`;
    log.warn('order data refused; the order goes to REVIEW', { outTradeNo: order.outTradeNo, reason });
    const claimed = await local.openPayment(claimOfOrderNumber(storableTexts(order)));
    if (!claimed.opened) return takeRecorded(claimed.record);
    await flagForReview(reason);
    return false;
  }

  /** The order opening, tried again while our own PostgreSQL is out: those attempts never count
   *  against Alipay, whose give-up counts only the attempts of one opening. The create waiting
   *  on it answers 503 TRY_AGAIN at its answer time meanwhile. */
  async function openOrderWhenReadModelAnswers(input: Parameters<OrderOpeningActivities['openOrder']>[0]): Promise<OpenOrderOutcome> {
    for (let wait = 200; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        return await openOrder(input);
      } catch (err) {
        if (failureType(err) !== FAILURE.readModelUnavailable) throw err;
        log.warn('order opening waits for the read model', { outTradeNo: order.outTradeNo, detail: errorMessage(err) });
        await sleep(wait);
      }
    }
  }

  async function awaitPaymentOrDeadline(): Promise<Settlement> {
    let pollStep = resume?.pollStep ?? 0;
    // QR orders are swept: they query only when the sweeper saw news, an operator asks, or a
    // reconciliation found something; otherwise the next look at Alipay is the deadline's. Barcode
    // orders query on their own ladder while the buyer confirms.
    const nextStep = () => (isBarcode ? Date.now() + timings.pollLadderMs[Math.min(pollStep, timings.pollLadderMs.length - 1)]! : deadline);
    let nextPollAt = resume?.nextPollAt ?? firstQueryAt ?? nextStep();
    for (;;) {
      // Only between messages: a running cancel waits for the order to settle in this run.
      if (historyIsLong() && allHandlersFinished()) await continueWaitingAsNew(pollStep, nextPollAt);
      const wakeAt = Math.min(nextPollAt, deadline);
      await writeNoted();
      // condition() with a zero timeout would never time out; wake at least a millisecond later.
      await condition(
        () => notifies.length > 0 || cancelRequested || findings.length > 0 || queryNowAsked > queryNowAnswered || tradeChanged,
        Math.max(wakeAt - Date.now(), 1),
      );
      if (tradeChanged) {
        tradeChanged = false;
        nextPollAt = Date.now();
      }
      if (queryNowAsked > queryNowAnswered) {
        // An operator asked: Alipay is queried now, whatever the ladder says.
        for (const request of queryNowRequests.splice(0)) await note('operator_action', { action: 'query_now', ...request });
        nextPollAt = Date.now();
      }
      if (findings.length > 0) {
        // Alipay's bill says something about this order: its own query, now, says what.
        heldFindings.push(...findings.splice(0));
        nextPollAt = Date.now();
      }
      if (cancelRequested) {
        await note('cancel_requested', {});
        return { kind: 'cancel' };
      }
      for (let notify = notifies.shift(); notify; notify = notifies.shift()) {
        const report = await readNotify(notify);
        if (report && isPaid(report)) return { kind: 'paid', report, notifiedAtMs: notify.receivedAtMs };
        if (report?.tradeStatus === 'TRADE_CLOSED') nextPollAt = Date.now(); // let a query confirm it
      }
      if (Date.now() >= deadline) return { kind: 'deadline' };
      if (Date.now() >= nextPollAt) {
        const asked = queryNowAsked;
        const report = await pollTrade();
        // An operator who asked hears the outcome once it is settled, or now if nothing changed.
        if (report && isPaid(report)) return { kind: 'paid', report };
        if (report?.tradeStatus === 'TRADE_CLOSED') return { kind: 'alipay_closed' };
        queryNowAnswered = asked;
        pollStep += 1;
        nextPollAt = nextStep();
      }
    }
  }

  /** A status query on the ladder. Undefined when it brought no news. */
  async function pollTrade(): Promise<TradeReport | TradeNotFound | undefined> {
    try {
      // The fallback behind the notify: a poll that fails is no news; the next poll, a notify or
      // the deadline decides. A poll with nothing new is not written down (its answer is in the
      // history), so a waiting order costs one workflow task per poll.
      const report = await quick.queryTrade({ appId: order.appId, outTradeNo: alipayNo });
      const news = report.tradeStatus !== 'NOT_EXIST' && (report.tradeStatus !== state.alipayStatus || report.tradeNo !== state.alipayTradeNo);
      return news ? await recordQuery(report) : report;
    } catch (err) {
      // Unavailable or unplaceable: no news from this poll (the failure is in the history).
      if (isUnexpectedAnswer(err)) await record('anomaly', { reason: `status query answer could not be placed: ${errorMessage(err)}` });
      return undefined;
    }
  }

  /** One quick try inside the workflow task; if it fails (its failure stays in the history), an
   *  activity that retries until Alipay answers. Each call is idempotent by out_trade_no. */
  async function atAlipay<M extends 'queryTrade' | 'closeTrade' | 'voidTrade'>(method: M): Promise<Awaited<ReturnType<AlipayActivities[M]>>> {
    type Call = (input: { outTradeNo: string; appId: string }) => Promise<Awaited<ReturnType<AlipayActivities[M]>>>;
    const input = { appId: order.appId, outTradeNo: alipayNo };
    try {
      return await (quick[method] as Call)(input);
    } catch {
      // The durable call below decides.
    }
    return (alipay[method] as Call)(input);
  }

  async function queryTrade(): Promise<TradeReport | TradeNotFound> {
    return recordQuery(await atAlipay('queryTrade'));
  }

  async function recordQuery(report: TradeReport | TradeNotFound): Promise<TradeReport | TradeNotFound> {
    const change: PaymentChange =
      report.tradeStatus === 'NOT_EXIST' ? {} : { alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo };
    await note('query_result', { ...report }, change);
    if (change.alipayTradeNo) moveTo(change);
    return report;
  }

  /** Checks Alipay's signature in this run: a signal sent straight to Temporal proves nothing.
   *  A notify that does not verify is recorded as an anomaly and changes nothing. */
  async function readNotify(notify: SignedNotify, settledAs?: string): Promise<TradeReport | undefined> {
    const params = notify && typeof notify.params === 'object' && notify.params !== null ? notify.params : {};
    const verdict = await local.verifyAlipayNotify({ appId: order.appId, outTradeNo: alipayNo, params });
    if (!verdict.ok) {
      await record('anomaly', { reason: `notify rejected: ${verdict.reason}`, notifyId: String(params.notify_id ?? '') });
      return undefined;
    }
    const { report } = verdict;
    const late = settledAs ? { late: true, statusThen: settledAs } : {};
    await note('notify_received', { ...report, ...late }, { alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo });
    return report;
  }

  /** The deadline passed or the merchant cancelled: one last look, then close at Alipay. */
  async function closeUnpaidOrder(why: CloseReason): Promise<void> {
    try {
      if (why === 'deadline' || isBarcode) {
        const last = await queryTrade();
        if (isPaid(last)) return await confirmPayment(last);
        if (last.tradeStatus === 'TRADE_CLOSED') return await markClosed('closed at Alipay');
        // A barcode payment still unsettled is cancelled: Alipay closes it, or refunds the buyer
        // if the payment lands meanwhile. A QR code never scanned has no trade to close, only the
        // order number to void.
        if (isBarcode || last.tradeStatus === 'NOT_EXIST') return await voidOrderNumber(why);
      }
      const closed = await atAlipay('closeTrade');
      await note('close_result', { ...closed });
      if (closed.outcome === 'closed') return await markClosed(closeReason(why, order));
      if (closed.outcome === 'not_open') {
        // Most often the buyer paid while we closed: the payment wins, it is never lost.
        const report = await queryTrade();
        if (isPaid(report)) return await confirmPayment(report);
        if (report.tradeStatus === 'TRADE_CLOSED') return await markClosed('closed at Alipay');
      }
      // Never scanned, or a close Alipay refused on an open trade. Alipay's clock may run behind
      // ours and keep the QR code payable past our deadline: void the order number.
      return await voidOrderNumber(why);
    } catch (err) {
      if (!isUnplaceable(err)) throw err;
      return flagForReview(`Alipay's answer could not be placed while closing (${errorMessage(err)}); the trade may still be open at Alipay`);
    }
  }

  async function voidOrderNumber(why: CloseReason): Promise<void> {
    // alipay.trade.cancel can move money (Alipay refunds a paid trade): a regular activity, so its
    // answer is in the history before anything else is decided. A local one's marker dies with a
    // worker that dies in the task, and the task's retry could then confirm a payment Alipay had
    // already given back.
    const voided = await alipay.voidTrade({ appId: order.appId, outTradeNo: alipayNo });
    await note('close_result', { voided: voided.action, ...(voided.action === 'refused' ? { subCode: voided.subCode } : { tradeNo: voided.tradeNo }) });
    if (voided.action !== 'refused') {
      if (voided.action === 'close') return markClosed(closeReason(why, order));
      // The buyer's money came and went back within the cancel: the order says so.
      const tradeNo = voided.tradeNo ?? state.alipayTradeNo;
      const refunded: PaymentChange = tradeNo
        ? { alipayTradeNo: tradeNo, latePayment: { tradeNo, amountFen: order.amountFen, detectedAt: new Date().toISOString(), refundStatus: 'SUCCEEDED', refundedBy: 'cancel' } }
        : {};
      return markClosed('cancelled; the buyer paid meanwhile and Alipay refunded it', refunded);
    }
    const refusal = voided.subCode;
    // Refused for good: only a query tells whether the QR code can still be paid.
    const report = await queryTrade();
    if (isPaid(report)) return confirmPayment(report);
    if (report.tradeStatus === 'WAIT_BUYER_PAY') {
      return flagForReview(`the trade is still open at Alipay (WAIT_BUYER_PAY): close and cancel were refused (${refusal})`, report);
    }
    return markClosed(`${closeReason(why, order)}; Alipay refused to void the order number (${refusal})`);
  }

  /** Where the pay→PAID latency of this confirmation began, for the worker's histogram (only data
   *  of the activity's input, no command of its own): the API's receipt of the notify that told
   *  it, or, for a barcode order, the start of its pay call in this run. */
  function paidLatencyOf(notifiedAtMs?: unknown): PaymentEventInput['paidLatency'] {
    if (typeof notifiedAtMs === 'number' && Number.isFinite(notifiedAtMs)) return { via: 'notify', sinceMs: notifiedAtMs };
    return isBarcode && payStartedAt !== undefined ? { via: 'barcode', sinceMs: payStartedAt } : undefined;
  }

  /** Confirms only what matches the order: out_trade_no, amount, app_id and (if set) seller_id. */
  async function confirmPayment(report: TradeReport, paidLatency?: PaymentEventInput['paidLatency']): Promise<void> {
    const mismatch = findMismatch(order, report);
    if (mismatch) return flagForReview(mismatch, report);
    const change: PaymentChange = {
      status: 'PAID',
      alipayStatus: report.tradeStatus,
      alipayTradeNo: report.tradeNo,
      paidAmountFen: order.amountFen,
      paidAt: report.paidAt ?? new Date().toISOString(),
    };
    await recordPaymentEvents([
      ...noted.splice(0),
      { ...event('paid', { source: report.source, tradeNo: report.tradeNo, totalAmount: report.totalAmount }, change), ...(paidLatency ? { paidLatency } : {}) },
    ]);
    moveTo(change);
  }

  async function flagForReview(reason: string, report?: TradeReport | TradeNotFound): Promise<void> {
    // Alipay's report stays with the order: a resolution as PAID records Alipay's payment time.
    const change: PaymentChange =
      !report || report.tradeStatus === 'NOT_EXIST'
        ? { status: 'REVIEW', reason }
        : { status: 'REVIEW', reason, alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo, alipayReport: alipayReportOf(report) };
    await record('anomaly', { reason, ...(report ? { report: { ...report } } : {}) }, change);
    moveTo(change);
  }

  async function markClosed(reason: string, more: PaymentChange = {}): Promise<void> {
    const change: PaymentChange = { ...more, status: 'CLOSED', reason };
    await record('closed', { reason }, change);
    moveTo(change);
  }

  /** Barcode: Alipay refused the payment for good, or it was never sent; no money moved. */
  async function markFailed(reason: string, alipaySubCode?: string): Promise<void> {
    const change: PaymentChange = { status: 'FAILED', reason, ...(alipaySubCode ? { alipaySubCode } : {}) };
    await record('failed', { reason, ...(alipaySubCode ? { alipaySubCode } : {}) }, change);
    moveTo(change);
  }

  /** A verified payment for an order that is no longer waiting: Alipay's own query decides what
   *  it is, and money Alipay holds is never silently kept. */
  async function settleLateNotify(notify: SignedNotify): Promise<void> {
    const report = await readNotify(notify, state.status);
    if (!report || !isPaid(report)) return;
    if (state.status === 'PAID' && report.tradeNo === state.alipayTradeNo) return; // a repeat of what we confirmed
    try {
      const trade = await queryTrade();
      if (!isPaid(trade) || (state.status === 'PAID' && trade.tradeNo === state.alipayTradeNo)) return;
      if (trade.tradeNo && state.latePayment?.tradeNo === trade.tradeNo) return; // already being given back
      const change = await settleLatePayment({
        appId: order.appId,
        outTradeNo: alipayNo,
        trade,
        status: state.status,
        policy: latePaymentPolicy ?? 'refund',
        record,
      });
      moveTo(change);
    } catch (err) {
      if (!isUnplaceable(err)) throw err;
      return flagForReview(`a payment notify arrived for a ${state.status} order and Alipay's answer to the check could not be placed (${errorMessage(err)})`, report);
    }
  }

  /** A reconciliation's finding, once the order has settled: recorded, and acted on. */
  async function settleFinding(finding: Finding): Promise<void> {
    const change = await applyFinding({
      appId: order.appId,
      outTradeNo: alipayNo,
      finding,
      order: state,
      policy: latePaymentPolicy ?? 'refund',
      record,
      queryTrade,
    });
    if (change) moveTo(change);
  }

  /** An operator's decision on a REVIEW order (workflows/review.ts). */
  async function resolveReview(resolution: ReviewResolution): Promise<void> {
    await writeNoted();
    const recorded = await findPaymentRecord({ paymentId });
    const change = await resolveReviewedOrder({ appId: order.appId, outTradeNo: alipayNo, order: recorded ?? state, resolution, record, queryTrade });
    moveTo(change);
  }

  function historyIsLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= timings.historyLimit;
  }

  /** A long wait goes on in a fresh run with the same workflow id, so history stays bounded. */
  async function continueWaitingAsNew(pollStep: number, nextPollAt: number): Promise<never> {
    await writeNoted();
    return continueAsNew<typeof paymentWorkflow>({
      order,
      timings,
      latePaymentPolicy,
      resume: { state, deadline, pollStep, nextPollAt, notifies: [...notifies], findings: [...heldFindings, ...findings] },
    });
  }

  async function finish(): Promise<PaymentView> {
    // Nothing accepted is dropped: notifies that came while the order settled are read first,
    // and a pending create or cancel answers with the final state before the run completes.
    for (;;) {
      for (let notify = notifies.shift(); notify; notify = notifies.shift()) await settleLateNotify(notify);
      heldFindings.push(...findings.splice(0));
      for (let finding = heldFindings.shift(); finding; finding = heldFindings.shift()) await settleFinding(finding);
      const resolution = reviewResolutions.shift();
      if (resolution) {
        if (state.status === 'REVIEW') await resolveReview(resolution);
        else resolutionsTooLate.add(resolutionsDone + 1);
        resolutionsDone += 1;
      }
      await writeNoted();
      if (state.status === 'REVIEW') {
        // A person decides a REVIEW order: the workflow waits for them as long as it takes (visible
        // as running in the UI), reading notifies and findings meanwhile.
        await condition(() => reviewResolutions.length > 0 || notifies.length > 0 || findings.length > 0);
        continue;
      }
      // A resolution still queued behind the one that decided the order is answered first: its
      // handler waits for its turn, so waiting for every handler alone would wait for ever.
      await condition(() => allHandlersFinished() || reviewResolutions.length > 0);
      if (notifies.length === 0 && findings.length === 0 && noted.length === 0 && reviewResolutions.length === 0) return state;
    }
  }
}

/** An order's text as PostgreSQL can store it. A lone surrogate becomes U+FFFD (what encoding it as
 *  UTF-8 makes of it) and a NUL goes, so operators can read the subject. A notifyUrl that would
 *  change is left out: another address is not the merchant's, and webhooks go only where it said. */
function storableTexts(order: PaymentOrder): Pick<PaymentOrder, 'subject' | 'notifyUrl'> {
  const storable = (text: string) => text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD').replace(/\0/g, '');
  return { subject: storable(order.subject), notifyUrl: order.notifyUrl !== undefined && storable(order.notifyUrl) === order.notifyUrl ? order.notifyUrl : undefined };
}

function closeReason(why: CloseReason, order: PaymentOrder): string {
  if (why === 'cancel') return 'cancelled by the merchant';
  return order.method === 'barcode' ? 'the buyer did not confirm in time; cancelled at Alipay' : 'not paid before the deadline';
}

/** What alipay.trade.pay answered, for the ledger: Alipay's words, never the payment code. */
function payResultData(charged: ChargeOutcome): Record<string, unknown> {
  switch (charged.outcome) {
    case 'paid':
      return { outcome: 'paid', tradeNo: charged.report.tradeNo, totalAmount: charged.report.totalAmount };
    case 'confirming':
      return { outcome: 'confirming', tradeNo: charged.tradeNo };
    case 'refused':
      return { outcome: 'refused', ...charged.refusal };
    case 'unknown':
      return { outcome: 'unknown', detail: charged.detail };
  }
}

export function findMismatch(order: PaymentOrder, report: TradeReport): string | undefined {
  if (report.outTradeNo !== (order.alipayOutTradeNo ?? order.outTradeNo)) return `out_trade_no ${report.outTradeNo} is not this order`;
  const paidFen = parseAlipayAmount(report.totalAmount);
  if (paidFen !== order.amountFen) {
    return `total_amount ${report.totalAmount ?? '(none)'} differs from the order's ${formatYuan(order.amountFen)}`;
  }
  if (report.source === 'notify' && report.appId !== order.appId) return `app_id ${report.appId ?? '(none)'} is not this app`;
  if (report.source === 'notify' && order.sellerId && report.sellerId !== order.sellerId) {
    return `seller_id ${report.sellerId ?? '(none)'} is not the configured seller`;
  }
  return undefined;
}
