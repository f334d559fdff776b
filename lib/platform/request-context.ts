// The request id of the work in progress, for every log line written on its behalf: the API runs
// each request in it, the worker each activity of a workflow a request started. createLogger's
// mixin reads it, so no call site passes it along.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { CALLER_REQUEST_ID_PATTERN } from './request-ids.js';

const context = new AsyncLocalStorage<{ requestId: string }>();

export const currentRequestId = (): string | undefined => context.getStore()?.requestId;

export function withRequestId<T>(requestId: string | undefined, work: () => T): T {
  return requestId === undefined ? work() : context.run({ requestId }, work);
}

/** The caller's X-Request-Id when well formed, else a new req_<24 hex>. */
export function requestIdFor(callerValue: string | undefined): string {
  return callerValue !== undefined && CALLER_REQUEST_ID_PATTERN.test(callerValue) ? callerValue : `req_${randomBytes(12).toString('hex')}`;
}
