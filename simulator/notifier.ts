import { randomBytes, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Faults } from './faults.js';
import { type AlipaySigner, loadPrivateKey, generateRsaKeyPair, rsa2Sign, signContent } from './signing.js';
import { formatBeijing, formatBeijingMillis } from './time.js';
import { formatCents, type NotifyRecord, type NotifyVariant, type RefundRecord, type Trade } from './trades.js';

const NOTIFY_TIMEOUT_MS = 10_000;
const MAX_RECORDED_ANSWER = 500;

export interface NotifierDeps {
  /** Signs the notifies of a trade. */
  signerFor: (appId: string | null, outTradeNo: string) => AlipaySigner;
  sellerId: string;
  retryDelaysMs: readonly number[];
  faultsFor: (outTradeNo: string) => Faults;
  stopSignal: AbortSignal;
  logger: Logger;
}

export interface NotifyDelivery {
  httpStatus: number | null;
  answer: string | null;
}

/** Alipay's trade_status_sync notify: form POST, retried until the merchant answers `success`. */
export class Notifier {
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Payment notifies held back by the reorderNotifies fault: each trade's release. */
  private readonly heldPaymentNotifies = new Map<string, () => void>();
  private strangerKey: KeyObject | undefined;

  constructor(private readonly deps: NotifierDeps) {}

  /** The notify of a payment, or of one refund that moved money, retried on Alipay's ladder. */
  deliverWithRetries(trade: Trade, refund?: RefundRecord): void {
    if (trade.notifyUrl === null) return;
    // The content is fixed when the event happens: a retry carries the same notify_id and the
    // same facts, even if the trade has moved on (a payment notify retried after a refund).
    const notification: Notification = {
      notifyId: newNotifyId(),
      ...(refund ? refundNotifyFields(trade, refund, this.deps.sellerId) : paymentNotifyFields(trade, this.deps.sellerId)),
    };
    const reorder = this.deps.faultsFor(trade.outTradeNo).reorderNotifies;
    if (!refund && reorder) {
      this.holdPaymentNotify(trade, notification, reorder.maxHoldMs);
      return;
    }
    const firstAttempt = this.attempt(trade, notification, 1);
    // The held payment notify goes once a refund's first attempt is through: out of order.
    if (refund) void firstAttempt.then(() => this.heldPaymentNotifies.get(trade.outTradeNo)?.());
  }

  private holdPaymentNotify(trade: Trade, notification: Notification, maxHoldMs: number): void {
    const release = () => {
      clearTimeout(timer);
      this.retryTimers.delete(timer);
      this.heldPaymentNotifies.delete(trade.outTradeNo);
      if (!this.deps.stopSignal.aborted) void this.attempt(trade, notification, 1);
    };
    const timer = setTimeout(release, maxHoldMs);
    this.retryTimers.add(timer);
    this.heldPaymentNotifies.set(trade.outTradeNo, release);
  }

  /** One notify outside the retry ladder, for tests of the merchant's verification: what Alipay
   *  would notify now (the latest refund if there was one, else the payment). */
  async sendOnce(trade: Trade, variant: NotifyVariant, overrides: Record<string, string>): Promise<NotifyDelivery> {
    const latestRefund = trade.refunds.at(-1);
    const notification: Notification = {
      notifyId: newNotifyId(),
      ...(latestRefund ? refundNotifyFields(trade, latestRefund, this.deps.sellerId) : paymentNotifyFields(trade, this.deps.sellerId)),
    };
    const attempt = trade.notifies.filter((n) => n.manual).length + 1;
    const record = await this.post(trade, this.buildNotify(trade, notification, variant, overrides), {
      ...describe(notification),
      attempt,
      variant,
      manual: true,
    });
    return { httpStatus: record.httpStatus, answer: record.answer };
  }

  stop(): void {
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    this.heldPaymentNotifies.clear();
  }

  private async attempt(trade: Trade, notification: Notification, attempt: number): Promise<void> {
    const acknowledged = await this.deliverAttempt(trade, notification, attempt);
    const delay = this.deps.retryDelaysMs[attempt - 1];
    if (acknowledged || this.deps.stopSignal.aborted) return;
    if (delay === undefined) {
      this.deps.logger.warn({ outTradeNo: trade.outTradeNo, attempts: attempt }, 'notify given up');
      return;
    }
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      void this.attempt(trade, notification, attempt + 1);
    }, delay);
    this.retryTimers.add(timer);
  }

  private async deliverAttempt(trade: Trade, notification: Notification, attempt: number): Promise<boolean> {
    const faults = this.deps.faultsFor(trade.outTradeNo);
    const base = { ...describe(notification), attempt, variant: 'valid' as const };
    if (faults.dropNotifies) {
      trade.notifies.push({ ...base, at: new Date().toISOString(), httpStatus: null, answer: null, dropped: true });
      return false;
    }
    const params = this.buildNotify(trade, notification, 'valid', {});
    const copies = faults.duplicateNotifies ?? 1;
    const records = await Promise.all(Array.from({ length: copies }, () => this.post(trade, params, base)));
    return records.some((r) => r.answer?.trim() === 'success');
  }

  private async post(
    trade: Trade,
    params: Record<string, string>,
    base: Pick<NotifyRecord, 'kind' | 'outBizNo' | 'attempt' | 'variant' | 'notifyId' | 'manual'>,
  ): Promise<NotifyRecord> {
    const record: NotifyRecord = { ...base, at: new Date().toISOString(), httpStatus: null, answer: null };
    trade.notifies.push(record);
    try {
      const response = await fetch(trade.notifyUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: new URLSearchParams(params).toString(),
        redirect: 'manual',
        signal: AbortSignal.any([this.deps.stopSignal, AbortSignal.timeout(NOTIFY_TIMEOUT_MS)]),
      });
      record.httpStatus = response.status;
      record.answer = (await response.text()).slice(0, MAX_RECORDED_ANSWER);
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
    this.deps.logger.info(
      { outTradeNo: trade.outTradeNo, attempt: record.attempt, variant: record.variant, httpStatus: record.httpStatus, error: record.error },
      'notify sent',
    );
    return record;
  }

  private buildNotify(
    trade: Trade,
    notification: Notification,
    variant: NotifyVariant,
    overrides: Record<string, string>,
  ): Record<string, string> {
    // notify_time is the time of this attempt, as Alipay sends it; so is the signing certificate.
    const signer = this.deps.signerFor(trade.appId, trade.outTradeNo);
    const params = {
      notify_time: formatBeijing(Date.now()),
      notify_id: notification.notifyId,
      ...notification.fields,
      ...(signer.certSn === undefined ? {} : { alipay_cert_sn: signer.certSn }),
      ...overrides,
    };
    switch (variant) {
      case 'valid':
        return signNotify(params, signer.key);
      case 'wrong-key':
        this.strangerKey ??= loadPrivateKey(generateRsaKeyPair().privateKey);
        return signNotify(params, this.strangerKey);
      case 'tampered-amount':
        return { ...signNotify(params, signer.key), total_amount: formatCents(trade.totalCents + 100) };
    }
  }
}

