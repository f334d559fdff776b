// What the worker adds to traces (lib/platform/tracing.ts; worker/start-tracing.ts starts it):
// Temporal's activity interceptors (an activity's span, a child of the workflow's that scheduled
// it, and trace ids on the SDK's log lines), the sink through which the workflows' spans, made in
// their sandbox (workflows/tracing.ts), are exported here. Nothing when tracing is off.
import { createRequire } from 'node:module';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
// Where Temporal's interceptors carry a span's context from a workflow to what it starts.
import { TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { currentTraceIds, tracingInUse } from '../lib/platform/tracing.js';

const require = createRequire(import.meta.url);
const otel = () => require('@temporalio/interceptors-opentelemetry') as typeof import('@temporalio/interceptors-opentelemetry');


/** An activity of a traced workflow runs in a span of its own; one of an untraced workflow (a
 *  Schedule's reconciliation) starts no trace. The SDK's lines about the activity carry the span's
 *  ids from the moment it starts ("Activity completed", "Activity failed" among them). */
export function activityTracingInterceptors(): ActivityInterceptorsFactory[] {
  if (!tracingInUse().on) return [];
  const { OpenTelemetryActivityInboundInterceptor } = otel();
  return [
    (ctx) => {
      const traced = new OpenTelemetryActivityInboundInterceptor(ctx);
      let spanIds: ReturnType<typeof currentTraceIds>;
      return {
        inbound: {
          execute(input, next) {
            if (input.headers[TRACE_HEADER] === undefined) return next(input);
            return traced.execute(input, (inSpan) => {
              spanIds = currentTraceIds();
              return next(inSpan);
            });
          },
        },
        outbound: {
          getLogAttributes: (attributes, next) => next({ ...(currentTraceIds() ?? spanIds), ...attributes }),
        },
      };
    },
  ];
}

/** The WorkflowInfo fields a workflow's span keeps (Temporal's sink adds every one): which run,
 *  where; not its memo, search attributes or last result, which name the order's details. */
const WORKFLOW_SPAN_INFO = new Set(['workflowId', 'runId', 'workflowType', 'taskQueue', 'namespace', 'attempt', 'historyLength', 'currentBuildId']);
/** What Temporal's sink merges into a workflow's spans: WorkflowInfo's fields (the rest are the span's own). */
const WORKFLOW_INFO_FIELDS = new Set([
  ...WORKFLOW_SPAN_INFO,
  'searchAttributes', 'typedSearchAttributes', 'memo', 'parent', 'root', 'firstExecutionRunId', 'originalExecutionRunId',
  'continuedFromExecutionRunId', 'startTime', 'runStartTime', 'executionTimeoutMs', 'executionExpirationTime', 'runTimeoutMs',
  'taskTimeoutMs', 'retryPolicy', 'cronSchedule', 'cronScheduleToScheduleInterval', 'historySize', 'continueAsNewSuggested',
  'targetWorkerDeploymentVersionChanged', 'suggestedContinueAsNewReasons', 'currentDeploymentVersion', 'lastResult',
  'lastFailure', 'unsafe', 'priority', 'currentBuildId',
]);

function workflowSpanProcessor(next: SpanProcessor): SpanProcessor {
  return {
    onStart: (span, parentContext) => next.onStart(span, parentContext),
    onEnd(span) {
      const attributes = span.attributes as Record<string, unknown>;
      for (const [key, value] of Object.entries(attributes)) {
        const info = WORKFLOW_INFO_FIELDS.has(key) && !WORKFLOW_SPAN_INFO.has(key);
        if (info || (value !== null && typeof value === 'object' && !Array.isArray(value))) delete attributes[key];
      }
      next.onEnd(span);
    },
    forceFlush: () => next.forceFlush(),
    shutdown: () => Promise.resolve(), // the process's tracing shuts the processor down
  };
}

/** The workflows' span sink: to the exporter when tracing, else nowhere (a workflow traced before
 *  a restart with tracing off still finds its sink). */
export function workflowTracingSinks(): InjectedSinks<OpenTelemetrySinks> {
  const tracing = tracingInUse();
  if (!tracing.on || !tracing.spanProcessor || !tracing.resource) return { exporter: { export: { fn: () => {} } } };
  return { exporter: otel().makeWorkflowExporter(workflowSpanProcessor(tracing.spanProcessor), tracing.resource) };
}
