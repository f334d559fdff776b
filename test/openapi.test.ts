// The OpenAPI document against the real API: the document is valid OpenAPI 3.1, and every answer the
// real stack gives (each documented status this branch can produce, on every endpoint it serves)
// has a documented status and a body that matches the schema documented for it.
import { gzipSync } from 'node:zlib';
import type { Ajv2020, ValidateFunction } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Express } from 'express';
import { createApp } from '../api/app.js';
import { ERROR_CODES } from '../api/error-codes.js';
import { buildOpenApiDocument } from '../api/openapi.js';
import { createLogger } from '../lib/platform/logger.js';
import { Client, Connection } from '@temporalio/client';
import { SIGNATURE_HEADERS, signRequest } from '../lib/merchants/signing.js';
import { reconciliationWorkflowId } from '../lib/payments/reconciliation.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { documentAjv } from './support/openapi-ajv.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/** Every method and path the app routes, as the document writes them (`:id` as `{id}`). */
function servedRoutes(app: Express): string[] {
  const routes: string[] = [];
  const walk = (layers: any[], prefix: string) => {
    for (const layer of layers) {
      if (layer.route) {
        const path = `${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}');
        for (const method of Object.keys(layer.route.methods)) routes.push(`${method} ${path}`);
      } else if (Array.isArray(layer.handle?.stack)) {
        walk(layer.handle.stack, prefix + (typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : ''));
      }
    }
  };
  walk((app as any).router.stack, '');
  return [...new Set(routes)];
}

let stack: Stack;
let doc: any;
let ajv: Ajv2020;
beforeAll(async () => {
  // A bill that is not ready is asked for again only after an hour: today's reconciliation stays RUNNING.
  stack = await startStack({ orderTimeout: '60s', pollLadder: '1s', reconciliationBillWait: '1h', reconciliationBillTries: 2 });
  const served = await fetch(`${stack.api.url}/openapi.json`);
  expect(served.status).toBe(200);
  doc = await served.json();
  ajv = documentAjv(doc, { allErrors: true });
});
afterAll(async () => {
  await stack?.stop();
});

type Method = 'get' | 'post' | 'patch' | 'delete';
interface Answer {
  status: number;
  contentType: string;
  text: string;
  body: any;
}

/** The operation, then each status seen on it. */
const seen = new Map<string, Set<string>>();
const validators = new Map<string, ValidateFunction>();
const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Fails on a status the operation does not document, or a body that its schema refuses. */
function conforms(method: Method, template: string, answer: Answer): Answer {
  const operation = doc.paths[template]?.[method];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  const status = String(answer.status);
  expect(Object.keys(operation.responses), `${method.toUpperCase()} ${template} answered an undocumented ${status}: ${answer.text.slice(0, 500)}`).toContain(status);
  const mediaType = answer.contentType.split(';')[0]!.trim();
  const content = operation.responses[status].content ?? {};
  expect(Object.keys(content), `${method} ${template} ${status} as ${mediaType}`).toContain(mediaType);
  const key = `openapi.json#/${pointer('paths', template, method, 'responses', status, 'content', mediaType, 'schema')}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile({ $ref: key });
    validators.set(key, validate);
  }
  const valid = validate(answer.body);
  expect(valid, `${method.toUpperCase()} ${template} ${status}: ${ajv.errorsText(validate.errors)}\n${answer.text.slice(0, 1500)}`).toBe(true);
  const op = `${method} ${template}`;
  seen.set(op, (seen.get(op) ?? new Set()).add(status));
  return answer;
}

interface SendOptions {
  /** An object is sent as JSON; a string or Buffer as it is. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** Sign as the stack's merchant (default on /v1). */
  sign?: boolean;
}

async function send(method: Method, path: string, options: SendOptions = {}): Promise<Answer> {
  const { body } = options;
  const payload: string | Buffer | undefined = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...(payload === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
    ...((options.sign ?? path.startsWith('/v1'))
      ? signRequest(stack.merchant.id, stack.merchant.secret, { method: method.toUpperCase(), pathWithQuery: path, body: payload })
      : {}),
    ...options.headers,
  };
  const res = await fetch(`${stack.api.url}${path}`, {
    method: method.toUpperCase(),
    headers,
    body: Buffer.isBuffer(payload) ? new Blob([new Uint8Array(payload)]) : payload,
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  return { status: res.status, contentType, text, body: contentType.startsWith('application/json') ? JSON.parse(text) : text };
}

const call = async (method: Method, template: string, path: string, options?: SendOptions) => conforms(method, template, await send(method, path, options));
const errorCode = (answer: Answer) => answer.body?.error?.code;

const PAYMENTS = '/v1/payments';
const FEED = '/v1/events';
const ENDPOINTS = '/v1/webhook-endpoints';
const ENDPOINT = '/v1/webhook-endpoints/{id}';
const ROTATE = '/v1/webhook-endpoints/{id}/rotate-secret';
const PING = '/v1/webhook-endpoints/{id}/test';
const DELIVERIES = '/v1/webhook-endpoints/{id}/deliveries';
const REDELIVER = '/v1/webhook-endpoints/{id}/deliveries/{eventId}/resend';
const NO_ENDPOINT = `we_${'0'.repeat(24)}`;
const PAYMENT = '/v1/payments/{outTradeNo}';
const CANCEL = '/v1/payments/{outTradeNo}/cancel';
const REFUNDS = '/v1/payments/{outTradeNo}/refunds';
const REFUND = '/v1/payments/{outTradeNo}/refunds/{outRequestNo}';
const EVENTS = '/v1/payments/{outTradeNo}/events';
const RESEND = '/v1/events/{id}/resend';
const CASHIER = '/pay/{token}';
const CASHIER_EVENTS = '/pay/{token}/events';

async function createOrder(label: string, extra: Record<string, string> = {}) {
  const outTradeNo = stack.newOrderNo(label);
  const body = { outTradeNo, amount: '10.00', subject: `openapi ${label}`, ...extra };
  const created = await call('post', PAYMENTS, PAYMENTS, { body });
  expect(created.status).toBe(201);
  return { outTradeNo, body };
}

async function paidOrder(label: string, amount = '10.00') {
  const order = await createOrder(label, { amount });
  expect((await stack.simCall('POST', `/sim/trades/${order.outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(order.outTradeNo, 'PAID');
  return order;
}

describe('the document', () => {
  it('is valid OpenAPI 3.1 and is what the code builds', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
    conforms('get', '/openapi.json', { status: 200, contentType: 'application/json', text: '', body: doc });
  });

  it('describes the signature headers and the exact string to sign, and the bearer token of /ops', () => {
    const { OpsToken, ...schemes } = doc.components.securitySchemes;
    expect(OpsToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.values(schemes).map((s: any) => s.name)).toEqual(Object.values(SIGNATURE_HEADERS));
    expect(schemes.DurapaySignature.description).toContain(
      'S = METHOD + "\\n" + PATH_AND_QUERY + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + hex(sha256(body))',
    );
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const operation of Object.values<any>(item)) {
        const required = Object.keys(operation.security?.[0] ?? {});
        expect(required, path).toEqual(path.startsWith('/v1') ? Object.keys(schemes) : path.startsWith('/ops') ? ['OpsToken'] : []);
      }
    }
  });

  it('generates the request bodies from the zod schemas the routes validate with', () => {
    const { CreatePaymentRequest, CreateRefundRequest } = doc.components.schemas;
    expect(CreatePaymentRequest.required).toEqual(['outTradeNo', 'amount', 'subject']);
    expect(Object.keys(CreatePaymentRequest.properties)).toEqual(['outTradeNo', 'amount', 'subject', 'timeoutMinutes', 'notifyUrl', 'method', 'authCode']);
    expect(CreatePaymentRequest.additionalProperties).toBe(false);
    expect(CreateRefundRequest.required).toEqual(['outRequestNo', 'amount']);
    const accepts = (name: string, body: unknown) => ajv.validate({ $ref: `openapi.json#/components/schemas/${name}` }, body);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', timeoutMinutes: 5, notifyUrl: 'https://example.com/hook' })).toBe(true);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a 1', amount: '12.5', subject: '' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', method: 'barcode', authCode: '286288211188855245' })).toBe(true);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', method: 'barcode', authCode: '123' })).toBe(false);
    expect(accepts('CreateRefundRequest', { outRequestNo: 'r1', amount: '1.00', reason: 'why' })).toBe(true);
    // The rules checked in refinements, said by the document too.
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '0.00', subject: 'tea' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '100000000.01', subject: 'tea' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: '   ' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: '_'.repeat(27), amount: '12.50', subject: 'tea' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: '_'.repeat(26), amount: '12.50', subject: 'tea' })).toBe(true);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', method: 'barcode' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', authCode: '286288211188855245' })).toBe(false);
    expect(accepts('CreatePaymentRequest', { outTradeNo: 'a-1', amount: '12.50', subject: 'tea', method: 'barcode', authCode: '286288211188855245', timeoutMinutes: 5 })).toBe(false);
  });

  it("lists every error code of the API's table, with its status", () => {
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(Object.keys(ERROR_CODES));
    for (const [code, { statuses }] of Object.entries(ERROR_CODES)) expect(doc.info.description).toContain(`- \`${code}\` (${statuses.join(', ')}): `);
  });

  it('documents every route the app serves, and serves every route it documents, each answer with a schema', () => {
    const app = createApp({
      config: stack.apiConfig,
      client: new Client({ connection: Connection.lazy(temporalConnectionOptions(stack.apiConfig.temporal)) }),
      pool: stack.pool,
      logger: createLogger('test', 'silent'),
      publicBaseUrl: stack.api.url,
    });
    const served = servedRoutes(app).sort();
    const documented = Object.entries<any>(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`))
      .sort();
    expect(served).toEqual(documented);
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, operation] of Object.entries<any>(item)) {
        const op = `${method} ${path}`;
        const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect(operation.parameters?.filter((p: any) => p.in === 'path').map((p: any) => p.name) ?? [], `${op} path parameters`).toEqual(pathParams);
        for (const parameter of operation.parameters ?? []) expect(parameter.schema, `${op} ${parameter.name}`).toBeDefined();
        for (const media of Object.values<any>(operation.requestBody?.content ?? {})) expect(media.schema, `${op} request body`).toBeDefined();
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          const media = Object.values<any>(response.content ?? {});
          // 204 No Content has none (the console's logout).
          if (status === '204') {
            expect(media, `${op} ${status} has no body`).toEqual([]);
            continue;
          }
          expect(media.length, `${op} ${status} has a body`).toBeGreaterThan(0);
          for (const m of media) expect(m.schema, `${op} ${status} schema`).toBeDefined();
        }
      }
    }
  });

  it("accepts the document's own examples of every request body", async () => {
    const examples = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
      Object.entries<any>(item).flatMap(([method, operation]) => {
        const schema = operation.requestBody?.content['application/json']?.schema;
        if (!schema) return [];
        const named = doc.components.schemas[schema.$ref.split('/').pop()];
        expect(named.examples?.length, `${method} ${path} has examples`).toBeGreaterThan(0);
        return named.examples.map((example: unknown) => ({ method: method as Method, path, schema: schema.$ref as string, example }));
      }),
    );
    expect(examples.length).toBeGreaterThanOrEqual(6);
    const paid = await paidOrder('examples');
    const endpoint = await send('post', '/v1/webhook-endpoints', { body: { url: 'https://shop.example.com/examples', events: ['*'] } });
    expect(endpoint.status).toBe(201);
    for (const { method, path, schema, example } of examples) {
      expect(ajv.validate({ $ref: `openapi.json${schema}` }, example), `${path} example ${JSON.stringify(example)}`).toBe(true);
      // Path parameters: an order of this stack, or one that does not exist (the body is read first).
      const sent = path
        .replace('{outTradeNo}', paid.outTradeNo)
        .replace('{paymentId}', 'payment:none:none')
        .replace('{id}', endpoint.body.id);
      const answer = await call(method, path, sent, { body: example, sign: path.startsWith('/v1'), headers: path.startsWith('/ops') ? { authorization: `Bearer ${stack.opsToken}` } : {} });
      expect(answer.status, `${method} ${sent} ${JSON.stringify(example)}: ${answer.text.slice(0, 300)}`).not.toBe(400);
      if (path.startsWith('/v1')) expect(answer.status, `${method} ${sent} ${JSON.stringify(example)}: ${answer.text.slice(0, 300)}`).toBeOneOf([200, 201]);
    }
  });

  it('renders /docs from local assets only', async () => {
    const page = await fetch(`${stack.api.url}/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    // Nothing the page loads comes from another host: the machine it is read on may be offline.
    expect(html.match(/(?:src|href)="[^"]*"/g)?.filter((ref) => /\/\//.test(ref)) ?? []).toEqual([]);
    for (const asset of ['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-ui-init.js']) {
      const res = await fetch(`${stack.api.url}/docs/${asset}`);
      expect(res.status, asset).toBe(200);
      const text = await res.text();
      if (asset === 'swagger-ui-init.js') expect(text).toContain('"openapi": "3.1.0"');
    }
  });
});

