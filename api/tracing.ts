// What the API adds to traces (lib/platform/tracing.ts; api/start-tracing.ts starts it): an
// order's trace in its workflow's memo, and a notify's link to the trace of the order it is about.
// Nothing when tracing is off.
import { trace, TraceFlags } from '@opentelemetry/api';
import type { Client } from '@temporalio/client';
import { SPAN_ID_MEMO, TRACE_ID_MEMO } from '../lib/platform/request-ids.js';
import { currentTraceIds, tracingInUse } from '../lib/platform/tracing.js';

/** The memo fields naming the trace of the request in progress: its order's trace, later read by
 *  the notify's link and the order's timeline. */
export function traceMemo(): Record<string, string> {
  const ids = currentTraceIds();
  return ids === undefined ? {} : { [TRACE_ID_MEMO]: ids.trace_id, [SPAN_ID_MEMO]: ids.span_id };
}

const HEX = { trace: /^[0-9a-f]{32}$/, span: /^[0-9a-f]{16}$/ };

/** Links the span in progress (an Alipay notify's own trace) to the trace that created the order,
 *  read from its workflow's memo. Tracing only; a workflow that cannot be read leaves no link. */
export async function linkToOrderTrace(client: Client, workflowId: string): Promise<void> {
  const span = trace.getActiveSpan();
  if (!tracingInUse().on || span === undefined) return;
  try {
    const { memo } = await client.workflow.getHandle(workflowId).describe();
    const traceId = memo?.[TRACE_ID_MEMO];
    const spanId = memo?.[SPAN_ID_MEMO];
    if (typeof traceId !== 'string' || typeof spanId !== 'string' || !HEX.trace.test(traceId) || !HEX.span.test(spanId)) return;
    span.addLink({ context: { traceId, spanId, traceFlags: TraceFlags.SAMPLED }, attributes: { 'durapay.link': 'order' } });
  } catch {
    // The link is a convenience: the notify is handled without it.
  }
}
