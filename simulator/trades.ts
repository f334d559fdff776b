import { randomBytes, randomInt } from 'node:crypto';
import { type AlipayList, type AlipayPayload, businessFailed, invalidParameter, success } from './answers.js';
import { beijingDate, formatBeijing, parseBeijing, parseTimeoutExpress } from './time.js';

export type AlipayTradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_CLOSED' | 'TRADE_FINISHED';
export type NotifyVariant = 'valid' | 'wrong-key' | 'tampered-amount';

export interface CallRecord {
  at: string;
  method: string | null;
  appId: string | null;
  outTradeNo: string | null;
  /** null when no HTTP answer was sent (the loseAnswers fault). */
  httpStatus: number | null;
  code: string | null;
  subCode: string | null;
  /** The call took effect, then its connection was destroyed without an answer. */
  answerLost?: true;
  /** The answer was held back this long (the delayMs fault). */
  delayedMs?: number;
}

export interface NotifyRecord {
  /** What the notify reports: the payment, or one refund (named by outBizNo). */
  kind: 'payment' | 'refund';
  outBizNo?: string;
  attempt: number;
  at: string;
  variant: NotifyVariant;
  notifyId: string;
  httpStatus: number | null;
  answer: string | null;
  dropped?: true;
  /** Sent on demand through the control API, outside the retry ladder. */
  manual?: true;
  error?: string;
}

export interface Buyer {
  userId: string;
  logonId: string;
}

/**
 * What the buyer behind a payment code does when the cashier scans it (alipay.trade.pay). Tests
 * set it per code; a code nobody set pays at once.
 */
export type BuyerBehaviour =
  | { kind: 'pays' }
  /** Must confirm on the phone (10003), and does after `afterMs`. */
  | { kind: 'confirms'; afterMs: number }
  | { kind: 'never_confirms' }
  | { kind: 'balance_not_enough' }
  /** An expired or made-up code. */
  | { kind: 'invalid_code' };

/** Alipay's rule for a payment code: 16-24 digits starting with 25-30. */
const AUTH_CODE = /^(2[5-9]|30)\d{14,22}$/;

/** One refund in Alipay's books, by alipay.trade.refund or by a cancel of a paid trade. */
export interface RefundRecord {
  /** The idempotency key: out_request_no, or the out_trade_no when the request had none. */
  readonly outRequestNo: string;
  readonly amountCents: number;
  readonly at: number;
  readonly reason: string | null;
  readonly via: 'refund' | 'cancel';
}

export interface Trade {
  readonly outTradeNo: string;
  readonly appId: string;
  readonly subject: string;
  readonly totalCents: number;
  readonly notifyUrl: string | null;
  readonly qrToken: string;
  readonly qrCode: string;
  readonly precreatedAt: number;
  readonly expiresAt: number;
  /** null until the buyer scans: before that the trade does not exist at Alipay. */
  status: AlipayTradeStatus | null;
  tradeNo: string | null;
  buyer: Buyer | null;
  scannedAt: number | null;
  paidAt: number | null;
  closedAt: number | null;
  /** Refunds in the order they were made; their sum never exceeds totalCents. */
  refunds: RefundRecord[];
  /** The order number was voided by alipay.trade.cancel before any scan. */
  voided: boolean;
  /** bar_code: the cashier scanned the buyer's payment code (alipay.trade.pay); else a precreated QR code. */
  scene: 'qr_code' | 'bar_code';
  cancelAction: 'close' | 'refund' | null;
  calls: CallRecord[];
  notifies: NotifyRecord[];
}

/** Why a control action (scan, pay, finish) is refused; the control API answers 409. */
export class TradeConflict extends Error {
  constructor(
    readonly reason: 'TRADE_HAS_SUCCESS' | 'TRADE_CLOSED' | 'TRADE_EXPIRED' | 'TRADE_NOT_PAID',
    message: string,
  ) {
    super(message);
  }
}

export class UnknownTrade extends Error {}

