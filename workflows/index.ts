// Every workflow the worker registers.
export { paymentWorkflow } from './payment.js';
export { lateNotifyWorkflow } from './late-notify.js';
export { refundWorkflow } from './refund.js';
export { webhookDeliveryWorkflow, webhookPingWorkflow } from './webhooks.js';
export { dailyReconciliationWorkflow, reconciliationWorkflow } from './reconciliation.js';
export { reconciliationFindingsWorkflow } from './reconciliation-findings.js';
export { reviewWorkflow } from './review.js';