describe('every answer conforms', () => {
  it('health, readiness and the notify receiver', async () => {
    expect((await call('get', '/healthz', '/healthz')).status).toBe(200);
    expect((await call('get', '/readyz', '/readyz')).status).toBe(200);
    const metrics = await call('get', '/metrics', '/metrics');
    expect(metrics.text).toContain('http_requests_total');
    const form = 'app_id=1&out_trade_no=x&trade_status=TRADE_SUCCESS&sign=bad';
    const formType = 'application/x-www-form-urlencoded';
    const unverified = await call('post', '/alipay/notify', '/alipay/notify', { body: form, contentType: formType });
    expect(unverified).toMatchObject({ status: 200, body: 'failure' });
    const huge = await call('post', '/alipay/notify', '/alipay/notify', { body: `a=${'x'.repeat(70_000)}`, contentType: formType });
    expect(huge.status).toBe(413);
    const charset = await call('post', '/alipay/notify', '/alipay/notify', { body: form, contentType: `${formType}; charset=koi8-r` });
    expect(charset.status).toBe(415);
    const corrupt = gzipSync(form).subarray(0, 12);
    const unreadable = await call('post', '/alipay/notify', '/alipay/notify', { body: corrupt, contentType: formType, headers: { 'content-encoding': 'gzip' } });
    expect(unreadable.status).toBe(400);
  });

  it('POST /v1/payments: 201, 200, 400, 409 ORDER_CONFLICT, 409 ORDER_CLOSED, 413, 415', async () => {
    const { outTradeNo, body } = await createOrder('create');
    const again = await call('post', PAYMENTS, PAYMENTS, { body });
    expect(again.status).toBe(201);
    expect(errorCode(await call('post', PAYMENTS, PAYMENTS, { body: { ...body, amount: '10.01' } }))).toBe('ORDER_CONFLICT');
    expect(errorCode(await call('post', PAYMENTS, PAYMENTS, { body: { ...body, outTradeNo: 'bad no' } }))).toBe('INVALID_REQUEST');
    expect(errorCode(await call('post', PAYMENTS, PAYMENTS, { body: '{"outTradeNo": ' }))).toBe('INVALID_JSON');
    expect((await call('post', PAYMENTS, PAYMENTS, { body: 'x'.repeat(17 * 1024) })).status).toBe(413);
    expect(errorCode(await call('post', PAYMENTS, PAYMENTS, { body: 'outTradeNo=1', contentType: 'text/plain' }))).toBe('UNSUPPORTED_MEDIA_TYPE');

    expect((await call('post', CANCEL, `/v1/payments/${outTradeNo}/cancel`)).body.status).toBe('CLOSED');
    const closed = await call('post', PAYMENTS, PAYMENTS, { body });
    expect(closed).toMatchObject({ status: 409, body: { error: { code: 'ORDER_CLOSED', details: { outTradeNo, status: 'CLOSED' } } } });

    const paid = await paidOrder('create-paid');
    expect(await call('post', PAYMENTS, PAYMENTS, { body: paid.body })).toMatchObject({ status: 200, body: { status: 'PAID', paidAmount: '10.00' } });
  });

  it('POST /v1/payments: 502 PRECREATE_FAILED when Alipay refuses, first and from the record', async () => {
    const outTradeNo = stack.newOrderNo('refused');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.precreate'], subCode: 'ACQ.TOTAL_FEE_EXCEED' },
    });
    const body = { outTradeNo, amount: '1.00', subject: 'refused' };
    const failed = await waitFor('a create that is not a 503', async () => {
      const answer = await call('post', PAYMENTS, PAYMENTS, { body });
      return answer.status === 503 ? undefined : answer;
    });
    expect(failed).toMatchObject({ status: 502, body: { error: { code: 'PRECREATE_FAILED', details: { status: 'PRECREATE_FAILED' } } } });
    expect((await call('post', PAYMENTS, PAYMENTS, { body })).status).toBe(502);
  });

  it('POST /v1/payments and cancel: 503 TRY_AGAIN while no worker answers', async () => {
    const waiting = await createOrder('no-worker-cancel');
    await stack.stopWorker();
    try {
      const body = { outTradeNo: stack.newOrderNo('no-worker'), amount: '1.00', subject: 'no worker' };
      expect(errorCode(await call('post', PAYMENTS, PAYMENTS, { body }))).toBe('TRY_AGAIN');
      expect(errorCode(await call('post', CANCEL, `/v1/payments/${waiting.outTradeNo}/cancel`))).toBe('TRY_AGAIN');
    } finally {
      await stack.startWorker();
    }
  });

  it("GET /pay/:token and its events: 200 and 404, the buyer's page and its stream", async () => {
    const paid = await paidOrder('cashier');
    const { cashierUrl } = (await call('get', PAYMENT, `/v1/payments/${paid.outTradeNo}`)).body;
    const path = new URL(cashierUrl).pathname;
    expect(cashierUrl).toBe(`${stack.api.url}${path}`);
    expect((await call('get', CASHIER, path)).status).toBe(200);
    // A paid order's stream says so once and ends.
    const events = await call('get', CASHIER_EVENTS, `${path}/events`);
    expect(events).toMatchObject({ status: 200, text: 'retry: 3000\n\nevent: status\ndata: {"state":"paid"}\n\n' });
    expect((await call('get', CASHIER, '/pay/AAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    expect((await call('get', CASHIER_EVENTS, '/pay/AAAAAAAAAAAAAAAAAAAAAA/events')).status).toBe(404);
  });

  it('GET /v1/payments/:outTradeNo and cancel: 200, 400, 404, 409 NOT_CANCELLABLE', async () => {
    const paid = await paidOrder('read');
    expect((await call('get', PAYMENT, `/v1/payments/${paid.outTradeNo}`)).body.status).toBe('PAID');
    expect((await call('get', PAYMENT, `/v1/payments/${'x'.repeat(65)}`)).status).toBe(400);
    expect((await call('get', PAYMENT, '/v1/payments/no-such-order')).status).toBe(404);
    const notCancellable = await call('post', CANCEL, `/v1/payments/${paid.outTradeNo}/cancel`);
    expect(notCancellable).toMatchObject({ status: 409, body: { error: { code: 'NOT_CANCELLABLE', details: { status: 'PAID' } } } });
    expect((await call('post', CANCEL, `/v1/payments/${'x'.repeat(65)}/cancel`)).status).toBe(400);
    expect((await call('post', CANCEL, '/v1/payments/no-such-order/cancel')).status).toBe(404);
  });

  it('refunds: 201, 200, 400, 404, each 409, the list and one refund', async () => {
    const paid = await paidOrder('refund');
    const refunds = `/v1/payments/${paid.outTradeNo}/refunds`;
    const first = await call('post', REFUNDS, refunds, { body: { outRequestNo: 'r1', amount: '3.00', reason: '退款' } });
    expect(first).toMatchObject({ status: 201, body: { outRequestNo: 'r1', amount: '3.00' } });
    await stack.waitForRefund(paid.outTradeNo, 'r1', 'SUCCEEDED');
    expect((await call('post', REFUNDS, refunds, { body: { outRequestNo: 'r1', amount: '3.00' } })).status).toBe(200);
    expect(errorCode(await call('post', REFUNDS, refunds, { body: { outRequestNo: 'r1', amount: '3.01' } }))).toBe('REFUND_CONFLICT');
    const exceeds = await call('post', REFUNDS, refunds, { body: { outRequestNo: 'r2', amount: '7.01' } });
    expect(exceeds.body.error).toMatchObject({ code: 'REFUND_EXCEEDS_REFUNDABLE', details: { refundable: '7.00' } });
    expect((await call('post', REFUNDS, refunds, { body: { outRequestNo: 'r 3', amount: '1.00' } })).status).toBe(400);
    expect((await call('post', REFUNDS, '/v1/payments/no-such-order/refunds', { body: { outRequestNo: 'r', amount: '1.00' } })).status).toBe(404);
    const unpaid = await createOrder('refund-unpaid');
    const notRefundable = await call('post', REFUNDS, `/v1/payments/${unpaid.outTradeNo}/refunds`, { body: { outRequestNo: 'r', amount: '1.00' } });
    expect(notRefundable.body.error).toMatchObject({ code: 'NOT_REFUNDABLE', details: { status: 'AWAITING_PAYMENT' } });

    // A refused refund reads FAILED with Alipay's reason, and settledAt set.
    await stack.simCall('POST', `/sim/trades/${paid.outTradeNo}/faults`, {
      refusals: { count: 1, methods: ['alipay.trade.refund'], subCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH' },
    });
    await call('post', REFUNDS, refunds, { body: { outRequestNo: 'poor', amount: '1.00' } });
    await stack.waitForRefund(paid.outTradeNo, 'poor', 'FAILED');

    const list = await call('get', REFUNDS, refunds);
    expect(list.body.refunds.map((r: { status: string }) => r.status)).toEqual(['SUCCEEDED', 'FAILED']);
    expect((await call('get', REFUNDS, `/v1/payments/${'x'.repeat(65)}/refunds`)).status).toBe(400);
    expect((await call('get', REFUNDS, '/v1/payments/no-such-order/refunds')).status).toBe(404);
    expect((await call('get', REFUND, `${refunds}/poor`)).body.failureReason).toMatch(/^ACQ\.SELLER_BALANCE_NOT_ENOUGH/);
    expect((await call('get', REFUND, `${refunds}/bad%20no`)).status).toBe(400);
    expect((await call('get', REFUND, `${refunds}/no-such-refund`)).status).toBe(404);
    expect((await call('get', REFUND, '/v1/payments/no-such-order/refunds/r1')).status).toBe(404);
    // The order carries what was refunded.
    expect((await call('get', PAYMENT, `/v1/payments/${paid.outTradeNo}`)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '3.00' });
  });

  it('a late payment reads with latePayment filled in', async () => {
    const outTradeNo = stack.newOrderNo('late');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, {
      clockSkewMs: 60_000,
      refusals: { count: 1, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
    });
    await call('post', PAYMENTS, PAYMENTS, { body: { outTradeNo, amount: '8.80', subject: 'late' } });
    await call('post', CANCEL, `/v1/payments/${outTradeNo}/cancel`);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await waitFor('the late payment to be refunded', async () => {
      const order = await call('get', PAYMENT, `/v1/payments/${outTradeNo}`);
      return order.body.latePayment?.refundStatus === 'SUCCEEDED' ? true : undefined;
    });
  });

  it('401 with each auth code, on every /v1 operation this branch serves', async () => {
    const path = `/v1/payments/any-order`;
    const good = () => signRequest(stack.merchant.id, stack.merchant.secret, { method: 'GET', pathWithQuery: path });
    const cases: [string, Record<string, string>][] = [
      ['AUTH_MISSING', { [SIGNATURE_HEADERS.signature]: '' }],
      ['AUTH_MISSING', { [SIGNATURE_HEADERS.nonce]: 'short' }],
      ['AUTH_UNKNOWN_MERCHANT', { [SIGNATURE_HEADERS.merchant]: 'mnobody000' }],
      ['AUTH_STALE_TIMESTAMP', { [SIGNATURE_HEADERS.timestamp]: String(Math.floor(Date.now() / 1000) - 301) }],
      ['AUTH_BAD_SIGNATURE', { [SIGNATURE_HEADERS.signature]: `v1=${'0'.repeat(64)}` }],
    ];
    for (const [code, override] of cases) {
      const headers = { ...good(), ...override };
      for (const name of Object.keys(headers)) if (headers[name] === '') delete headers[name];
      expect(errorCode(await call('get', PAYMENT, path, { sign: false, headers })), code).toBe(code);
    }
    const replayed = good();
    expect((await call('get', PAYMENT, path, { sign: false, headers: replayed })).status).toBe(404);
    expect(errorCode(await call('get', PAYMENT, path, { sign: false, headers: replayed }))).toBe('AUTH_REPLAYED_NONCE');

    for (const [method, template, concrete] of [
      ['post', PAYMENTS, PAYMENTS],
      ['post', CANCEL, '/v1/payments/o/cancel'],
      ['post', REFUNDS, '/v1/payments/o/refunds'],
      ['get', REFUNDS, '/v1/payments/o/refunds'],
      ['get', REFUND, '/v1/payments/o/refunds/r'],
      ['get', PAYMENTS, '/v1/payments?limit=2'],
      ['get', EVENTS, '/v1/payments/o/events'],
      ['post', RESEND, `/v1/events/evt_${'0'.repeat(24)}/resend`],
      ['get', FEED, '/v1/events'],
      ['post', ENDPOINTS, ENDPOINTS],
      ['get', ENDPOINTS, ENDPOINTS],
      ['get', ENDPOINT, `${ENDPOINTS}/${NO_ENDPOINT}`],
      ['patch', ENDPOINT, `${ENDPOINTS}/${NO_ENDPOINT}`],
      ['delete', ENDPOINT, `${ENDPOINTS}/${NO_ENDPOINT}`],
      ['post', ROTATE, `${ENDPOINTS}/${NO_ENDPOINT}/rotate-secret`],
      ['post', PING, `${ENDPOINTS}/${NO_ENDPOINT}/test`],
      ['get', DELIVERIES, `${ENDPOINTS}/${NO_ENDPOINT}/deliveries`],
      ['post', REDELIVER, `${ENDPOINTS}/${NO_ENDPOINT}/deliveries/evt_${'0'.repeat(24)}/resend`],
    ] as const) {
      expect((await call(method, template, concrete, { sign: false })).status).toBe(401);
    }
  });

  it('the list, events and resend endpoints conform, each documented status', async () => {
    const order = await createOrder('pending-endpoints');
    const notServed = (answer: Answer) => answer.status === 404 && /^no route /.test(answer.body?.error?.message ?? '');
    const probes: [Method, string, string, number][] = [
      ['get', PAYMENTS, '/v1/payments?limit=2', 200],
      ['get', PAYMENTS, '/v1/payments?limit=0', 400],
      ['get', EVENTS, `/v1/payments/${order.outTradeNo}/events`, 200],
      ['get', EVENTS, '/v1/payments/no-such-order/events', 404],
      ['get', EVENTS, '/v1/payments/bad%20number/events', 400],
      ['post', RESEND, `/v1/events/evt_${'0'.repeat(24)}/resend`, 404],
      ['post', RESEND, '/v1/events/no-such-event/resend', 400],
    ];
    for (const [method, template, path, expected] of probes) {
      const answer = await send(method, path);
      if (notServed(answer)) {
        pending.add(`${method} ${template}`);
        continue;
      }
      expect(conforms(method, template, answer).status, `${method} ${path}`).toBe(expected);
    }
    if (pending.has(`post ${RESEND}`)) return;
    // An order with a webhook URL (nobody listens there: deliveries fail and are retried), and one without.
    const hooked = await createOrder('events-hooked', { notifyUrl: 'http://127.0.0.1:9/hooks' });
    await send('post', `/v1/payments/${hooked.outTradeNo}/cancel`);
    await send('post', `/v1/payments/${order.outTradeNo}/cancel`);
    const eventOf = async (outTradeNo: string) =>
      waitFor(`an event of ${outTradeNo}`, async () => (await send('get', `/v1/payments/${outTradeNo}/events`)).body.events?.[0]?.id as string | undefined);
    const resent = conforms('post', RESEND, await send('post', `/v1/events/${await eventOf(hooked.outTradeNo)}/resend`));
    expect(resent.status).toBe(202);
    const noEndpoint = conforms('post', RESEND, await send('post', `/v1/events/${await eventOf(order.outTradeNo)}/resend`));
    expect(noEndpoint.status).toBe(409);
    expect(noEndpoint.body.error.code).toBe('NO_NOTIFY_URL');
  });
});

describe('the webhook endpoints and the event feed conform', () => {
  it('answer each documented status', async () => {
    const expectStatus = async (method: Method, template: string, path: string, status: number, body?: unknown) => {
      const answer = await call(method, template, path, body === undefined ? {} : { body });
      expect(answer.status, `${method} ${path}: ${answer.text.slice(0, 300)}`).toBe(status);
      return answer;
    };
    // The feed: now, then after a cursor, and a malformed one.
    const now = await expectStatus('get', FEED, '/v1/events', 200);
    expect(now.body.events).toEqual([]);
    await expectStatus('get', FEED, `/v1/events?after=${now.body.nextCursor}&limit=5`, 200);
    await expectStatus('get', FEED, '/v1/events?after=yesterday', 400);
    await expectStatus('get', FEED, '/v1/events?waitSeconds=31', 400);

    const created = await expectStatus('post', ENDPOINTS, ENDPOINTS, 201, { url: 'http://127.0.0.1:9/conform', events: ['payment.paid'], description: 'conformance' });
    expect(created.body.secret).toMatch(/^whsec_/);
    const id = created.body.id as string;
    await expectStatus('post', ENDPOINTS, ENDPOINTS, 400, { url: 'ftp://example.com', events: ['payment.paid'] });
    await expectStatus('post', ENDPOINTS, ENDPOINTS, 400, { url: 'https://example.com', events: ['*', 'payment.paid'] });
    await expectStatus('get', ENDPOINTS, ENDPOINTS, 200);
    await expectStatus('get', ENDPOINT, `${ENDPOINTS}/${id}`, 200);
    await expectStatus('get', ENDPOINT, `${ENDPOINTS}/${NO_ENDPOINT}`, 404);
    await expectStatus('get', ENDPOINT, `${ENDPOINTS}/nope`, 400);
    await expectStatus('patch', ENDPOINT, `${ENDPOINTS}/${id}`, 200, { events: ['*'] });
    await expectStatus('patch', ENDPOINT, `${ENDPOINTS}/${id}`, 400, {});
    await expectStatus('patch', ENDPOINT, `${ENDPOINTS}/${NO_ENDPOINT}`, 404, { enabled: true });
    await expectStatus('post', ROTATE, `${ENDPOINTS}/${id}/rotate-secret`, 200, { graceSeconds: 60 });
    await expectStatus('post', ROTATE, `${ENDPOINTS}/${id}/rotate-secret`, 400, { graceSeconds: -1 });
    await expectStatus('post', ROTATE, `${ENDPOINTS}/${NO_ENDPOINT}/rotate-secret`, 404);
    const ping = await expectStatus('post', PING, `${ENDPOINTS}/${id}/test`, 202);
    await expectStatus('post', PING, `${ENDPOINTS}/bad/test`, 400);
    await expectStatus('post', PING, `${ENDPOINTS}/${NO_ENDPOINT}/test`, 404);
    await expectStatus('get', DELIVERIES, `${ENDPOINTS}/${id}/deliveries?limit=5`, 200);
    await expectStatus('get', DELIVERIES, `${ENDPOINTS}/${id}/deliveries?limit=500`, 400);
    await expectStatus('get', DELIVERIES, `${ENDPOINTS}/${NO_ENDPOINT}/deliveries`, 404);
    await expectStatus('post', REDELIVER, `${ENDPOINTS}/${id}/deliveries/${ping.body.id}/resend`, 202);
    await expectStatus('post', REDELIVER, `${ENDPOINTS}/${id}/deliveries/not-an-event/resend`, 400);
    await expectStatus('post', REDELIVER, `${ENDPOINTS}/${id}/deliveries/evt_${'0'.repeat(24)}/resend`, 404);
    await expectStatus('patch', ENDPOINT, `${ENDPOINTS}/${id}`, 200, { enabled: false });
    expect(errorCode(await expectStatus('post', PING, `${ENDPOINTS}/${id}/test`, 409))).toBe('ENDPOINT_DISABLED');
    expect(errorCode(await expectStatus('post', REDELIVER, `${ENDPOINTS}/${id}/deliveries/${ping.body.id}/resend`, 409))).toBe('ENDPOINT_DISABLED');
    await expectStatus('delete', ENDPOINT, `${ENDPOINTS}/${id}`, 200);
    await expectStatus('delete', ENDPOINT, `${ENDPOINTS}/${id}`, 404);
    await expectStatus('delete', ENDPOINT, `${ENDPOINTS}/x`, 400);
    // The limit: as many as a merchant may have, then one more (another merchant's count is its own).
    const other = await stack.newMerchant('endpoint limit');
    for (let n = 0; n < 16; n++) expect((await other.call('POST', ENDPOINTS, { url: `https://example.com/${n}`, events: ['*'] })).status).toBe(201);
    const refused = await other.call('POST', ENDPOINTS, { url: 'https://example.com/17', events: ['*'] });
    conforms('post', ENDPOINTS, { status: refused.status, contentType: refused.headers.get('content-type') ?? '', text: JSON.stringify(refused.body), body: refused.body });
    expect(refused.body.error.code).toBe('ENDPOINT_LIMIT');
  });
});

describe('the /ops endpoints conform', () => {
  const START = '/ops/reconciliations';
  const GET = '/ops/reconciliations/{date}';
  const DAY_MS = 86_400_000;
  const ops = (method: Method, path: string, options: SendOptions = {}) =>
    send(method, path, { ...options, headers: { authorization: `Bearer ${stack.opsToken}`, ...options.headers } });

  it('401 without the bearer token, 400, 413, 415, 404', async () => {
    expect((await call('post', START, START, { body: { date: '2025-01-01' } })).status).toBe(401);
    expect((await call('get', GET, '/ops/reconciliations/2025-01-01', { headers: { authorization: 'Bearer not-the-token' } })).status).toBe(401);
    expect(errorCode(conforms('post', START, await ops('post', START, { body: { date: '2025-02-30' } })))).toBe('INVALID_REQUEST');
    expect(errorCode(conforms('post', START, await ops('post', START, { body: '{"date": ' })))).toBe('INVALID_JSON');
    expect(conforms('post', START, await ops('post', START, { body: `{"date":"${'x'.repeat(5000)}"}` })).status).toBe(413);
    expect(conforms('post', START, await ops('post', START, { body: '{}', contentType: 'application/json; charset=koi8-r' })).status).toBe(415);
    expect(conforms('get', GET, await ops('get', '/ops/reconciliations/31-01-2025')).status).toBe(400);
    expect(conforms('get', GET, await ops('get', '/ops/reconciliations/2001-01-01')).status).toBe(404);
    expect(conforms('post', START, await ops('post', START, { body: { date: '2025-01-01', appId: '2021999999999999' } })).status).toBe(404);
    expect(conforms('get', GET, await ops('get', '/ops/reconciliations/2025-01-01?appId=2021999999999999')).status).toBe(404);
  });

  it('operator actions on orders: 200, 400, 401, 404 and 409', async () => {
    const LIST = '/ops/payments';
    const QUERY = '/ops/payments/{paymentId}/query-now';
    const RESOLVE = '/ops/payments/{paymentId}/resolve-review';
    const order = await createOrder('ops-actions');
    const at = (action: string, paymentId = stack.workflowId(order.outTradeNo)) => `/ops/payments/${encodeURIComponent(paymentId)}/${action}`;
    expect(conforms('post', QUERY, await ops('post', at('query-now'), { body: { note: 'checking' } })).body.status).toBe('AWAITING_PAYMENT');
    expect(conforms('post', RESOLVE, await ops('post', at('resolve-review'), { body: { outcome: 'PAID', note: 'x' } })).status).toBe(409);
    // Alipay's notify says the buyer paid another amount: REVIEW.
    const sim = (path: string, body: unknown) =>
      fetch(`${stack.sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await sim(`/sim/trades/${stack.alipayNo(order.outTradeNo)}/scan`, {});
    await sim(`/sim/trades/${stack.alipayNo(order.outTradeNo)}/notify`, { variant: 'valid', overrides: { trade_status: 'TRADE_SUCCESS', total_amount: '0.01' } });
    await waitFor('the order to be in REVIEW', async () => ((await send('get', `/v1/payments/${order.outTradeNo}`)).body.status === 'REVIEW' ? true : undefined));
    expect(conforms('post', QUERY, await ops('post', at('query-now'), { body: {} })).status).toBe(409);
    expect(conforms('get', LIST, await ops('get', '/ops/payments?status=REVIEW&limit=5')).status).toBe(200);
    expect(conforms('get', LIST, await ops('get', '/ops/payments?status=LOST')).status).toBe(400);
    expect((await call('get', LIST, '/ops/payments?status=REVIEW')).status).toBe(401);
    expect(conforms('post', RESOLVE, await ops('post', at('resolve-review'), { body: { outcome: 'MAYBE', note: 'x' } })).status).toBe(400);
    expect((await call('post', RESOLVE, at('resolve-review'), { body: { outcome: 'PAID', note: 'x' } })).status).toBe(401);
    expect(conforms('post', RESOLVE, await ops('post', at('resolve-review', 'payment:none'), { body: { outcome: 'PAID', note: 'x' } })).status).toBe(404);
    expect(conforms('post', RESOLVE, await ops('post', at('resolve-review'), { body: { outcome: 'CLOSED', note: 'refunded by hand' } })).body.status).toBe('CLOSED');
    expect(conforms('post', QUERY, await ops('post', at('query-now'), { body: { who: 'me' } })).status).toBe(400);
    expect((await call('post', QUERY, at('query-now'), { body: {} })).status).toBe(401);
    expect(conforms('post', QUERY, await ops('post', at('query-now', 'payment:none'), { body: {} })).status).toBe(404);

    const TIMELINE = '/ops/payments/{paymentId}/timeline';
    const timeline = conforms('get', TIMELINE, await ops('get', at('timeline')));
    expect(timeline.body).toMatchObject({ paymentId: stack.workflowId(order.outTradeNo), status: 'CLOSED', historyAvailable: true });
    expect(conforms('get', TIMELINE, await ops('get', at('timeline', 'payment:none'))).status).toBe(400);
    expect(conforms('get', TIMELINE, await ops('get', `${at('timeline')}?limit=5`)).status).toBe(400);
    expect(conforms('get', TIMELINE, await ops('get', at('timeline', `payment:${stack.appId}:nobody_1`))).status).toBe(404);
    expect((await call('get', TIMELINE, at('timeline'))).status).toBe(401);
  });

  it('202 and 409 while a day is running, 200 with totals and mismatches once done', async () => {
    const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    const running = conforms('post', START, await ops('post', START, { body: { date: today } }));
    expect(running).toMatchObject({ status: 202, body: { date: today, status: 'RUNNING', totals: null } });
    const rerun = conforms('post', START, await ops('post', START, { body: { date: today, rerun: true } }));
    expect(rerun).toMatchObject({ status: 409, body: { error: { code: 'RECONCILIATION_RUNNING' } } });

    // Yesterday, with a payment Alipay took for an order nobody knows.
    const yesterday = new Date(Date.now() + 8 * 3_600_000 - DAY_MS).toISOString().slice(0, 10);
    const stranger = `openapi_${Date.now().toString(36)}`;
    const sim = (path: string, body: unknown) =>
      fetch(`${stack.sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await sim(`/sim/trades/${stranger}/faults`, { clockSkewMs: DAY_MS });
    await sim(`/sim/trades/${stranger}/unseen-payment`, { amount: '1.00' });
    expect(conforms('post', START, await ops('post', START, { body: { date: yesterday } })).status).toBe(202);
    const done = await waitFor('yesterday to be reconciled', async () => {
      const answer = conforms('get', GET, await ops('get', `/ops/reconciliations/${yesterday}?limit=10`));
      return answer.body.status === 'DONE' ? answer : undefined;
    });
    expect(done.body.mismatches).toMatchObject([{ type: 'missing_local', merchantId: null, outTradeNo: null, alipayOutTradeNo: stranger, gatewayAmount: '1.00', localAmount: null }]);
    expect(done.body.totals.payments.gateway).toEqual({ count: 1, amount: '1.00' });
    const page = conforms('get', GET, await ops('get', `/ops/reconciliations/${yesterday}?limit=1&offset=1`));
    expect(page.body).toMatchObject({ mismatchCount: 1, mismatches: [] });

    // Today's run waits an hour for the bill: end it, it has shown what it had to.
    const client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
    try {
      await client.workflow.getHandle(reconciliationWorkflowId(stack.appId, today)).terminate('the test is done with it');
    } finally {
      await client.connection.close();
    }
  });
});

/** Operations documented ahead of their code (see the last test above): not served yet here. */
const pending = new Set<string>();

/** Statuses this suite cannot produce on a healthy single stack, and where they are tested instead. */
const unproducible: Record<string, string> = {
  '429': 'no rate limits in this branch yet',
  '503': 'reads answer 503 only while PostgreSQL is down (test/postgres-outage.test.ts)',
  '413': 'produced on POST /v1/payments and the notify; the same body limit covers every /v1 route',
  '415': 'produced on POST /v1/payments and the notify; the same media-type check covers every /v1 route',
};
// 503: only while PostgreSQL is down (test/postgres-outage.test.ts shows the handler that answers it).
const exceptions = new Set([
  'get /readyz 503',
  'post /ops/reconciliations 503',
  'get /ops/reconciliations/{date} 503',
  // 503: only when Temporal or PostgreSQL does not answer in time (the same answerWithin as create and cancel).
  'get /ops/payments 503',
  'post /ops/payments/{paymentId}/query-now 503',
  'post /ops/payments/{paymentId}/resolve-review 503',
  'get /ops/payments/{paymentId}/timeline 503',
]);

describe('coverage', () => {
  it('produced every documented status of every served operation, but for the listed exceptions', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, operation] of Object.entries<any>(item)) {
        const op = `${method} ${path}`;
        if (pending.has(op)) continue;
        // The console's routes (the /v1 and /ops routes again, behind a session, and its own): their
        // answers are tested, against this document too, in test/console-api.test.ts.
        if (path.startsWith('/console/')) continue;
        for (const status of Object.keys(operation.responses)) {
          if (seen.get(op)?.has(status)) continue;
          if (exceptions.has(`${op} ${status}`)) continue;
          if (path.startsWith('/v1') && status in unproducible) continue;
          if (!path.startsWith('/v1') && status === '429') continue;
          missing.push(`${op} ${status}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
