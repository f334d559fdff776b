import { z } from 'zod';

/** error_response: Alipay's unsigned `{"error_response":{...}}` body, as for a gateway-level error. */
export const systemErrorKinds = ['ACQ.SYSTEM_ERROR', '20000', 'http500', 'error_response'] as const;
export type SystemErrorKind = (typeof systemErrorKinds)[number];

export const faultsSchema = z.strictObject({
  /** Notifies are recorded as dropped and never sent (the retry ladder still runs). */
  dropNotifies: z.boolean().optional(),
  /** Each notify attempt is sent this many times, concurrently. */
  duplicateNotifies: z.number().int().min(1).max(50).optional(),
  /** The payment's notify waits until a refund's notify has been sent (or maxHoldMs has passed),
   *  so the notifies arrive out of order: TRADE_SUCCESS after the refund's TRADE_SUCCESS (with
   *  refund_fee) or TRADE_CLOSED, as when Alipay's first payment notify attempt went astray. */
  reorderNotifies: z.strictObject({ maxHoldMs: z.number().int().min(0).max(600_000) }).optional(),
  /** Gateway answers are held back this long, after the call took effect. */
  delayMs: z.number().int().min(0).max(600_000).optional(),
  /** The next `count` matching gateway calls fail this way, without taking effect. */
  systemErrors: z
    .strictObject({
      count: z.number().int().min(0),
      methods: z.array(z.string()).optional(),
      kind: z.enum(systemErrorKinds).optional(),
    })
    .optional(),
  /** The next `count` matching gateway calls are refused with this business sub_code (40004),
   *  without taking effect: e.g. ACQ.CANCEL_NOT_ALLOWED on alipay.trade.cancel. */
  refusals: z
    .strictObject({
      count: z.number().int().min(0),
      methods: z.array(z.string()).optional(),
      subCode: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{2,63}$/),
    })
    .optional(),
  /** The next `count` matching gateway calls take effect, then their connection is destroyed
   *  without any HTTP answer: the client sees a socket error (e.g. a refund done, its answer lost). */
  loseAnswers: z
    .strictObject({
      count: z.number().int().min(0),
      methods: z.array(z.string()).optional(),
    })
    .optional(),
  /** Certificate mode: answers and notifies are signed with a newer Alipay certificate (another
   *  key, another alipay_cert_sn), as after Alipay rotated its certificate. */
  rotatedAlipayCert: z.boolean().optional(),
  /** The merchant's balance at Alipay is too low: new refunds are refused with
   *  ACQ.SELLER_BALANCE_NOT_ENOUGH (a repeat of a done refund still answers success) until this is
   *  switched off, as when the merchant tops the balance up. */
  sellerBalanceNotEnough: z.boolean().optional(),
  /** A close or cancel of an unpaid trade loses the race against the buyer's payment. */
  payOnClose: z.boolean().optional(),
  /** Alipay's clock runs this far behind ours: the trade expires (and closes) that much later, and
   *  the times Alipay reports for it (payment, refunds) are that much earlier, so its bill lists
   *  them on an earlier day when the skew crosses midnight. At most 90 days. */
  clockSkewMs: z.number().int().min(0).max(90 * 86_400_000).optional(),
  /** Global: a bill file's download answers this long after it was asked for (a large bill, a slow
   *  network), as the worker may be stopped meanwhile. */
  billDownloadDelayMs: z.number().int().min(0).max(600_000).optional(),
  /** The trade bill leaves out the trade's payment row, or its refund rows, or both. */
  billLeaveOut: z.array(z.enum(['payment', 'refunds'])).optional(),
  /** The trade bill shows this amount (yuan) for the trade's payment instead of what was paid. */
  billAmount: z.string().regex(/^\d{1,9}\.\d{2}$/, 'yuan with two decimals, e.g. "12.50"').optional(),
});

export type Faults = z.infer<typeof faultsSchema>;

/** Global switches plus per-trade ones (which win); per-trade may be armed before precreate. */
export class FaultBoard {
  global: Faults = {};
  private readonly perTrade = new Map<string, Faults>();

  forTrade(outTradeNo: string): Faults {
    return this.perTrade.get(outTradeNo) ?? {};
  }

  effective(outTradeNo: string | null): Faults {
    return { ...this.global, ...(outTradeNo === null ? {} : this.forTrade(outTradeNo)) };
  }

  mergeGlobal(patch: Faults): Faults {
    this.global = { ...this.global, ...patch };
    return this.global;
  }

  mergeTrade(outTradeNo: string, patch: Faults): Faults {
    const merged = { ...this.forTrade(outTradeNo), ...patch };
    this.perTrade.set(outTradeNo, merged);
    return merged;
  }

  resetGlobal(): void {
    this.global = {};
  }

  resetTrade(outTradeNo: string): void {
    this.perTrade.delete(outTradeNo);
  }

  /** Consumes one armed system error matching this call, per-trade budget first. */
  takeSystemError(outTradeNo: string | null, method: string): SystemErrorKind | null {
    const armed = this.take(outTradeNo, method, 'systemErrors');
    return armed ? (armed.kind ?? 'ACQ.SYSTEM_ERROR') : null;
  }

  /** Consumes one armed refusal matching this call; its sub_code, or null. */
  takeRefusal(outTradeNo: string | null, method: string): string | null {
    return this.take(outTradeNo, method, 'refusals')?.subCode ?? null;
  }

  /** Consumes one armed lost answer matching this call: true when its answer must be lost. */
  takeLostAnswer(outTradeNo: string | null, method: string): boolean {
    return this.take(outTradeNo, method, 'loseAnswers') !== null;
  }

  private take<K extends 'systemErrors' | 'refusals' | 'loseAnswers'>(outTradeNo: string | null, method: string, kind: K): NonNullable<Faults[K]> | null {
    const candidates = [outTradeNo === null ? undefined : this.perTrade.get(outTradeNo), this.global];
    for (const faults of candidates) {
      const armed = faults?.[kind];
      if (armed && armed.count > 0 && (!armed.methods || armed.methods.includes(method))) {
        armed.count -= 1;
        return armed as NonNullable<Faults[K]>;
      }
    }
    return null;
  }
}
