// What a daily reconciliation finds about one order: made by the reconciliation
// (lib/payments/reconciliation.ts) and carried by the order's own workflow, across its runs too
// (lib/payments/payment.ts). A file of its own so that the payment domain, which the reconciliation
// imports, needs nothing of the reconciliation back.

/**
 * - missing_local: Alipay's bill has a payment durapay never confirmed (or has no order for);
 * - missing_gateway: durapay says paid, and the bill has no such payment;
 * - amount_mismatch: both have the payment, with other amounts;
 * - status_mismatch: the order's refund state disagrees with the bill as a whole (durapay says
 *   REFUNDED and the bill shows no refund, or the bill shows refunds of an order durapay says PAID),
 *   or the bill's trade is another than durapay's;
 * - refund_mismatch: one refund on one side only, or with another amount.
 */
export type MismatchType = 'missing_local' | 'missing_gateway' | 'amount_mismatch' | 'status_mismatch' | 'refund_mismatch';
export const MISMATCH_TYPES: readonly MismatchType[] = ['missing_local', 'missing_gateway', 'amount_mismatch', 'status_mismatch', 'refund_mismatch'];

/** What a reconciliation found about one order, as it is signalled to that order's workflow. */
export interface Finding {
  /** The Beijing day of the bill, YYYY-MM-DD. */
  date: string;
  type: MismatchType;
  detail: string;
  alipayTradeNo?: string;
  outRequestNo?: string;
  localAmountFen?: number;
  gatewayAmountFen?: number;
}
