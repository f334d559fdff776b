// Request ids: every API answer carries one (Request-Id), every error body too, and every log line
// of that request and of the workflow it started, so a merchant's failed call can be found in the
// logs. Plain constants and checks, importable from workflow code; the per-request context lives in
// lib/platform/request-context.ts.

/** The answer header, and the caller's header whose well-formed value is kept. */
export const REQUEST_ID_HEADER = 'Request-Id';
export const CALLER_REQUEST_ID_HEADER = 'X-Request-Id';
/** The memo field of a workflow a request started; the workflow's log lines carry it. */
export const REQUEST_ID_MEMO = 'requestId';
/** The memo fields of a workflow started while tracing: the trace and span of the request that
 *  started it (api/tracing.ts), so a later notify links to it and the timeline names it. */
export const TRACE_ID_MEMO = 'traceId';
export const SPAN_ID_MEMO = 'spanId';
/** The Temporal header that takes it from a workflow to its activities. */
export const REQUEST_ID_TEMPORAL_HEADER = 'durapay-request-id';

/** What a caller's X-Request-Id must look like to be kept: 1-128 of A-Z a-z 0-9 . _ : - */
export const CALLER_REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
