// One Alipay face-to-face QR payment, from precreate to PAID or CLOSED. Reads top to bottom as the
// business process; every side effect is an activity, every duration an input.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AlipayActivities,
  LedgerActivities,
  PaymentChange,
  PaymentEventType,
  TradeNotFound,
} from '../lib/activities.js';
import { formatBeijingTime } from '../lib/alipay-time.js';
import { formatYuan, parseAlipayAmount } from '../lib/money.js';
import {
  alipayNotifySignal,
  cancelPaymentUpdate,
  createPaymentUpdate,
  FINAL_STATUSES,
  paymentStateQuery,
  searchAttributes,
  type PaymentOrder,
  type PaymentView,
  type PaymentWorkflowInput,
  type TradeReport,
} from '../lib/payment.js';

const ALIPAY_REJECTED = 'AlipayRejected';

// precreate runs as a local activity in the first workflow task, so the API's create answers
// after one Temporal round trip plus Alipay's own time; a few quick retries, then PRECREATE_FAILED.
const { precreateTrade } = proxyLocalActivities<AlipayActivities>({
  startToCloseTimeout: '10s',
  scheduleToCloseTimeout: '30s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumAttempts: 5, nonRetryableErrorTypes: [ALIPAY_REJECTED] },
});
const { recordPaymentEvent: recordFirstEvent } = proxyLocalActivities<LedgerActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '10s' },
});

// After the QR code is out, Alipay calls must eventually succeed: retried without limit, backing
// off to a minute, visible as pending activities in the UI while Alipay is down.
const alipay = proxyActivities<AlipayActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '1m' },
});
const { recordPaymentEvent } = proxyActivities<LedgerActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});

type Settlement = { kind: 'paid'; report: TradeReport } | { kind: 'alipay_closed' } | { kind: 'deadline' } | { kind: 'cancel' };

type PaidReport = TradeReport & { tradeStatus: 'TRADE_SUCCESS' | 'TRADE_FINISHED' };
const isPaid = (report: TradeReport | TradeNotFound): report is PaidReport =>
  report.tradeStatus === 'TRADE_SUCCESS' || report.tradeStatus === 'TRADE_FINISHED';

