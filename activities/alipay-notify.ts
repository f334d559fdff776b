// Verifies Alipay's notify inside the workflow's own run: the signal carries the signed form
// parameters, so whoever can reach Temporal still cannot confirm a payment without Alipay's key.
import type { AlipaySdk } from 'alipay-sdk';
import type { NotifyActivities } from '../lib/activities.js';
import { readNotify } from '../lib/alipay-notify.js';

export function createNotifyActivities(verifier: AlipaySdk): NotifyActivities {
  return {
    async verifyAlipayNotify({ appId, outTradeNo, params }) {
      const verdict = readNotify(verifier, appId, params);
      if (verdict.ok && verdict.report.outTradeNo !== outTradeNo) {
        return { ok: false, reason: `out_trade_no ${verdict.report.outTradeNo} is not this order`, rejection: 'other_order' };
      }
      return verdict;
    },
  };
}