/** Alipay's default order lifetime when neither time_expire nor timeout_express is given. */
const DEFAULT_LIFETIME_MS = 2 * 3_600_000;
const MAX_AMOUNT_CENTS = 100_000_000_00;
// Alipay: "64个字符以内，仅支持字母、数字、下划线".
const OUT_TRADE_NO = /^[A-Za-z0-9_]{1,64}$/;

export function formatCents(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

function parseAmountCents(value: unknown): number | null {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') return null;
  const m = /^(0|[1-9]\d{0,8})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return null;
  const cents = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return cents >= 1 && cents <= MAX_AMOUNT_CENTS ? cents : null;
}

type Biz = Record<string, unknown>;

interface PrecreateOrder {
  outTradeNo: string;
  totalCents: number;
  subject: string;
  expiresAt: number;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; rejection: AlipayPayload };

function parsePrecreate(biz: Biz, sellerId: string, now: number): Parsed<PrecreateOrder> {
  const reject = (field: string) => ({ ok: false, rejection: invalidParameter(field) }) as const;
  const { out_trade_no: outTradeNo, subject, time_expire: timeExpire, timeout_express: timeoutExpress } = biz;
  if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) return reject('out_trade_no');
  const totalCents = parseAmountCents(biz.total_amount);
  if (totalCents === null) return reject('total_amount');
  if (typeof subject !== 'string' || subject.trim() === '' || subject.length > 256) return reject('subject');
  if (biz.seller_id !== undefined && biz.seller_id !== sellerId) return reject('seller_id');
  let expiresAt = now + DEFAULT_LIFETIME_MS;
  // time_expire wins over timeout_express, as at Alipay.
  if (timeExpire !== undefined) {
    const at = typeof timeExpire === 'string' ? parseBeijing(timeExpire) : null;
    if (at === null || at <= now) return reject('time_expire');
    expiresAt = at;
  } else if (timeoutExpress !== undefined) {
    const at = typeof timeoutExpress === 'string' ? parseTimeoutExpress(timeoutExpress, now) : null;
    if (at === null) return reject('timeout_express');
    expiresAt = at;
  }
  return { ok: true, value: { outTradeNo, totalCents, subject, expiresAt } };
}

function randomDigits(count: number): string {
  return Array.from({ length: count }, () => randomInt(10)).join('');
}

function newBuyer(): Buyer {
  const phone = `1${randomInt(3, 10)}${randomDigits(9)}`;
  return { userId: `2088${randomDigits(12)}`, logonId: `${phone.slice(0, 3)}****${phone.slice(7)}` };
}

const isPaid = (t: Trade): boolean => t.status === 'TRADE_SUCCESS' || t.status === 'TRADE_FINISHED';

function isPayable(t: Trade, now: number): boolean {
  return !t.voided && (t.status === null || t.status === 'WAIT_BUYER_PAY') && now < t.expiresAt;
}

/** Expiry is evaluated lazily: a scanned, unpaid trade past its deadline is closed. */
function settleExpiry(t: Trade, now: number): void {
  if (t.status === 'WAIT_BUYER_PAY' && now >= t.expiresAt) {
    t.status = 'TRADE_CLOSED';
    t.closedAt = t.expiresAt;
  }
}

function tradeNotExist(biz: Biz): AlipayPayload {
  const fields: AlipayPayload = typeof biz.out_trade_no === 'string' ? { out_trade_no: biz.out_trade_no } : {};
  return businessFailed('ACQ.TRADE_NOT_EXIST', '交易不存在', fields);
}

function tradeIds(t: Trade): AlipayPayload {
  return { out_trade_no: t.outTradeNo, ...(t.tradeNo === null ? {} : { trade_no: t.tradeNo }) };
}

