// Every answer's Request-Id: a well-formed X-Request-Id from the caller is kept, else one is made.
// The request runs in its context (lib/platform/request-context.ts), so its log lines carry it; its
// error body carries it (api/errors.ts); a workflow it starts keeps it in its memo.
import { trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { currentRequestId, requestIdFor, withRequestId } from '../lib/platform/request-context.js';
import { CALLER_REQUEST_ID_HEADER, REQUEST_ID_HEADER, REQUEST_ID_MEMO } from '../lib/platform/request-ids.js';
import { traceMemo } from './tracing.js';

export const requestIds: RequestHandler = (req, res, next) => {
  const requestId = requestIdFor(req.get(CALLER_REQUEST_ID_HEADER));
  res.locals.requestId = requestId;
  res.set(REQUEST_ID_HEADER, requestId);
  trace.getActiveSpan()?.setAttribute('durapay.request_id', requestId);
  withRequestId(requestId, next);
};

/** The memo of a workflow this request starts: the request's id, and its trace while tracing. */
export function requestMemo(): { memo?: Record<string, string> } {
  const requestId = currentRequestId();
  const memo = { ...(requestId === undefined ? {} : { [REQUEST_ID_MEMO]: requestId }), ...traceMemo() };
  return Object.keys(memo).length === 0 ? {} : { memo };
}
