// Every activity the worker registers, built from its infrastructure clients.
import type pg from 'pg';
import type { AlipaySdk } from 'alipay-sdk';
import { createAlipayActivities } from './alipay.js';
import { createLedgerActivities } from './ledger.js';

export function createActivities(deps: { alipay: AlipaySdk; pool: pg.Pool }) {
  return { ...createAlipayActivities(deps.alipay), ...createLedgerActivities(deps.pool) };
}
