import { randomBytes, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Faults } from './faults.js';
import { loadPrivateKey, generateRsaKeyPair, rsa2Sign, signContent } from './signing.js';
import { formatBeijing } from './time.js';
import { formatCents, type NotifyRecord, type NotifyVariant, type Trade } from './trades.js';

const NOTIFY_TIMEOUT_MS = 10_000;
const MAX_RECORDED_ANSWER = 500;

export interface NotifierDeps {
  alipayKey: KeyObject;
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
  private strangerKey: KeyObject | undefined;

  constructor(private readonly deps: NotifierDeps) {}

  deliverWithRetries(trade: Trade): void {
    if (trade.notifyUrl === null) return;
    // Alipay keeps one notify_id across the retries of one notification.
    void this.attempt(trade, newNotifyId(), 1);
  }

  /** One notify outside the retry ladder, for tests of the merchant's verification. */
  async sendOnce(trade: Trade, variant: NotifyVariant, overrides: Record<string, string>): Promise<NotifyDelivery> {
    const notifyId = newNotifyId();
    const attempt = trade.notifies.filter((n) => n.manual).length + 1;
    const record = await this.post(trade, this.buildNotify(trade, notifyId, variant, overrides), {
      attempt,
      variant,
      notifyId,
      manual: true,
    });
    return { httpStatus: record.httpStatus, answer: record.answer };
  }

  stop(): void {
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
  }

  private async attempt(trade: Trade, notifyId: string, attempt: number): Promise<void> {
    const acknowledged = await this.deliverAttempt(trade, notifyId, attempt);
    const delay = this.deps.retryDelaysMs[attempt - 1];
    if (acknowledged || this.deps.stopSignal.aborted) return;
    if (delay === undefined) {
      this.deps.logger.warn({ outTradeNo: trade.outTradeNo, attempts: attempt }, 'notify given up');
      return;
    }
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      void this.attempt(trade, notifyId, attempt + 1);
    }, delay);
    this.retryTimers.add(timer);
  }

  private async deliverAttempt(trade: Trade, notifyId: string, attempt: number): Promise<boolean> {
    const faults = this.deps.faultsFor(trade.outTradeNo);
    const base = { attempt, variant: 'valid' as const, notifyId };
    if (faults.dropNotifies) {
      trade.notifies.push({ ...base, at: new Date().toISOString(), httpStatus: null, answer: null, dropped: true });
      return false;
    }
    const params = this.buildNotify(trade, notifyId, 'valid', {});
    const copies = faults.duplicateNotifies ?? 1;
    const records = await Promise.all(Array.from({ length: copies }, () => this.post(trade, params, base)));
    return records.some((r) => r.answer?.trim() === 'success');
  }

  private async post(
    trade: Trade,
    params: Record<string, string>,
    base: Pick<NotifyRecord, 'attempt' | 'variant' | 'notifyId' | 'manual'>,
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
    notifyId: string,
    variant: NotifyVariant,
    overrides: Record<string, string>,
  ): Record<string, string> {
    const params = { ...notifyParams(trade, notifyId, this.deps.sellerId), ...overrides };
    switch (variant) {
      case 'valid':
        return signNotify(params, this.deps.alipayKey);
      case 'wrong-key':
        this.strangerKey ??= loadPrivateKey(generateRsaKeyPair().privateKey);
        return signNotify(params, this.strangerKey);
      case 'tampered-amount':
        return { ...signNotify(params, this.deps.alipayKey), total_amount: formatCents(trade.totalCents + 100) };
    }
  }
}

function newNotifyId(): string {
  return randomBytes(16).toString('hex');
}

/** Trade notifies are signed without `sign`, `sign_type` and empty values, as Alipay signs them. */
function signNotify(params: Record<string, string>, key: KeyObject): Record<string, string> {
  const sign = rsa2Sign(signContent(params, ['sign', 'sign_type'], { skipEmpty: true }), key);
  return { ...params, sign_type: 'RSA2', sign };
}

function notifyParams(t: Trade, notifyId: string, sellerId: string): Record<string, string> {
  const paidAmount = t.paidAt === null ? '0.00' : formatCents(t.totalCents);
  return {
    notify_time: formatBeijing(Date.now()),
    notify_type: 'trade_status_sync',
    notify_id: notifyId,
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
    receipt_amount: paidAmount,
    invoice_amount: paidAmount,
    buyer_pay_amount: paidAmount,
    point_amount: '0.00',
    subject: t.subject,
    gmt_create: formatBeijing(t.scannedAt ?? t.precreatedAt),
    ...(t.paidAt === null
      ? {}
      : {
          gmt_payment: formatBeijing(t.paidAt),
          fund_bill_list: JSON.stringify([{ amount: paidAmount, fundChannel: 'ALIPAYACCOUNT' }]),
        }),
  };
}
