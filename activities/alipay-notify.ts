// Verifies Alipay's notify inside the workflow's own run: the signal carries the signed form
// parameters, so whoever can reach Temporal still cannot confirm a payment without Alipay's key.
import type { NotifyActivities } from '../lib/payments/activity-contracts.js';
import { readNotify } from '../lib/alipay/notify.js';
import type { AlipayClients } from './alipay.js';

export function createNotifyActivities(apps: AlipayClients): NotifyActivities {
  return {
    async verifyAlipayNotify({ appId, outTradeNo, params }) {
      // Verified with the order's own app: another app's key proves nothing about this order.
      const verifier = await apps.client(appId);
      if (!verifier) return { ok: false, reason: `no Alipay app ${appId} is configured or registered`, rejection: 'foreign_app' };
      const verdict = readNotify(verifier, appId, params);
      if (verdict.ok && verdict.report.outTradeNo !== outTradeNo) {
        return { ok: false, reason: `out_trade_no ${verdict.report.outTradeNo} is not this order`, rejection: 'other_order' };
      }
      return verdict;
    },
  };
}