function newNotifyId(): string {
  return randomBytes(16).toString('hex');
}

/** Trade notifies are signed without `sign`, `sign_type` and empty values, as Alipay signs them
 *  (alipay_cert_sn, in certificate mode, is signed like any other parameter). */
function signNotify(params: Record<string, string>, key: KeyObject): Record<string, string> {
  const sign = rsa2Sign(signContent(params, ['sign', 'sign_type'], { skipEmpty: true }), key);
  return { ...params, sign_type: 'RSA2', sign };
}

/** One notification: its id and its fields, fixed when the event happened. */
interface Notification {
  notifyId: string;
  kind: 'payment' | 'refund';
  outBizNo?: string;
  fields: Record<string, string>;
}

function describe(n: Notification): Pick<NotifyRecord, 'kind' | 'outBizNo' | 'notifyId'> {
  return { kind: n.kind, ...(n.outBizNo === undefined ? {} : { outBizNo: n.outBizNo }), notifyId: n.notifyId };
}

/** The fields every trade_status_sync notify of the trade carries. */
function tradeFields(t: Trade, sellerId: string): Record<string, string> {
  return {
    notify_type: 'trade_status_sync',
    app_id: t.appId,
    auth_app_id: t.appId,
    charset: 'utf-8',
    version: '1.0',
    trade_no: t.tradeNo ?? '',
    out_trade_no: t.outTradeNo,
    buyer_id: t.buyer?.userId ?? '',
    buyer_logon_id: t.buyer?.logonId ?? '',
    seller_id: sellerId,
    seller_email: 'merchant@durapay-sim.test',
    trade_status: t.status ?? '',
    total_amount: formatCents(t.totalCents),
    subject: t.subject,
    gmt_create: formatBeijing(t.scannedAt ?? t.precreatedAt),
    ...(t.paidAt === null ? {} : { gmt_payment: formatBeijing(t.paidAt) }),
  };
}

function paymentNotifyFields(t: Trade, sellerId: string): Pick<Notification, 'kind' | 'fields'> {
  const paidAmount = t.paidAt === null ? '0.00' : formatCents(t.totalCents);
  return {
    kind: 'payment',
    fields: {
      ...tradeFields(t, sellerId),
      receipt_amount: paidAmount,
      invoice_amount: paidAmount,
      buyer_pay_amount: paidAmount,
      point_amount: '0.00',
      ...(t.paidAt === null ? {} : { fund_bill_list: JSON.stringify([{ amount: paidAmount, fundChannel: 'ALIPAYACCOUNT' }]) }),
    },
  };
}

/**
 * A refund notify as production sends it (captured partial and full refund notifies): the trade's
 * fields with the status after this refund, out_biz_no (the refund's out_request_no), refund_fee
 * (the cumulative refunded amount up to this refund), gmt_refund with milliseconds, and gmt_close
 * when this refund closed the trade. No receipt_amount, buyer_pay_amount, fund_bill_list or
 * send_back_fee: production leaves them out of refund notifies.
 */
function refundNotifyFields(t: Trade, refund: RefundRecord, sellerId: string): Pick<Notification, 'kind' | 'outBizNo' | 'fields'> {
  const upTo = t.refunds.slice(0, t.refunds.indexOf(refund) + 1);
  const cumulative = upTo.reduce((sum, r) => sum + r.amountCents, 0);
  const closes = cumulative === t.totalCents;
  return {
    kind: 'refund',
    outBizNo: refund.outRequestNo,
    fields: {
      ...tradeFields(t, sellerId),
      trade_status: closes ? 'TRADE_CLOSED' : 'TRADE_SUCCESS',
      out_biz_no: refund.outRequestNo,
      refund_fee: formatCents(cumulative),
      gmt_refund: formatBeijingMillis(refund.at),
      ...(closes ? { gmt_close: formatBeijing(refund.at) } : {}),
    },
  };
}
