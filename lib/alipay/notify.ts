// Alipay's async notify (trade_status_sync): its RSA2 signature is checked with Alipay's public key
// (in certificate mode, the key of Alipay's certificate the notify names by alipay_cert_sn) over
// the form-decoded parameters, then it becomes a TradeReport for the payment workflow.
import type { AlipaySdk } from 'alipay-sdk';
import { unknownCertificate } from './client.js';
import { parseBeijingTime } from './time.js';
import type { AlipayTradeStatus, TradeReport } from '../payments/payment.js';

/** Why a notify was refused, as a bounded set (the reason's text may quote what was sent). */
export type NotifyRejection =
  | 'no_form_body'
  | 'repeated_parameters'
  | 'bad_signature'
  /** Signed under an Alipay certificate we do not know (a rotation): refused, fail closed. */
  | 'unknown_certificate'
  | 'foreign_app'
  /** An app_id no Alipay app can have, refused before any lookup. */
  | 'malformed_app_id'
  | 'no_out_trade_no'
  | 'unknown_trade_status'
  | 'other_order';

export type NotifyVerdict = { ok: true; report: TradeReport } | { ok: false; reason: string; rejection: NotifyRejection };

const TRADE_STATUSES = new Set(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED']);

/** Java's Character.isWhitespace, which Alipay's StringUtils.isEmpty uses to call a value empty. */
const BLANK = /^[\t\n\v\f\r\x1C-\x1F \u1680\u2000-\u2006\u2008-\u200A\u2028\u2029\u205F\u3000]*$/;

/**
 * Alipay's sign content: the parameters not excluded whose key and value are not empty, sorted by
 * key, `k=v` joined by `&`, over the form-decoded values. Alipay signs that way
 * (AlipaySignature.getSignContent in its Java SDK skips empty values); alipay-sdk for Node keeps
 * them as `k=`, which fails any notify that carries an empty parameter.
 */
function signContent(params: Record<string, string>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key) && !BLANK.test(key) && !BLANK.test(params[key]!))
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

/**
 * True when `sign` is Alipay's SHA256withRSA (RSA2) signature over the notify. alipay-sdk's
 * checkNotifySignV2 lets the notify's own sign_type pick the algorithm, so `sign_type=RSA` made it
 * accept SHA1withRSA; here sign_type picks nothing. Trade notifies leave sign_type out of the signed
 * content (Alipay's rsaCheckV1); a few other notifies keep it in (rsaCheckV2): both are tried, as
 * alipay-sdk does, with RSA2 either way.
 */
export function verifyNotifySignature(verifier: AlipaySdk, params: Record<string, string>): boolean {
  const sign = params.sign;
  if (!sign) return false;
  return [['sign', 'sign_type'], ['sign']].some((exclude) => {
    try {
      return verifier.rsaCheck(signContent(params, exclude), sign, 'RSA2');
    } catch {
      return false; // a malformed sign (not base64, wrong length) is just a bad signature
    }
  });
}

export function readNotify(verifier: AlipaySdk, appId: string, body: unknown): NotifyVerdict {
  if (typeof body !== 'object' || body === null) return { ok: false, reason: 'no form body', rejection: 'no_form_body' };
  const params = body as Record<string, unknown>;
  if (Object.values(params).some((value) => typeof value !== 'string')) {
    return { ok: false, reason: 'repeated or nested parameters', rejection: 'repeated_parameters' };
  }
  const form = params as Record<string, string>;
  // An empty alipay_cert_sn is outside the signed content, like any empty value: it names nothing.
  const certificateProblem = unknownCertificate(verifier, BLANK.test(form.alipay_cert_sn ?? '') ? undefined : form.alipay_cert_sn);
  if (certificateProblem) return { ok: false, reason: certificateProblem, rejection: 'unknown_certificate' };
  if (!verifyNotifySignature(verifier, form)) return { ok: false, reason: 'signature does not verify', rejection: 'bad_signature' };
  // Empty values are outside the signed content, so anyone could add one: none is read.
  const fields = Object.fromEntries(Object.entries(form).filter(([, value]) => !BLANK.test(value)));
  if (fields.app_id !== appId) return { ok: false, reason: `app_id ${fields.app_id ?? '(none)'} is not ours`, rejection: 'foreign_app' };
  if (!fields.out_trade_no) return { ok: false, reason: 'no out_trade_no', rejection: 'no_out_trade_no' };
  if (!fields.trade_status || !TRADE_STATUSES.has(fields.trade_status)) {
    return { ok: false, reason: `unknown trade_status ${fields.trade_status ?? '(none)'}`, rejection: 'unknown_trade_status' };
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
      // Present after a refund: such a notify reports money going back, never a new payment.
      ...(fields.refund_fee ? { refundFee: fields.refund_fee } : {}),
      ...(fields.out_biz_no ? { outBizNo: fields.out_biz_no } : {}),
    },
  };
}