/** Alipay's side of the merchant's trades: one out_trade_no namespace (one merchant). */
export class TradeBook {
  private readonly trades = new Map<string, Trade>();
  private readonly buyerBehaviours = new Map<string, BuyerBehaviour>();
  /** Order numbers cancelled before Alipay ever saw them (a barcode charge lost to 20000): spent. */
  private readonly voidedUnseen = new Set<string>();
  private readonly confirmTimers = new Set<NodeJS.Timeout>();
  private readonly byTradeNo = new Map<string, Trade>();
  private readonly byQrToken = new Map<string, Trade>();

  constructor(
    private readonly deps: {
      sellerId: string;
      qrBaseUrl: string;
      onPaid: (trade: Trade) => void;
      /** A refund moved money (alipay.trade.refund, or cancel of a paid trade). */
      onRefunded: (trade: Trade, refund: RefundRecord) => void;
      /** How far Alipay's clock runs behind ours for a trade (the clockSkewMs fault). */
      clockSkewMs?: (outTradeNo: string) => number;
    },
  ) {}

  /** Alipay's idea of now for this trade: expiry is judged on Alipay's clock, not ours, and the
   *  times Alipay reports (scan, payment, close, refunds), so the day its bill lists them, are
   *  read from it. */
  private alipayNow(t: { outTradeNo: string }): number {
    return Date.now() - (this.deps.clockSkewMs?.(t.outTradeNo) ?? 0);
  }

  get(outTradeNo: string): Trade | undefined {
    const trade = this.trades.get(outTradeNo);
    if (trade) settleExpiry(trade, this.alipayNow(trade));
    return trade;
  }

  getByQrToken(token: string): Trade | undefined {
    const trade = this.byQrToken.get(token);
    return trade && this.get(trade.outTradeNo);
  }

  list(): Trade[] {
    return [...this.trades.keys()].map((outTradeNo) => this.get(outTradeNo)!);
  }

  /** The trade a biz_content addresses; trade_no takes precedence, as at Alipay. */
  locate(biz: Biz): Trade | undefined {
    if (typeof biz.trade_no === 'string' && biz.trade_no !== '') {
      const trade = this.byTradeNo.get(biz.trade_no);
      return trade && this.get(trade.outTradeNo);
    }
    return typeof biz.out_trade_no === 'string' ? this.get(biz.out_trade_no) : undefined;
  }

