// Every workflow the worker registers.
export { paymentWorkflow } from './payment.js';