export async function paymentWorkflow({ order, timings }: PaymentWorkflowInput): Promise<PaymentView> {
  const paymentId = workflowInfo().workflowId;
  const deadline = Date.now() + timings.orderTimeoutMs;
  const state: PaymentView = {
    appId: order.appId,
    outTradeNo: order.outTradeNo,
    status: 'AWAITING_PAYMENT',
    amountFen: order.amountFen,
    subject: order.subject,
    expiresAt: new Date(deadline).toISOString(),
  };
  let precreateSettled = false;
  let cancelRequested = false;
  const notifies: TradeReport[] = [];
  let eventSeq = 0;
  const isFinal = () => FINAL_STATUSES.includes(state.status);

  setHandler(paymentStateQuery, () => state);
  setHandler(
    createPaymentUpdate,
    async () => {
      await condition(() => precreateSettled);
      return state;
    },
    {
      // The same order number with another amount or subject is a different order: refuse it.
      validator: (request) => {
        if (request.amountFen !== order.amountFen || request.subject !== order.subject) {
          throw ApplicationFailure.nonRetryable(
            `order ${order.outTradeNo} already exists with a different amount or subject`,
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
  setHandler(alipayNotifySignal, (report) => {
    notifies.push(report);
  });

  /** Appends to payment_events and moves the read model; keyed so a retried write lands once. */
  async function record(type: PaymentEventType, data: Record<string, unknown>, change?: PaymentChange, first = false) {
    const input = { paymentId, eventKey: `${workflowInfo().runId}:${++eventSeq}`, type, data, change };
    if (first) {
      await recordFirstEvent({
        ...input,
        create: {
          appId: order.appId,
          outTradeNo: order.outTradeNo,
          amountFen: order.amountFen,
          subject: order.subject,
          expiresAt: state.expiresAt,
          merchantId: order.merchantId,
        },
      });
    } else {
      await recordPaymentEvent(input);
    }
  }

  /** Moves the in-memory state, after the read model: a create or cancel answering from it
   *  never gets ahead of what GET /v1/payments shows. */
  function moveTo(change: PaymentChange) {
    Object.assign(state, change);
    upsertSearchAttributes([
      { key: searchAttributes.paymentStatus, value: state.status },
      ...(state.alipayTradeNo ? [{ key: searchAttributes.alipayTradeNo, value: state.alipayTradeNo }] : []),
    ]);
  }

  // 1. Ask Alipay for the QR code; its expiry is our deadline, so it can never be paid after we close.
  try {
    const { qrCode } = await precreateTrade({
      outTradeNo: order.outTradeNo,
      amountFen: order.amountFen,
      subject: order.subject,
      timeExpire: formatBeijingTime(deadline),
      notifyUrl: order.alipayNotifyUrl,
      sellerId: order.sellerId,
    });
    state.qrCode = qrCode;
    await record('qr_issued', { qrCode, timeExpire: formatBeijingTime(deadline) }, { status: 'AWAITING_PAYMENT', qrCode }, true);
  } catch (err) {
    const reason = failureMessage(err);
    await record('precreate_failed', { reason }, { status: 'PRECREATE_FAILED', reason }, true);
    moveTo({ status: 'PRECREATE_FAILED', reason });
    precreateSettled = true;
    return finish();
  }
  precreateSettled = true;

  // 2. Wait for the buyer: a notify, a merchant cancel, or the next poll; until the deadline.
  const settlement = await awaitPaymentOrDeadline();

  // 3. Settle.
  if (settlement.kind === 'paid') {
    await confirmPayment(settlement.report);
  } else if (settlement.kind === 'alipay_closed') {
    await markClosed('closed at Alipay');
  } else {
    await closeUnpaidOrder(settlement.kind);
  }
  return finish();

  async function awaitPaymentOrDeadline(): Promise<Settlement> {
    let pollStep = 0;
    let nextPollAt = Date.now() + timings.pollLadderMs[0]!;
    for (;;) {
      const wakeAt = Math.min(nextPollAt, deadline);
      // condition() with a zero timeout would never time out; wake at least a millisecond later.
      await condition(() => notifies.length > 0 || cancelRequested, Math.max(wakeAt - Date.now(), 1));
      if (cancelRequested) {
        await record('cancel_requested', {});
        return { kind: 'cancel' };
      }
      for (let report = notifies.shift(); report; report = notifies.shift()) {
        await record('notify_received', { ...report }, { alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo });
        if (isPaid(report)) return { kind: 'paid', report };
        if (report.tradeStatus === 'TRADE_CLOSED') nextPollAt = Date.now(); // let a query confirm it
      }
      if (Date.now() >= deadline) return { kind: 'deadline' };
      if (Date.now() >= nextPollAt) {
        const report = await queryTrade();
        if (isPaid(report)) return { kind: 'paid', report };
        if (report.tradeStatus === 'TRADE_CLOSED') return { kind: 'alipay_closed' };
        pollStep += 1;
        nextPollAt = Date.now() + timings.pollLadderMs[Math.min(pollStep, timings.pollLadderMs.length - 1)]!;
      }
    }
  }

  async function queryTrade(): Promise<TradeReport | TradeNotFound> {
    const report = await alipay.queryTrade({ outTradeNo: order.outTradeNo });
    const change: PaymentChange =
      report.tradeStatus === 'NOT_EXIST' ? {} : { alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo };
    await record('query_result', { ...report }, change);
    if (change.alipayTradeNo) moveTo(change);
    return report;
  }

  /** The deadline passed or the merchant cancelled: one last look, then close at Alipay. */
  async function closeUnpaidOrder(why: 'deadline' | 'cancel'): Promise<void> {
    if (why === 'deadline') {
      const last = await queryTrade();
      if (isPaid(last)) return confirmPayment(last);
      if (last.tradeStatus === 'TRADE_CLOSED') return markClosed('closed at Alipay');
    }
    const closed = await alipay.closeTrade({ outTradeNo: order.outTradeNo });
    await record('close_result', { ...closed });
    if (closed.outcome === 'not_open') {
      // Most often the buyer paid while we closed: the payment wins, it is never lost.
      const report = await queryTrade();
      if (isPaid(report)) return confirmPayment(report);
      if (report.tradeStatus === 'TRADE_CLOSED') return markClosed('closed at Alipay');
      return flagForReview(`close was refused but the query says ${report.tradeStatus}`, report);
    }
    if (closed.outcome === 'not_exist' && Date.now() < deadline) {
      // Never scanned, yet the QR code stays payable until its expiry: void the order number.
      const voided = await alipay.voidTrade({ outTradeNo: order.outTradeNo });
      await record('close_result', { voided: voided.action });
      if (voided.action === 'refund') return markClosed('cancelled; the buyer paid meanwhile and Alipay refunded it');
    }
    return markClosed(why === 'cancel' ? 'cancelled by the merchant' : 'not paid before the deadline');
  }

  /** Confirms only what matches the order: out_trade_no, amount, app_id and (if set) seller_id. */
  async function confirmPayment(report: TradeReport): Promise<void> {
    const mismatch = findMismatch(order, report);
    if (mismatch) return flagForReview(mismatch, report);
    const change: PaymentChange = {
      status: 'PAID',
      alipayStatus: report.tradeStatus,
      alipayTradeNo: report.tradeNo,
      paidAmountFen: order.amountFen,
      paidAt: report.paidAt ?? new Date().toISOString(),
    };
    await record('paid', { source: report.source, tradeNo: report.tradeNo, totalAmount: report.totalAmount }, change);
    moveTo(change);
  }

  async function flagForReview(reason: string, report: TradeReport | TradeNotFound): Promise<void> {
    const change: PaymentChange =
      report.tradeStatus === 'NOT_EXIST'
        ? { status: 'REVIEW', reason }
        : { status: 'REVIEW', reason, alipayStatus: report.tradeStatus, alipayTradeNo: report.tradeNo };
    await record('anomaly', { reason, report: { ...report } }, change);
    moveTo(change);
  }

  async function markClosed(reason: string): Promise<void> {
    const change: PaymentChange = { status: 'CLOSED', reason };
    await record('closed', { reason }, change);
    moveTo(change);
  }

  async function finish(): Promise<PaymentView> {
    // Let a pending create or cancel answer with the final state before the run completes.
    await condition(allHandlersFinished);
    return state;
  }
}

export function findMismatch(order: PaymentOrder, report: TradeReport): string | undefined {
  if (report.outTradeNo !== order.outTradeNo) return `out_trade_no ${report.outTradeNo} is not this order`;
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

function failureMessage(err: unknown): string {
  // A local activity failure wraps the activity's own error as its cause.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
