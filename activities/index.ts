// Every activity the worker registers, built from its infrastructure clients.
import type pg from 'pg';
import type { AlipaySdk } from 'alipay-sdk';
import { createAlipayActivities, type AlipayActivityOptions } from './alipay.js';
import { createNotifyActivities } from './alipay-notify.js';
import { createLedgerActivities } from './ledger.js';
import { createRefundActivities } from './refunds.js';

export function createActivities(deps: { alipay: AlipaySdk; pool: pg.Pool; alipayOptions: AlipayActivityOptions }) {
  return {
    ...createAlipayActivities(deps.alipay, deps.alipayOptions),
    ...createNotifyActivities(deps.alipay),
    ...createLedgerActivities(deps.pool),
    ...createRefundActivities(deps.pool),
  };
}
