// OpenTelemetry tracing for the API and the worker: on when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, exported over OTLP/HTTP, and off otherwise. Off, the
// SDK is not even loaded: @opentelemetry/api's calls elsewhere answer with no-op spans.
//
// The standard OTEL_* variables apply (the SDK reads them): the endpoint and its headers, the
// protocol (http/protobuf by default, http/json on request), OTEL_SERVICE_NAME (durapay-api or
// durapay-worker when unset), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*.
//
// Spans come from: the API's HTTP server (Node's http instrumentation, named by route in
// api/metrics.ts), PostgreSQL queries (the pg instrumentation), Temporal's client, workflow and
// activity interceptors (worker/tracing.ts, workflows/tracing.ts), and spans of our own for each
// Alipay call and webhook delivery (withClientSpan below). No span carries a key, a signature, a
// buyer's id or a payment code: outgoing HTTP calls are not instrumented (an Alipay request's URL
// holds its signature), and queries are recorded without their parameters.
import { createRequire } from 'node:module';
import type { IncomingMessage } from 'node:http';
import { suppressTracing } from '@opentelemetry/core';
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ConfigError, type Env } from './environment.js';

// The SDK is CommonJS; loaded with require only when tracing is on, and before express and pg are,
// so its require hooks see them (lib/platform/database.ts loads pg through require for this).
const require = createRequire(import.meta.url);

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface Tracing {
  readonly on: boolean;
  /** Where the worker hands the workflows' spans (they are made in the sandbox, exported here). */
  readonly spanProcessor?: SpanProcessor;
  readonly resource?: Resource;
  /** An OTEL_* setting that cannot be served: the process reports it as it starts, and stops. */
  readonly configError?: ConfigError;
  /** Sends what is buffered; the process calls it on its way out. */
  shutdown(): Promise<void>;
}

/** The protocol when tracing is on, undefined when off; a protocol not served here is refused. */
export function tracingProtocol(env: Env): OtlpProtocol | undefined {
  if (!(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT)) return undefined;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim() || 'otlp';
  if (exporter === 'none') return undefined;
  if (exporter !== 'otlp') throw new ConfigError(`OTEL_TRACES_EXPORTER: ${exporter} is not supported; use otlp (the default) or none`);
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    throw new ConfigError(`${name}: ${protocol} is not supported; use http/protobuf (the default) or http/json`);
  }
  return protocol as OtlpProtocol;
}

/** The cashier page's path holds the order's token: a span names the route, not the token. */
const CASHIER_TOKEN = /^(\/pay\/)[^/?]+/;
function incomingAttributes(req: IncomingMessage): Attributes {
  const target = (req.url ?? '/').replace(CASHIER_TOKEN, '$1:token');
  return { 'http.target': target, 'http.url': `http://${req.headers.host ?? 'localhost'}${target}` };
}

/** Paths scraped or probed every few seconds: no trace for them. */
const UNTRACED_PATHS = new Set(['/metrics', '/health', '/healthz', '/ready', '/readyz']);

let started: Tracing | undefined;

/** Starts tracing once per process (a second call answers the first's), before express and pg load:
 *  api/start-tracing.ts and worker/start-tracing.ts call it as the entry points' first import. */
export function startTracing(defaultServiceName: 'durapay-api' | 'durapay-worker', env: Env = process.env): Tracing {
  if (started) return started;
  let protocol: OtlpProtocol | undefined;
  try {
    protocol = tracingProtocol(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return (started = { on: false, configError: err, async shutdown() {} });
  }
  if (!protocol) return (started = { on: false, async shutdown() {} });

  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const resources = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const { OTLPTraceExporter } =
    protocol === 'http/json'
      ? (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http'))
      : (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'));

  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
  const resource = resources.Resource.default()
    .merge(new resources.Resource({ 'service.name': defaultServiceName }))
    .merge(resources.detectResourcesSync({ detectors: [resources.envDetectorSync] }));
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        disableOutgoingRequestInstrumentation: true,
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has(new URL(req.url ?? '/', 'http://api').pathname),
        startIncomingSpanHook: incomingAttributes,
      }),
      new PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: true }),
    ],
  });
  // Modules loaded before this line (node:http through ES imports) are patched on their next require.
  require('node:http');
  started = {
    on: true,
    spanProcessor,
    resource,
    shutdown: () => provider.shutdown(),
  };
  return started;
}

/** The tracing this process started, or tracing off when it started none (tests, tools). */
export function tracingInUse(): Tracing {
  return started ?? { on: false, async shutdown() {} };
}

/** A Temporal client's interceptors (the API's, and the worker's for the workflows its activities
 *  start): with tracing on, each call is a span whose context travels to the workflow in a header.
 *  None when off. */
export function temporalClientInterceptors(): { workflow: WorkflowClientInterceptor[] } | undefined {
  if (!tracingInUse().on) return undefined;
  const { OpenTelemetryWorkflowClientInterceptor } = require('@temporalio/interceptors-opentelemetry') as typeof import('@temporalio/interceptors-opentelemetry');
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/** The trace and span ids of the span in effect, for a log line; none when no span is. */
export function currentTraceIds(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

const tracer = () => trace.getTracer('durapay');

/**
 * `work` inside a client span named `name` (an Alipay method, or webhook.deliver), with nothing
 * recorded beneath it: the HTTP call it makes carries what no span may hold. `finish` adds what
 * the answer said; a thrown error marks the span failed. A no-op span when tracing is off.
 */
export async function withClientSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      return await context.with(suppressTracing(context.active()), () => work(span));
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
