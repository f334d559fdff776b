// Alipay's async notify (trade_status_sync): its RSA2 signature is checked with Alipay's public key
// over the form-decoded parameters, then it becomes a TradeReport for the payment workflow.
import type { AlipaySdk } from 'alipay-sdk';
import { parseBeijingTime } from './alipay-time.js';
import type { AlipayTradeStatus, TradeReport } from './payment.js';

export type NotifyVerdict = { ok: true; report: TradeReport } | { ok: false; reason: string };

const TRADE_STATUSES = new Set(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED']);

/** True when `sign` verifies over the parameters as alipay-sdk's checkNotifySignV2 builds them. */
export function verifyNotifySignature(verifier: AlipaySdk, params: Record<string, string>): boolean {
  try {
    return verifier.checkNotifySignV2(params);
  } catch {
    return false; // a malformed sign (not base64, wrong length) is just a bad signature
  }
}

export function readNotify(verifier: AlipaySdk, appId: string, body: unknown): NotifyVerdict {
  if (typeof body !== 'object' || body === null) return { ok: false, reason: 'no form body' };
  const params = body as Record<string, unknown>;
  if (Object.values(params).some((value) => typeof value !== 'string')) {
    return { ok: false, reason: 'repeated or nested parameters' };
  }
  const fields = params as Record<string, string>;
  if (!verifyNotifySignature(verifier, fields)) return { ok: false, reason: 'signature does not verify' };
  if (fields.app_id !== appId) return { ok: false, reason: `app_id ${fields.app_id ?? '(none)'} is not ours` };
  if (!fields.out_trade_no) return { ok: false, reason: 'no out_trade_no' };
  if (!fields.trade_status || !TRADE_STATUSES.has(fields.trade_status)) {
    return { ok: false, reason: `unknown trade_status ${fields.trade_status ?? '(none)'}` };
  }
  const paidAt = fields.gmt_payment ? parseBeijingTime(fields.gmt_payment) : undefined;
  return {
    ok: true,
    report: {
      source: 'notify',
      outTradeNo: fields.out_trade_no,
      tradeNo: fields.trade_no,
      tradeStatus: fields.trade_status as AlipayTradeStatus,
      totalAmount: fields.total_amount,
      appId: fields.app_id,
      sellerId: fields.seller_id,
      notifyId: fields.notify_id,
      paidAt: paidAt === undefined ? undefined : new Date(paidAt).toISOString(),
    },
  };
}
