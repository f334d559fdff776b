// Traces, from an API and a worker in processes of their own exporting to an OTLP receiver here:
// the merchant's request, the Temporal client call, the workflow and its activities, each Alipay
// call, PostgreSQL queries and webhook deliveries form one trace per request; Alipay's notify has
// a trace of its own linked to its order's; log lines carry the trace ids; no span holds a secret.
// The worker exports with the default protocol (http/protobuf), the API with http/json.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { findFreePort } from '../lib/platform/free-port.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { tracingProtocol } from '../lib/platform/tracing.js';
import { newAuthCode } from './support/payment-codes.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

/** OTLP/HTTP on loopback: decodes protobuf with the generated types the exporter itself uses. */
class OtlpReceiver {
  readonly spans: ExportedSpan[] = [];
  readonly contentTypes = new Set<string>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    const require = createRequire(import.meta.url);
    const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
    const request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const type = req.headers['content-type'] ?? '';
        this.contentTypes.add(type);
        const body = Buffer.concat(chunks);
        const message = type.startsWith('application/json')
          ? JSON.parse(body.toString('utf8'))
          : request.toObject(request.decode(body), { longs: String, bytes: (b: Uint8Array) => Buffer.from(b).toString('hex') });
        this.collect(message, type.startsWith('application/json'));
        res.writeHead(200, { 'content-type': type.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' }).end(type.startsWith('application/json') ? '{}' : undefined);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private collect(message: { resourceSpans?: unknown[] }, json: boolean): void {
    const hex = (id: unknown) => (typeof id === 'string' ? id : Buffer.from((id as Uint8Array) ?? []).toString('hex'));
    const value = (v: Record<string, unknown>): unknown => v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue ?? JSON.stringify(v);
    for (const resourceSpans of (message.resourceSpans ?? []) as any[]) {
      const resource = Object.fromEntries((resourceSpans.resource?.attributes ?? []).map((a: any) => [a.key, value(a.value)]));
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service: String(resource['service.name']),
            traceId: json ? span.traceId : hex(span.traceId),
            spanId: json ? span.spanId : hex(span.spanId),
            parentSpanId: (json ? span.parentSpanId : hex(span.parentSpanId)) ?? '',
            name: span.name,
            kind: typeof span.kind === 'number' ? span.kind : Number(span.kind),
            attributes: Object.fromEntries((span.attributes ?? []).map((a: any) => [a.key, value(a.value)])),
            links: (span.links ?? []).map((link: any) => ({ traceId: json ? link.traceId : hex(link.traceId), spanId: json ? link.spanId : hex(link.spanId) })),
          });
        }
      }
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A merchant's webhook endpoint that takes everything. */
async function startWebhookReceiver(): Promise<{ url: string; received: string[]; close(): Promise<void> }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let stack: Stack;
const receiver = new OtlpReceiver();
beforeAll(async () => {
  stack = await startStack();
  // Only the traced worker process below takes this stack's tasks.
  await stack.stopWorker();
  await receiver.start();
});
afterAll(async () => {
  await stack?.stop();
  await receiver.stop();
});

const SERVER = 2; // OTLP SpanKind: SPAN_KIND_SERVER
const CLIENT = 3;

