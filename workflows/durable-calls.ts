// The activities the workflows call once a decision hangs on them, each with the one retry policy
// it gets everywhere: the read model until it answers, Alipay backing off to a minute while it is
// unavailable (an answer that cannot be placed comes back as FAILURE.alipayUnplaceable).
import { proxyActivities } from '@temporalio/workflow';
import type { AlipayActivities, LedgerActivities } from '../lib/payments/activity-contracts.js';

export const ledger = proxyActivities<LedgerActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
});

export const alipay = proxyActivities<AlipayActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '1m' },
});
