// The Alipay activities, assembled from one module per method group (alipay/): the QR-code trade's
// precreate, query, close and void, the barcode charge, and the refund, all through one gateway
// call that verifies every answer's RSA2 signature and sorts failures into retried and final.
import type { AlipayActivities } from '../lib/payments/activity-contracts.js';
import type { PaymentCodeOpener } from '../lib/alipay/payment-code.js';
import { createGateway, type AlipayClients } from './alipay/gateway.js';
import { tradeActivities } from './alipay/trades.js';
import { chargeActivities } from './alipay/barcode.js';
import { refundActivities } from './alipay/refunds.js';

export type { AlipayClients } from './alipay/gateway.js';

export interface AlipayActivityOptions {
  /** How long an answer that cannot be placed is retried before it is reported as unplaceable. */
  unplaceableRetryMs: number;
  /** Opens the payment codes the API sealed (DURAPAY_MASTER_KEY); unset: barcode orders fail. */
  paymentCodes?: PaymentCodeOpener;
}

export function createAlipayActivities(apps: AlipayClients, options: AlipayActivityOptions): AlipayActivities {
  const gateway = createGateway(apps, options);
  return {
    ...tradeActivities(gateway),
    ...chargeActivities(gateway, options.paymentCodes),
    ...refundActivities(gateway),
  };
}