describe('tracing', () => {
  it('follows a paid and refunded order from the merchant to Alipay and back, one trace per request, with no secret', async () => {
    const lines: { from: string; text: string }[] = [];
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' };
    const worker = await stack.spawnWorkerProcess({ ...otel, LOG_LEVEL: 'debug' }, (text) => lines.push({ from: 'worker', text }));
    const port = await findFreePort();
    const api = await stack.spawnApiProcess(
      { ...otel, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', PORT: String(port), ALIPAY_NOTIFY_URL: `http://127.0.0.1:${port}/alipay/notify`, LOG_LEVEL: 'debug' },
      (text) => lines.push({ from: 'api', text }),
    );
    const hooks = await startWebhookReceiver();
    const orderNo = stack.newOrderNo('traced');
    const barcodeOrder = stack.newOrderNo('traced-barcode');
    const authCode = newAuthCode();
    let timelineTraceId: string | null = null;
    try {
      const created = await api.client.createPayment({ outTradeNo: orderNo, amount: '12.00', subject: 'traced', notifyUrl: hooks.url });
      expect(created.status).toBe(201);
      expect((await stack.simCall('POST', `/sim/trades/${orderNo}/pay`)).status).toBe(200);
      await waitFor(`${orderNo} to be PAID`, async () => ((await api.client.getPayment(orderNo)).body?.status === 'PAID' ? true : undefined));
      const refund = await api.client.call('POST', `/v1/payments/${orderNo}/refunds`, { outRequestNo: 'traced-r1', amount: '2.50' });
      expect(refund.status).toBeLessThan(300);
      await waitFor('the refund to succeed', async () => {
        const answer = await api.client.call('GET', `/v1/payments/${orderNo}/refunds/traced-r1`);
        return answer.body?.status === 'SUCCEEDED' ? true : undefined;
      });
      await waitFor('the paid and refund webhooks', () => (hooks.received.length >= 2 ? true : undefined));
      // A barcode payment: the buyer's payment code must not reach any span.
      expect((await stack.simCall('PUT', `/sim/payment-codes/${authCode}`, { kind: 'pays' })).status).toBe(200);
      const barcode = await api.client.createPayment({ outTradeNo: barcodeOrder, amount: '3.30', subject: 'traced', method: 'barcode', authCode });
      expect(barcode.status).toBe(201);
      await waitFor(`${barcodeOrder} to be PAID`, async () => ((await api.client.getPayment(barcodeOrder)).body?.status === 'PAID' ? true : undefined));
      await waitFor('the notify to be handed to its order', () =>
        lines.some((line) => line.text.includes('alipay notify handed to its order') && line.text.includes(stack.alipayNo(orderNo))) ? true : undefined,
      );
      // The order's timeline names its trace.
      const timeline = await fetch(`${api.url}/ops/payments/${encodeURIComponent(stack.workflowId(orderNo))}/timeline`, {
        headers: { authorization: `Bearer ${stack.opsToken}` },
      });
      expect(timeline.status).toBe(200);
      timelineTraceId = ((await timeline.json()) as { traceId: string | null }).traceId;
    } finally {
      // Stopped, not killed: each exports what it holds on its way out.
      await Promise.all([api.stop(), worker.stop()]);
      await hooks.close();
    }

    const spans = receiver.spans;
    expect(receiver.contentTypes).toEqual(new Set(['application/x-protobuf', 'application/json']));
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const ancestors = (span: ExportedSpan): ExportedSpan[] => {
      const chain: ExportedSpan[] = [];
      for (let parent = byId.get(span.parentSpanId); parent; parent = byId.get(parent.parentSpanId)) chain.push(parent);
      return chain;
    };
    const named = (name: string) => spans.filter((span) => span.name === name);
    const services = new Set(spans.map((span) => span.service));
    expect(services).toEqual(new Set(['durapay-api', 'durapay-worker']));

    // The merchant's create: one trace from the API's HTTP span through Temporal to Alipay.
    const createSpans = named('POST /v1/payments').filter((span) => span.kind === SERVER && span.service === 'durapay-api');
    expect(createSpans).toHaveLength(2);
    const orderWorkflowId = stack.workflowId(orderNo);
    const runs = named('RunWorkflow:paymentWorkflow').filter((span) => span.attributes.workflowId === orderWorkflowId);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    const create = byId.get(ancestors(runs[0]!).at(-1)?.spanId ?? '');
    expect(create?.name).toBe('POST /v1/payments');
    expect(create?.parentSpanId ?? '').toBe('');
    const trace = create!.traceId;
    const inTrace = spans.filter((span) => span.traceId === trace);
    // The Temporal client's call sits under the HTTP span, the workflow under the client's call.
    const clientCall = byId.get(runs[0]!.parentSpanId)!;
    expect(clientCall.service).toBe('durapay-api');
    expect(clientCall.name).toBe('UpdateWithStartWorkflow:createPayment');
    expect(ancestors(clientCall)).toContain(create);
    // Precreate is a span named for its method, under an activity of the workflow, with its outcome.
    const precreate = inTrace.find((span) => span.name === 'alipay.trade.precreate');
    expect(precreate, 'alipay.trade.precreate in the create trace').toBeDefined();
    expect(precreate!.kind).toBe(CLIENT);
    expect(precreate!.attributes).toMatchObject({ 'alipay.method': 'alipay.trade.precreate', 'alipay.result': 'success', 'alipay.code': '10000' });
    expect(typeof precreate!.attributes['alipay.latency_ms']).toMatch(/number|string/);
    expect(ancestors(precreate!).map((span) => span.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^RunActivity:/), 'RunWorkflow:paymentWorkflow', 'POST /v1/payments']));
    // PostgreSQL queries, in the API's request and in the worker's activities.
    const queries = inTrace.filter((span) => span.attributes['db.system'] === 'postgresql');
    expect(queries.some((span) => span.service === 'durapay-api')).toBe(true);
    expect(queries.some((span) => span.service === 'durapay-worker')).toBe(true);
    // The PAID webhook's POST, in the order's trace.
    const deliveries = named('webhook.deliver').filter((span) => span.traceId === trace);
    expect(deliveries.some((span) => span.attributes['durapay.event_type'] === 'payment.paid' && span.attributes['webhook.outcome'] === 'delivered')).toBe(true);

    // Alipay's notify: a trace of its own, linked to its order's; the workflow reads the signal in it.
    const notify = named('POST /alipay/notify').find((span) => span.links.some((link) => link.traceId === trace));
    expect(notify, 'a notify linked to the order').toBeDefined();
    expect(notify!.traceId).not.toBe(trace);
    expect(notify!.parentSpanId ?? '').toBe('');
    expect(spans.some((span) => span.traceId === notify!.traceId && span.name === 'HandleSignal:alipayNotify')).toBe(true);

    // The refund's request: its own trace down to alipay.trade.refund.
    const refundRequest = named('POST /v1/payments/:outTradeNo/refunds')[0];
    expect(refundRequest).toBeDefined();
    const refundCall = spans.find((span) => span.name === 'alipay.trade.refund' && span.traceId === refundRequest!.traceId);
    expect(refundCall?.attributes['alipay.result']).toBe('success');
    expect(ancestors(refundCall!)).toContain(refundRequest);

    // The order's trace is in its workflow's memo: the timeline names it.
    // A traced run replays on a worker with tracing off: spans add no command to its history.
    const connection = await Connection.connect(temporalConnectionOptions(stack.config.temporal));
    try {
      const handle = new Client({ connection, namespace: stack.config.temporal.namespace }).workflow.getHandle(orderWorkflowId);
      expect((await handle.describe()).memo?.traceId).toBe(trace);
      expect(timelineTraceId).toBe(trace);
      const workflowBundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
      await Worker.runReplayHistory({ workflowBundle }, await handle.fetchHistory(), orderWorkflowId);
    } finally {
      await connection.close();
    }

    // Logs and traces join: the worker's lines about the order carry its trace's id.
    const workerLines = lines
      .filter((line) => line.from === 'worker' && line.text.includes(stack.alipayNo(orderNo)))
      .map((line) => JSON.parse(line.text) as Record<string, unknown>);
    const opened = workerLines.find((line) => line.msg === 'Activity completed' && line.activityType === 'openOrder');
    expect(opened?.trace_id).toBe(trace);
    expect(spans.find((span) => span.spanId === opened?.span_id)?.name).toBe('RunActivity:openOrder');
    expect(workerLines.every((line) => line.trace_id === undefined || (typeof line.span_id === 'string' && /^[0-9a-f]{16}$/.test(line.span_id)))).toBe(true);
    const notifyLine = lines.find((line) => line.from === 'api' && line.text.includes('alipay notify handed to its order') && line.text.includes(stack.alipayNo(orderNo)));
    expect(JSON.parse(notifyLine!.text).trace_id).toBe(notify!.traceId);

    // No secret in any span: names, attributes, links and resources, whole or in part.
    const { alipay, masterKey } = stack.config;
    const pieces = (name: string, secret: string): [string, string][] => [
      [name, secret],
      ...secret
        .split('\n')
        .filter((line) => line.length >= 32 && !line.startsWith('-----'))
        .map((line, i): [string, string] => [`${name} (line ${i + 1})`, line]),
    ];
    const secrets: [string, string][] = [
      ...pieces('the app private key', alipay.privateKey),
      ['the merchant secret', stack.merchant.secret],
      ['the webhook secret', stack.merchant.webhookSecret],
      ['the ops token', stack.opsToken],
      ['the payment code', authCode],
      ['the master key (hex)', masterKey!.toString('hex')],
      ['the master key (base64)', masterKey!.toString('base64')],
    ];
    const exported = JSON.stringify(spans);
    expect(exported.length).toBeGreaterThan(10_000);
    expect(secrets.filter(([, secret]) => exported.includes(secret)).map(([name]) => name)).toEqual([]);
    // Nor a signature (Alipay's, on requests and notifies; ours, on webhooks), nor a buyer's id.
    expect(exported).not.toMatch(/[A-Za-z0-9+/]{200,}={0,2}/);
    expect(exported).not.toMatch(/\bsign=|durapay-signature|buyer_id|buyerId/i);
  }, 180_000);

  it('is off without an OTLP endpoint, loading no SDK, and refuses a protocol it cannot serve', () => {
    // This process runs an API and a worker of its own (the stack), untraced.
    const require = createRequire(import.meta.url);
    expect(Object.keys(require.cache).filter((file) => /@opentelemetry[\\/]sdk-trace-node/.test(file))).toEqual([]);
    expect(tracingProtocol({})).toBeUndefined();
    expect(tracingProtocol({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe('http/protobuf');
    expect(tracingProtocol({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBe('http/json');
    expect(tracingProtocol({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingProtocol({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(() => tracingProtocol({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      'OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported; use http/protobuf (the default) or http/json',
    );
  });

  it('stops a process whose OTEL_* settings cannot be served, saying which', async () => {
    const lines: string[] = [];
    const api = await stack
      .spawnApiProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, (text) => lines.push(text))
      .catch((err: Error) => err);
    expect(api).toBeInstanceOf(Error);
    expect(lines.join('\n')).toContain('OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported');
  });
});
