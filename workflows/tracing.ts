// Workflow interceptors for tracing: a workflow started with a trace's context in its headers (by
// a client with tracing on: the API's, or the worker's for a webhook delivery) runs in a span of
// that trace, and so do its activities, child workflows, signals and next runs, through Temporal's
// own interceptors; their spans leave the sandbox through the worker's sink (worker/tracing.ts).
// A workflow started without one (tracing off, or a Schedule's) is not traced, and pays nothing.
// Spans add no command, so histories replay the same with tracing on or off. Bundled with the
// workflows (WORKFLOW_INTERCEPTOR_MODULES).
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
// Where Temporal's interceptors carry a span's context.
import { TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';


export const interceptors: WorkflowInterceptorsFactory = () => {
  let traced: { inbound: OpenTelemetryInboundInterceptor; outbound: OpenTelemetryOutboundInterceptor; internals: OpenTelemetryInternalsInterceptor } | undefined;
  return {
    inbound: [
      {
        execute(input, next) {
          if (input.headers[TRACE_HEADER] === undefined) return next(input);
          traced = { inbound: new OpenTelemetryInboundInterceptor(), outbound: new OpenTelemetryOutboundInterceptor(), internals: new OpenTelemetryInternalsInterceptor() };
          return traced.inbound.execute(input, next);
        },
        handleSignal: (input, next) => (traced && input.headers[TRACE_HEADER] !== undefined ? traced.inbound.handleSignal(input, next) : next(input)),
        handleUpdate: (input, next) => (traced && input.headers[TRACE_HEADER] !== undefined ? traced.inbound.handleUpdate(input, next) : next(input)),
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => (traced ? traced.outbound.scheduleActivity(input, next) : next(input)),
        scheduleLocalActivity: (input, next) => (traced ? traced.outbound.scheduleLocalActivity(input, next) : next(input)),
        startChildWorkflowExecution: (input, next) => (traced ? traced.outbound.startChildWorkflowExecution(input, next) : next(input)),
        continueAsNew: (input, next) => (traced ? traced.outbound.continueAsNew(input, next) : next(input)),
        signalWorkflow: (input, next) => (traced ? traced.outbound.signalWorkflow(input, next) : next(input)),
        getLogAttributes: (input, next) => (traced ? traced.outbound.getLogAttributes(input, next) : next(input)),
      },
    ],
    internals: [
      {
        dispose: (input, next) => (traced ? traced.internals.dispose(input, next) : next(input)),
      },
    ],
  };
};
