// Merchants' order numbers and the out_trade_no Alipay knows. Alipay's out_trade_no is unique per
// app and allows only letters, digits and underscores, at most 64; merchants may use '-' and may
// share numbers. The mapping is reversible without any lookup, so a notify finds its workflow
// while PostgreSQL is down: <merchantId>_<number, with '_' written "_0" and '-' written "_1">.

/** A merchant's id, as lib/merchants/accounts.ts makes them (and the merchants table checks). */
export const MERCHANT_ID_PATTERN = /^m[a-z0-9]{9}$/;
const MERCHANT_ID_LENGTH = 10;
const ALIPAY_OUT_TRADE_NO = /^[A-Za-z0-9_]{1,64}$/;
export const MAX_ALIPAY_OUT_TRADE_NO = 64;

export function toAlipayOutTradeNo(merchantId: string, orderNo: string): string {
  return `${merchantId}_${orderNo.replace(/[_-]/g, (c) => (c === '_' ? '_0' : '_1'))}`;
}

/** The merchant and its number behind an out_trade_no, or undefined when it is not one of ours. */
export function fromAlipayOutTradeNo(outTradeNo: string): { merchantId: string; orderNo: string } | undefined {
  const cut = outTradeNo.indexOf('_');
  const merchantId = outTradeNo.slice(0, cut);
  const escaped = outTradeNo.slice(cut + 1);
  if (cut < 0 || !MERCHANT_ID_PATTERN.test(merchantId) || !/^(?:[A-Za-z0-9]|_[01])+$/.test(escaped)) return undefined;
  return { merchantId, orderNo: escaped.replace(/_([01])/g, (_m, d: string) => (d === '0' ? '_' : '-')) };
}

/** True when the merchant's number maps to a valid Alipay out_trade_no. */
export function fitsAlipay(merchantId: string, orderNo: string): boolean {
  return ALIPAY_OUT_TRADE_NO.test(toAlipayOutTradeNo(merchantId, orderNo));
}

/** How long a merchant's number may be, each _ and - counting as two: 53 (64, less the merchant id and its _). */
export const MAX_ORDER_NUMBER_WEIGHT = MAX_ALIPAY_OUT_TRADE_NO - MERCHANT_ID_LENGTH - 1;

/**
 * fitsAlipay as a regular expression, for the OpenAPI document: one branch per count k of _ and -,
 * each allowing at most MAX_ORDER_NUMBER_WEIGHT - k characters.
 */
export function fittingOrderNumberPattern(): string {
  const branches = [`[A-Za-z0-9]{1,${MAX_ORDER_NUMBER_WEIGHT}}`];
  for (let k = 1; 2 * k <= MAX_ORDER_NUMBER_WEIGHT; k++) {
    branches.push(`(?=(?:[A-Za-z0-9]*[_-]){${k}}[A-Za-z0-9]*$)[A-Za-z0-9_-]{1,${MAX_ORDER_NUMBER_WEIGHT - k}}`);
  }
  return `^(?:${branches.join('|')})$`;
}
