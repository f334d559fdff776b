// Workflow interceptors: a workflow started by an API request (its memo holds the request id) writes
// it on every log line, and hands it to each activity it schedules in a header, so the activity's
// lines carry it too (worker/worker.ts reads it there). Bundled with the workflows
// (WORKFLOW_INTERCEPTOR_MODULES); nothing here changes what a workflow does.
import { defaultPayloadConverter, type Headers } from '@temporalio/common';
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { REQUEST_ID_MEMO, REQUEST_ID_TEMPORAL_HEADER } from '../lib/platform/request-ids.js';

function requestId(): string | undefined {
  const id = workflowInfo().memo?.[REQUEST_ID_MEMO];
  return typeof id === 'string' ? id : undefined;
}

function withRequestIdHeader(headers: Headers): Headers {
  const id = requestId();
  return id === undefined ? headers : { ...headers, [REQUEST_ID_TEMPORAL_HEADER]: defaultPayloadConverter.toPayload(id) };
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes(input, next) {
        const id = requestId();
        return next(id === undefined ? input : { ...input, requestId: id });
      },
      scheduleActivity(input, next) {
        return next({ ...input, headers: withRequestIdHeader(input.headers) });
      },
      scheduleLocalActivity(input, next) {
        return next({ ...input, headers: withRequestIdHeader(input.headers) });
      },
    },
  ],
});