  precreate(appId: string, biz: Biz, notifyUrl: string | null): AlipayPayload {
    const now = Date.now();
    const existing = typeof biz.out_trade_no === 'string' ? this.get(biz.out_trade_no) : undefined;
    // A spent order number (paid, voided, closed or expired, even unscanned) is reported as
    // such, whatever a retried request now carries.
    if (typeof biz.out_trade_no === 'string' && this.voidedUnseen.has(biz.out_trade_no)) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    if (existing && isPaid(existing)) return businessFailed('ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
    if (existing && !isPayable(existing, this.alipayNow(existing))) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    const parsed = parsePrecreate(biz, this.deps.sellerId, now);
    if (!parsed.ok) return parsed.rejection;
    const order = parsed.value;
    if (existing) {
      if (existing.totalCents !== order.totalCents || existing.subject !== order.subject) {
        return businessFailed('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      }
      return success({ out_trade_no: existing.outTradeNo, qr_code: existing.qrCode });
    }
    const trade = this.openTrade({
      outTradeNo: order.outTradeNo,
      appId,
      subject: order.subject,
      totalCents: order.totalCents,
      notifyUrl,
      precreatedAt: now,
      expiresAt: order.expiresAt,
    });
    return success({ out_trade_no: trade.outTradeNo, qr_code: trade.qrCode });
  }

  /** The buyer behind a payment code (the control API). */
  setBuyerBehaviour(authCode: string, behaviour: BuyerBehaviour): void {
    this.buyerBehaviours.set(authCode, behaviour);
  }

  /**
   * alipay.trade.pay, scene bar_code: the cashier scanned the buyer's payment code. 10000 when the
   * money moved, 10003 while the buyer must confirm on the phone, 40004 when Alipay refuses. A
   * repeat under the same out_trade_no charges nothing again: it answers what the trade is.
   */
  payByCode(appId: string, biz: Biz, notifyUrl: string | null): AlipayPayload {
    const now = Date.now();
    const { out_trade_no: outTradeNo, scene, auth_code: authCode, subject } = biz;
    if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) return invalidParameter('out_trade_no');
    if (scene !== 'bar_code') return invalidParameter('scene');
    const totalCents = parseAmountCents(biz.total_amount);
    if (totalCents === null) return invalidParameter('total_amount');
    if (typeof subject !== 'string' || subject.trim() === '' || subject.length > 256) return invalidParameter('subject');
    if (biz.seller_id !== undefined && biz.seller_id !== this.deps.sellerId) return invalidParameter('seller_id');
    if (this.voidedUnseen.has(outTradeNo)) return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    const existing = this.get(outTradeNo);
    if (existing) {
      if (existing.totalCents !== totalCents || existing.subject !== subject) return businessFailed('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      if (isPaid(existing)) return businessFailed('ACQ.TRADE_HAS_SUCCESS', '交易已被支付', tradeIds(existing));
      if (existing.status !== 'WAIT_BUYER_PAY') return businessFailed('ACQ.TRADE_HAS_CLOSE', '交易已经关闭', tradeIds(existing));
      return { code: '10003', msg: ' order success pay inprocess', ...payAnswer(existing) };
    }
    if (typeof authCode !== 'string' || !AUTH_CODE.test(authCode)) {
      return businessFailed('ACQ.PAYMENT_AUTH_CODE_INVALID', '支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款');
    }
    const behaviour = this.buyerBehaviours.get(authCode) ?? { kind: 'pays' };
    if (behaviour.kind === 'invalid_code') {
      return businessFailed('ACQ.PAYMENT_AUTH_CODE_INVALID', '支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款');
    }
    if (behaviour.kind === 'balance_not_enough') return businessFailed('ACQ.BUYER_BALANCE_NOT_ENOUGH', '买家余额不足');
    this.openTrade({ outTradeNo, appId, subject, totalCents, notifyUrl, precreatedAt: now, expiresAt: now + DEFAULT_LIFETIME_MS }, 'bar_code');
    if (behaviour.kind === 'pays') return success(payAnswer(this.pay(outTradeNo)));
    const trade = this.scan(outTradeNo);
    if (behaviour.kind === 'confirms') {
      const timer = setTimeout(() => {
        this.confirmTimers.delete(timer);
        const t = this.get(outTradeNo);
        if (t && t.status === 'WAIT_BUYER_PAY' && !t.voided) this.pay(outTradeNo);
      }, behaviour.afterMs);
      timer.unref();
      this.confirmTimers.add(timer);
    }
    return { code: '10003', msg: ' order success pay inprocess', ...payAnswer(trade) };
  }

  /** Buyers stop confirming when the simulator stops. */
  stop(): void {
    for (const timer of this.confirmTimers) clearTimeout(timer);
    this.confirmTimers.clear();
  }

  query(biz: Biz): AlipayPayload {
    if (!hasAddress(biz)) return invalidParameter('out_trade_no/trade_no');
    const t = this.locate(biz);
    if (!t || t.status === null || !t.buyer || !t.tradeNo) return tradeNotExist(biz);
    const paidAmount = t.paidAt === null ? '0.00' : formatCents(t.totalCents);
    return success({
      buyer_logon_id: t.buyer.logonId,
      buyer_pay_amount: paidAmount,
      buyer_user_id: t.buyer.userId,
      buyer_user_type: 'PRIVATE',
      invoice_amount: paidAmount,
      out_trade_no: t.outTradeNo,
      point_amount: '0.00',
      receipt_amount: paidAmount,
      ...(t.paidAt === null ? {} : { send_pay_date: formatBeijing(t.paidAt) }),
      total_amount: formatCents(t.totalCents),
      trade_no: t.tradeNo,
      trade_status: t.status,
    });
  }

  /**
   * Closing only works on WAIT_BUYER_PAY. Before the scan the trade does not exist, so
   * the close fails and does NOT void the order number (that takes cancel). Closing a
   * closed trade is ACQ.TRADE_STATUS_ERROR, per Alipay's error table.
   */
  close(biz: Biz, payOnClose: boolean): AlipayPayload {
    if (!hasAddress(biz)) return invalidParameter('out_trade_no/trade_no');
    const t = this.locate(biz);
    if (!t) return tradeNotExist(biz);
    if (payOnClose && isPayable(t, this.alipayNow(t))) this.pay(t.outTradeNo);
    if (t.status === null) return tradeNotExist(biz);
    if (t.status !== 'WAIT_BUYER_PAY') return businessFailed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法', tradeIds(t));
    t.status = 'TRADE_CLOSED';
    t.closedAt = this.alipayNow(t);
    return success(tradeIds(t));
  }

  /**
   * Voids an unpaid order (even unscanned) or refunds a paid one in full; repeats answer the
   * same. The refund is a refund record like any other (keyed by out_trade_no, as a refund
   * without out_request_no is), so refund query, refund_fee and the notify all see it.
   */
  cancel(biz: Biz, payOnCancel = false): AlipayPayload {
    if (!hasAddress(biz)) return invalidParameter('out_trade_no/trade_no');
    const t = this.locate(biz);
    if (!t) {
      // An order number Alipay never saw is voided all the same, so a charge still on its way
      // (a trade.pay whose answer was 20000) can never land under it.
      if (typeof biz.out_trade_no !== 'string' || biz.trade_no !== undefined) return tradeNotExist(biz);
      this.voidedUnseen.add(biz.out_trade_no);
      return success({ out_trade_no: biz.out_trade_no, retry_flag: 'N', action: 'close' });
    }
    if (payOnCancel && t.cancelAction === null && isPayable(t, this.alipayNow(t))) this.pay(t.outTradeNo);
    if (t.cancelAction === null) {
      const now = this.alipayNow(t);
      if (t.status === 'TRADE_FINISHED') return businessFailed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法', tradeIds(t));
      // Alipay: a trade that has been refunded can no longer be cancelled.
      if (t.refunds.length > 0) return businessFailed('ACQ.REASON_TRADE_REFUND_FEE_ERR', '退款金额无效', tradeIds(t));
      let refund: RefundRecord | null = null;
      if (t.status === 'TRADE_SUCCESS') {
        refund = { outRequestNo: t.outTradeNo, amountCents: t.totalCents, at: now, reason: null, via: 'cancel' };
        t.refunds.push(refund);
        t.cancelAction = 'refund';
      } else {
        t.cancelAction = 'close';
      }
      if (t.status === null) t.voided = true;
      else t.status = 'TRADE_CLOSED';
      t.closedAt ??= now;
      if (refund) this.deps.onRefunded(t, refund);
    }
    const cancelRefund = t.refunds.find((r) => r.via === 'cancel');
    return success({
      ...tradeIds(t),
      retry_flag: 'N',
      action: t.cancelAction ?? 'close',
      ...(cancelRefund ? { gmt_refund_pay: formatBeijing(cancelRefund.at) } : {}),
    });
  }

  /**
   * alipay.trade.refund. out_request_no is the idempotency key (the out_trade_no when absent):
   * a repeat of a done refund answers it again with fund_change N; the same key with another
   * amount is ACQ.DISCORDANT_REPEAT_REQUEST. Repeats are checked before the trade's status, so
   * the repeat of the refund that closed the trade still answers success.
   */
  refund(biz: Biz, sellerBalanceNotEnough = false): AlipayPayload {
    if (!hasAddress(biz)) return invalidParameter('out_trade_no/trade_no');
    const amountCents = parseAmountCents(biz.refund_amount);
    if (amountCents === null) return invalidParameter('refund_amount');
    const requestNo = optionalText(biz.out_request_no, 64);
    if (requestNo === undefined) return invalidParameter('out_request_no');
    const reason = optionalText(biz.refund_reason, 256);
    if (reason === undefined) return invalidParameter('refund_reason');
    const options = queryOptions(biz);
    if (options === null) return invalidParameter('query_options');

    const t = this.locate(biz);
    if (!t || t.status === null || !t.buyer || !t.tradeNo) return tradeNotExist(biz);
    const key = requestNo ?? t.outTradeNo;
    const done = t.refunds.find((r) => r.outRequestNo === key);
    if (done) {
      if (done.amountCents !== amountCents) return businessFailed('ACQ.DISCORDANT_REPEAT_REQUEST', '不一致的请求');
      return refundAnswer(t, done, 'N', options);
    }
    if (t.status === 'TRADE_FINISHED') return businessFailed('ACQ.TRADE_HAS_FINISHED', '交易已完结');
    if (t.status !== 'TRADE_SUCCESS') {
      // Closed by refunds: not refundable any more. Never paid: Alipay's "交易状态不合法".
      return t.refunds.length > 0
        ? businessFailed('ACQ.TRADE_NOT_ALLOW_REFUND', '当前交易不允许退款')
        : businessFailed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    }
    if (refundedCents(t) + amountCents > t.totalCents) return businessFailed('ACQ.REASON_TRADE_REFUND_FEE_ERR', '退款金额无效');
    // The merchant withdrew what it had at Alipay: nothing moves until the balance is topped up.
    if (sellerBalanceNotEnough) return businessFailed('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足');

    const refund: RefundRecord = { outRequestNo: key, amountCents, at: this.alipayNow(t), reason, via: 'refund' };
    t.refunds.push(refund);
    // Fully refunded: Alipay closes the trade.
    if (refundedCents(t) === t.totalCents) {
      t.status = 'TRADE_CLOSED';
      t.closedAt = refund.at;
    }
    this.deps.onRefunded(t, refund);
    return refundAnswer(t, refund, 'Y', options);
  }

  /**
   * alipay.trade.fastpay.refund.query: a done refund answers refund_status REFUND_SUCCESS; an
   * unknown one answers 10000 with no refund fields at all, Alipay's "not received or failed".
   * gmt_refund_pay, refund_detail_item_list and send_back_fee only come when query_options asks.
   */
  refundQuery(biz: Biz): AlipayPayload {
    if (!hasAddress(biz)) return invalidParameter('out_trade_no/trade_no');
    const requestNo = optionalText(biz.out_request_no, 64);
    if (requestNo === undefined || requestNo === null) return invalidParameter('out_request_no');
    const options = queryOptions(biz);
    if (options === null) return invalidParameter('query_options');
    const t = this.locate(biz);
    if (!t || t.status === null || !t.tradeNo) return tradeNotExist(biz);
    const refund = t.refunds.find((r) => r.outRequestNo === requestNo);
    if (!refund) return success();
    const detailed = options.includes('refund_detail_item_list');
    return success({
      ...(options.includes('gmt_refund_pay') ? { gmt_refund_pay: formatBeijing(refund.at) } : {}),
      out_request_no: refund.outRequestNo,
      out_trade_no: t.outTradeNo,
      refund_amount: formatCents(refund.amountCents),
      ...(detailed ? { refund_detail_item_list: fundBills(refund) } : {}),
      ...(refund.reason === null ? {} : { refund_reason: refund.reason }),
      refund_status: 'REFUND_SUCCESS',
      ...(detailed ? { send_back_fee: formatCents(refund.amountCents) } : {}),
      total_amount: formatCents(t.totalCents),
      trade_no: t.tradeNo,
    });
  }

  /** The refund period ends (the control API): the paid trade becomes TRADE_FINISHED. */
  finish(outTradeNo: string): Trade {
    const t = this.require(outTradeNo);
    if (t.status === 'TRADE_FINISHED') return t;
    if (t.status === 'TRADE_CLOSED' || t.voided) throw new TradeConflict('TRADE_CLOSED', 'trade is closed');
    if (t.status !== 'TRADE_SUCCESS') throw new TradeConflict('TRADE_NOT_PAID', 'trade is not paid');
    t.status = 'TRADE_FINISHED';
    return t;
  }

  /** A new precreated order number, not yet scanned, with its QR code, in the ledger. */
  private openTrade(
    order: Pick<Trade, 'outTradeNo' | 'appId' | 'subject' | 'totalCents' | 'notifyUrl' | 'precreatedAt' | 'expiresAt'>,
    scene: Trade['scene'] = 'qr_code',
  ): Trade {
    const qrToken = `bax${randomBytes(12).toString('hex')}`;
    const trade: Trade = {
      ...order,
      qrToken,
      qrCode: `${this.deps.qrBaseUrl}/qr/${qrToken}`,
      status: null,
      tradeNo: null,
      buyer: null,
      scannedAt: null,
      paidAt: null,
      closedAt: null,
      refunds: [],
      voided: false,
      scene,
      cancelAction: null,
      calls: [],
      notifies: [],
    };
    this.trades.set(trade.outTradeNo, trade);
    this.byQrToken.set(qrToken, trade);
    return trade;
  }

  /** Puts trades made elsewhere (a benchmark's synthetic day) into the ledger as they are. */
  seed(trades: Iterable<Trade>): number {
    let count = 0;
    for (const t of trades) {
      this.trades.set(t.outTradeNo, t);
      if (t.tradeNo) this.byTradeNo.set(t.tradeNo, t);
      count += 1;
    }
    return count;
  }

  /** The buyer scans the QR code: only now does the trade exist at Alipay. */
  scan(outTradeNo: string): Trade {
    const t = this.require(outTradeNo);
    if (t.status === 'WAIT_BUYER_PAY') return t;
    this.assertPayable(t);
    const now = this.alipayNow(t);
    t.status = 'WAIT_BUYER_PAY';
    t.tradeNo = `${beijingDate(now)}22001${randomDigits(15)}`;
    t.buyer = newBuyer();
    t.scannedAt = now;
    this.byTradeNo.set(t.tradeNo, t);
    return t;
  }

  pay(outTradeNo: string): Trade {
    const t = this.scan(outTradeNo);
    t.status = 'TRADE_SUCCESS';
    t.paidAt = this.alipayNow(t);
    this.deps.onPaid(t);
    return t;
  }

  /**
   * A payment the merchant's system never hears of (the control API): Alipay holds the buyer's
   * money, but no notify is sent. For a trade the simulator knows, whatever its state (an order the
   * engine closed, say), it becomes paid as it stands; otherwise a paid trade is made up with the
   * given amount, as a payment through another channel would be.
   */
  payUnseen(outTradeNo: string, appId: string, made: { totalCents?: number; subject?: string }): Trade {
    const now = this.alipayNow({ outTradeNo });
    let t = this.get(outTradeNo);
    if (t && isPaid(t)) throw new TradeConflict('TRADE_HAS_SUCCESS', 'trade already paid');
    if (!t) {
      if (made.totalCents === undefined) throw new UnknownTrade(`no trade ${outTradeNo}: give the amount of the unseen payment`);
      t = this.openTrade({
        outTradeNo,
        appId,
        subject: made.subject ?? '当面付',
        totalCents: made.totalCents,
        notifyUrl: null,
        precreatedAt: now,
        expiresAt: now + DEFAULT_LIFETIME_MS,
      });
    } else if (made.totalCents !== undefined && made.totalCents !== t.totalCents) {
      throw new TradeConflict('TRADE_CLOSED', `trade ${outTradeNo} is for ${formatCents(t.totalCents)}, not ${formatCents(made.totalCents)}`);
    }
    if (t.tradeNo === null) {
      t.tradeNo = `${beijingDate(now)}22001${randomDigits(15)}`;
      this.byTradeNo.set(t.tradeNo, t);
    }
    t.buyer ??= newBuyer();
    t.scannedAt ??= now;
    t.status = 'TRADE_SUCCESS';
    t.paidAt = now;
    t.closedAt = null;
    t.voided = false;
    t.cancelAction = null;
    return t;
  }

  private require(outTradeNo: string): Trade {
    const trade = this.get(outTradeNo);
    if (!trade) throw new UnknownTrade(`no precreated trade ${outTradeNo}`);
    return trade;
  }

  private assertPayable(t: Trade): void {
    if (isPaid(t)) throw new TradeConflict('TRADE_HAS_SUCCESS', 'trade already paid');
    if (t.voided || t.status === 'TRADE_CLOSED') throw new TradeConflict('TRADE_CLOSED', 'trade is closed');
    if (this.alipayNow(t) >= t.expiresAt) throw new TradeConflict('TRADE_EXPIRED', 'trade expired');
  }
}

/** What alipay.trade.pay answers about its trade (10000 and 10003 alike). */
function payAnswer(t: Trade): AlipayPayload {
  const paid = t.paidAt !== null;
  return {
    buyer_logon_id: t.buyer!.logonId,
    buyer_pay_amount: paid ? formatCents(t.totalCents) : '0.00',
    buyer_user_id: t.buyer!.userId,
    ...(paid ? { fund_bill_list: [{ amount: formatCents(t.totalCents), fund_channel: 'ALIPAYACCOUNT' }], gmt_payment: formatBeijing(t.paidAt!) } : {}),
    invoice_amount: paid ? formatCents(t.totalCents) : '0.00',
    out_trade_no: t.outTradeNo,
    point_amount: '0.00',
    receipt_amount: paid ? formatCents(t.totalCents) : '0.00',
    total_amount: formatCents(t.totalCents),
    trade_no: t.tradeNo!,
  };
}

export function refundedCents(t: Trade): number {
  return t.refunds.reduce((sum, r) => sum + r.amountCents, 0);
}

/** Where a refund's money went back: the buyer's Alipay account, in the simulator. */
function fundBills(refund: RefundRecord): AlipayList {
  return [{ amount: formatCents(refund.amountCents), fund_channel: 'ALIPAYACCOUNT' }];
}

/**
 * The success answer of alipay.trade.refund: refund_fee is the trade's cumulative refunded
 * amount. send_back_fee is only filled in when query_options asks for refund_detail_item_list;
 * otherwise Alipay answers it as "0.00", whatever moved.
 */
function refundAnswer(t: Trade, refund: RefundRecord, fundChange: 'Y' | 'N', options: readonly string[]): AlipayPayload {
  const detailed = options.includes('refund_detail_item_list');
  return success({
    buyer_logon_id: t.buyer!.logonId,
    buyer_user_id: t.buyer!.userId,
    fund_change: fundChange,
    gmt_refund_pay: formatBeijing(refund.at),
    out_trade_no: t.outTradeNo,
    ...(detailed ? { refund_detail_item_list: fundBills(refund) } : {}),
    refund_fee: formatCents(refundedCents(t)),
    send_back_fee: detailed ? formatCents(refund.amountCents) : '0.00',
    trade_no: t.tradeNo!,
  });
}

/** An optional text field: null when absent or empty, undefined when invalid. Numbers are read as text. */
function optionalText(value: unknown, maxLength: number): string | null | undefined {
  if (value === undefined || value === null || value === '') return null;
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  return typeof text === 'string' && text.length <= maxLength ? text : undefined;
}

/** query_options: a list of names, or null when it is not one. */
function queryOptions(biz: Biz): readonly string[] | null {
  const value = biz.query_options;
  if (value === undefined) return [];
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : null;
}

function hasAddress(biz: Biz): boolean {
  return (typeof biz.out_trade_no === 'string' && biz.out_trade_no !== '') ||
    (typeof biz.trade_no === 'string' && biz.trade_no !== '');
}
