// The OpenAPI 3.1 document of the API, served at /openapi.json and rendered at /docs. Request
// bodies and path parameters are generated from the zod schemas the routes validate with, so the
// document cannot drift from validation; the resources are written out to match api/read-model.ts
// field for field (test/openapi.test.ts checks real answers against them).
import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import { NONCE_PATTERN, SIGNATURE_HEADERS, TIMESTAMP_TOLERANCE_SECONDS } from '../lib/merchants/signing.js';
import { YUAN_PATTERN } from '../lib/payments/money.js';
import type { PaymentStatus } from '../lib/payments/payment.js';
import type { RefundStatus } from '../lib/payments/refund.js';
import { createPaymentBody, orderNumber } from './payments.js';
import { MAX_MISMATCH_PAGE, reconciliationDate, startReconciliationBody } from './ops.js';
import { MAX_OPS_LIST, queryNowBody, resolveReviewBody } from './ops-payments.js';
import { createRefundBody } from './refunds.js';

type Schema = Record<string, unknown>;

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect) of what a zod schema accepts. */
function fromZod(schema: z.ZodType): Schema {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' });
  return json;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ ...schema, type: [schema.type as string, 'null'] });

// Written as records so a status added to the types and forgotten here fails to compile.
const PAYMENT_STATUSES = Object.keys({
  AWAITING_PAYMENT: 1,
  PAID: 1,
  PARTIALLY_REFUNDED: 1,
  REFUNDED: 1,
  CLOSED: 1,
  PRECREATE_FAILED: 1,
  FAILED: 1,
  REVIEW: 1,
} satisfies Record<PaymentStatus, 1>);
const REFUND_STATUSES = Object.keys({ PENDING: 1, SUCCEEDED: 1, FAILED: 1 } satisfies Record<RefundStatus, 1>);

const yuan: Schema = { type: 'string', pattern: YUAN_PATTERN.source, examples: ['12.50'] };
const instant: Schema = { type: 'string', format: 'date-time' };

/** Every error code, with when it is answered. */
export const ERROR_CODES = {
  INVALID_REQUEST: '400: a field, parameter or path segment broke its rule; details lists each as {field, rule}.',
  INVALID_JSON: '400: the body is not JSON.',
  BAD_REQUEST: '400, 413 or 415: the body could not be read (too large: 16 kB on /v1, 64 kB on the notify; a bad encoding or charset).',
  UNSUPPORTED_MEDIA_TYPE: '415: a /v1 body that is not application/json.',
  AUTH_MISSING: '401: a signature header is missing, or the nonce is malformed.',
  AUTH_UNKNOWN_MERCHANT: '401: no active merchant has this id.',
  AUTH_STALE_TIMESTAMP: `401: the timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s from the server's clock.`,
  AUTH_BAD_SIGNATURE: '401: the signature does not match the request.',
  AUTH_REPLAYED_NONCE: '401: the nonce was used before.',
  NOT_FOUND: '404: no such order, refund, event, reconciliation or route.',
  ORDER_CONFLICT: '409: the order number exists with another amount, subject, method or payment code.',
  BARCODE_NOT_CONFIGURED: '501: a barcode payment, on a server without DURAPAY_MASTER_KEY to seal the payment code with.',
  ORDER_CLOSED: '409: the order is closed and never reopened; details is the order. Use a new order number.',
  NOT_CANCELLABLE: '409: the order is paid (or otherwise not open); details is the order.',
  REFUND_CONFLICT: '409: the refund number exists with another amount.',
  REFUND_EXCEEDS_REFUNDABLE: '409: more than is left to refund; details.refundable says how much is.',
  NOT_REFUNDABLE: '409: the order is not paid; details.status is its status.',
  NO_NOTIFY_URL: "409: the event's order has no notifyUrl, so there is nowhere to send it.",
  OPS_UNAUTHORIZED: '401: an /ops request without `Authorization: Bearer <OPS_TOKEN>`, with another token, or to a server where OPS_TOKEN is not set.',
  RECONCILIATION_RUNNING: '409: a rerun was asked for while a reconciliation of that day is running.',
  NOT_WAITING: '409: query now, for an order that no longer waits for a payment; details is the order.',
  NOT_IN_REVIEW: '409: a review resolution, for an order that is not in REVIEW; details is the order.',
  RESOLUTION_REFUSED: '409: a resolution as CLOSED whose refund of the money Alipay holds was refused; the order stays in REVIEW, its reason says why; details is the order.',
  RATE_LIMITED: '429: too many requests; see Retry-After and details.',
  PRECREATE_FAILED: '502: Alipay did not issue a QR code; details is the order, whose reason says why.',
  TRY_AGAIN: '503: PostgreSQL or the workflow did not answer in time; the same request can be retried safely.',
  INTERNAL: '500: a bug; never part of a documented answer.',
} as const;
type ErrorCode = keyof typeof ERROR_CODES;

/** The error object, narrowed to the codes (and the details) one answer can carry. */
function errorBody(codes: ErrorCode[], details: Schema = { type: 'null' }): Schema {
  return {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'details'],
        additionalProperties: false,
        properties: { code: { enum: codes }, message: { type: 'string' }, details },
      },
    },
  };
}

const json = (schema: Schema, description: string, extra: Schema = {}) => ({
  description,
  content: { 'application/json': { schema } },
  ...extra,
});
const errorRef = (name: string, description: string, extra: Schema = {}) => json(ref(name), description, extra);

const retryAfter = {
  headers: { 'Retry-After': { description: 'Seconds to wait before the next request.', schema: { type: 'integer', minimum: 0 } } },
};

/** Answers any /v1 request can get, whatever its route: signature, body reading, limits, outages. */
const merchantApiResponses = {
  '401': errorRef('AuthError', 'The request is not signed as an active merchant (see the security schemes).'),
  '413': errorRef('BodyError', 'The body is larger than 16 kB.'),
  '415': errorRef('BodyError', 'The body is not application/json, or its encoding cannot be read.'),
  '429': errorRef('RateLimitedError', 'Too many requests from this merchant.', retryAfter),
  '503': errorRef('TryAgainError', 'PostgreSQL (or the workflow) did not answer in time; the same request can be retried safely.'),
};
const badRequest = errorRef('BadRequestError', 'A field, parameter or path segment broke its rule, or the body is not JSON; nothing changed.');
const notFound = (what: string) => errorRef('NotFoundError', `No such ${what} for this merchant.`);

const pathParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: fromZod(orderNumber),
});
const outTradeNoParam = pathParam('outTradeNo', "The merchant's order number.");
const outRequestNoParam = pathParam('outRequestNo', "The refund's number.");

const cashierTokenParam = {
  name: 'token',
  in: 'path',
  required: true,
  description: "The token at the end of the payment's cashierUrl.",
  schema: { type: 'string' },
};
const cashierPage = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });

const signatureDescription = `Every /v1 request is signed with the merchant's API secret. Send four headers:

- \`${SIGNATURE_HEADERS.merchant}\`: the merchant id;
- \`${SIGNATURE_HEADERS.timestamp}\`: unix seconds, within ${TIMESTAMP_TOLERANCE_SECONDS} s of the server's clock;
- \`${SIGNATURE_HEADERS.nonce}\`: 16-64 characters of \`A-Z a-z 0-9 _ -\` (\`${NONCE_PATTERN.source}\`), never used before by this merchant;
- \`${SIGNATURE_HEADERS.signature}\`: \`v1=\` followed by the lowercase hex HMAC-SHA256, keyed with the API secret, of the string to sign S.

S is five lines joined by a single \`\\n\` (no trailing newline):

\`\`\`
METHOD            upper case, e.g. POST
PATH_AND_QUERY    exactly as sent, e.g. /v1/payments?limit=5 (not re-encoded, not re-ordered)
TIMESTAMP         the ${SIGNATURE_HEADERS.timestamp} header
NONCE             the ${SIGNATURE_HEADERS.nonce} header
BODY_SHA256       lowercase hex SHA-256 of the raw body bytes (of the empty string when there is no body)
\`\`\`

that is \`S = METHOD + "\\n" + PATH_AND_QUERY + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + hex(sha256(body))\`
and \`${SIGNATURE_HEADERS.signature}: v1=\` + hex(HMAC-SHA256(secret, S)).
A failure answers 401 with one of AUTH_MISSING, AUTH_UNKNOWN_MERCHANT, AUTH_STALE_TIMESTAMP, AUTH_BAD_SIGNATURE,
AUTH_REPLAYED_NONCE, before the request can change anything. "Try it out" on /docs cannot sign: use a client that does
(lib/merchants/signing.ts \`signRequest\` is the reference).`;

const signed = [{ DurapayMerchant: [], DurapayTimestamp: [], DurapayNonce: [], DurapaySignature: [] }];
const opsSecurity = [{ OpsToken: [] }];
const wwwAuthenticate = { 'WWW-Authenticate': { description: 'Bearer realm="durapay-ops"', schema: { type: 'string' } } };

const eventsSubjectToChange =
  'Subject to change: the event and delivery shapes are still being settled with the webhooks work.';

export function buildOpenApiDocument() {
  const payment = ref('Payment');
  const paymentIdParam = {
    name: 'paymentId',
    in: 'path',
    required: true,
    description: "The order's workflow id, payment:<appId>:<Alipay out_trade_no>, as GET /ops/payments lists it.",
    schema: { type: 'string' },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'durapay',
      version: '0.1.0',
      description: `A durable payment engine for Alipay face-to-face (QR) payments.

Amounts are yuan strings with two decimals (\`"12.50"\`). Times are ISO 8601 in UTC.

Every error is \`{"error": {"code", "message", "details"}}\`. The codes:

${Object.entries(ERROR_CODES)
  .map(([code, when]) => `- \`${code}\`: ${when}`)
  .join('\n')}

## Signing requests

${signatureDescription}`,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'payments', description: 'Orders paid by scanning an Alipay QR code.' },
      { name: 'refunds', description: 'Refunds of paid orders.' },
      { name: 'events', description: "An order's events and their webhook deliveries." },
      { name: 'alipay', description: "Alipay's asynchronous notifies." },
      {
        name: 'cashier',
        description:
          "Buyers: one order's page, reached through the payment's cashierUrl. The token in the path is the only key; an unknown token, whatever it looks like, gets the same 404 page.",
      },
      { name: 'operations', description: 'Health, readiness and this document.' },
      {
        name: 'reconciliation',
        description:
          "Operators: the daily reconciliation with Alipay's trade bill, on demand and as it went. Bearer OPS_TOKEN. Amounts are yuan strings with two decimals, as everywhere at the edge.",
      },
    ],
    paths: {
      '/v1/payments': {
        post: {
          tags: ['payments'],
          operationId: 'createPayment',
          summary: 'Create a payment and get its QR code',
          description:
            'Idempotent on outTradeNo. The same request again while the order waits answers 201 with the same QR code; an order number already used is answered from the record and never reopened.',
          security: signed,
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreatePaymentRequest') } } },
          responses: {
            '201': json(payment, 'The order is waiting for payment (new, or the same request again): qrCode is the code to show.'),
            '200': json(payment, 'The same order was already paid (or sent to review): the order as recorded.'),
            '400': badRequest,
            '409': json(
              { oneOf: [ref('OrderConflictError'), ref('OrderClosedError')] },
              'ORDER_CONFLICT: the number is used with another amount or subject. ORDER_CLOSED: the order is closed; details is the order.',
            ),
            '502': errorRef('PrecreateFailedError', 'Alipay did not issue a QR code; details is the order, its reason says why.'),
            ...merchantApiResponses,
            '503': errorRef('TryAgainError', 'No worker answered within API_ANSWER_TIMEOUT, or PostgreSQL did not; the same request can be retried safely.'),
          },
        },
        get: {
          tags: ['payments'],
          operationId: 'listPayments',
          summary: "List the merchant's payments, newest first",
          description:
            'Pages follow a cursor: pass nextCursor as cursor, with the same status, createdFrom and createdTo, for the next page; nextCursor is null on the last page. An unknown parameter is a 400.',
          security: signed,
          parameters: [
            { name: 'status', in: 'query', schema: { enum: PAYMENT_STATUSES } },
            { name: 'createdFrom', in: 'query', description: 'Inclusive; ISO 8601 with a time zone.', schema: instant },
            { name: 'createdTo', in: 'query', description: 'Exclusive; ISO 8601 with a time zone.', schema: instant },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'cursor', in: 'query', description: 'The nextCursor of the previous page, as given.', schema: { type: 'string' } },
          ],
          responses: {
            '200': json(
              {
                type: 'object',
                required: ['payments', 'nextCursor'],
                additionalProperties: false,
                properties: { payments: { type: 'array', items: payment }, nextCursor: { type: ['string', 'null'] } },
              },
              'A page of orders.',
            ),
            '400': badRequest,
            ...merchantApiResponses,
          },
        },
      },
      '/v1/payments/{outTradeNo}': {
        get: {
          tags: ['payments'],
          operationId: 'getPayment',
          summary: 'Read a payment',
          security: signed,
          parameters: [outTradeNoParam],
          responses: { '200': json(payment, 'The order.'), '400': badRequest, '404': notFound('order'), ...merchantApiResponses },
        },
      },
      '/v1/payments/{outTradeNo}/cancel': {
        post: {
          tags: ['payments'],
          operationId: 'cancelPayment',
          summary: 'Cancel an unpaid payment',
          description: 'Closes the order at Alipay and voids its QR code if nobody scanned it. Safe to repeat.',
          security: signed,
          parameters: [outTradeNoParam],
          responses: {
            '200': json(payment, 'The order, CLOSED.'),
            '400': badRequest,
            '404': notFound('order'),
            '409': errorRef('NotCancellableError', 'The order is paid (even if the payment raced the cancel) or otherwise not open; details is the order.'),
            ...merchantApiResponses,
          },
        },
      },
      '/v1/payments/{outTradeNo}/refunds': {
        post: {
          tags: ['refunds'],
          operationId: 'createRefund',
          summary: 'Refund a paid payment, in whole or in part',
          description:
            'Idempotent on outRequestNo: the same request again answers 200 with the same refund and Alipay never hears it twice. Waits for Alipay up to API_ANSWER_TIMEOUT; past that the refund is PENDING and a GET shows its outcome later.',
          security: signed,
          parameters: [outTradeNoParam],
          requestBody: { required: true, content: { 'application/json': { schema: ref('CreateRefundRequest') } } },
          responses: {
            '201': json(ref('Refund'), 'The new refund: SUCCEEDED, FAILED, or PENDING when Alipay had not answered in time.'),
            '200': json(ref('Refund'), 'The same request again: the refund as recorded.'),
            '400': badRequest,
            '404': notFound('order'),
            '409': json(
              { oneOf: [ref('RefundConflictError'), ref('RefundExceedsRefundableError'), ref('NotRefundableError')] },
              'REFUND_CONFLICT, REFUND_EXCEEDS_REFUNDABLE (details.refundable) or NOT_REFUNDABLE (details.status).',
            ),
            ...merchantApiResponses,
          },
        },
        get: {
          tags: ['refunds'],
          operationId: 'listRefunds',
          summary: "List a payment's refunds, oldest first",
          security: signed,
          parameters: [outTradeNoParam],
          responses: {
            '200': json(
              { type: 'object', required: ['refunds'], additionalProperties: false, properties: { refunds: { type: 'array', items: ref('Refund') } } },
              "The order's refunds.",
            ),
            '400': badRequest,
            '404': notFound('order'),
            ...merchantApiResponses,
          },
        },
      },
      '/v1/payments/{outTradeNo}/refunds/{outRequestNo}': {
        get: {
          tags: ['refunds'],
          operationId: 'getRefund',
          summary: 'Read a refund',
          security: signed,
          parameters: [outTradeNoParam, outRequestNoParam],
          responses: { '200': json(ref('Refund'), 'The refund.'), '400': badRequest, '404': notFound('order or refund'), ...merchantApiResponses },
        },
      },
      '/v1/payments/{outTradeNo}/events': {
        get: {
          tags: ['events'],
          operationId: 'listPaymentEvents',
          summary: "List a payment's events and their webhook deliveries (subject to change)",
          description: eventsSubjectToChange,
          'x-subject-to-change': true,
          security: signed,
          parameters: [outTradeNoParam],
          responses: {
            '200': json(
              { type: 'object', required: ['events'], properties: { events: { type: 'array', items: ref('Event') } } },
              "The order's events, oldest first.",
            ),
            '400': badRequest,
            '404': notFound('order'),
            ...merchantApiResponses,
          },
        },
      },
      '/v1/events/{id}/resend': {
        post: {
          tags: ['events'],
          operationId: 'resendEvent',
          summary: "Send an event's webhook again",
          description: "Queues one more delivery of the event to its order's notifyUrl; the delivery shows in the order's events.",
          security: signed,
          parameters: [{ name: 'id', in: 'path', required: true, description: 'The event id.', schema: { type: 'string', pattern: '^evt_[0-9a-f]{24}$' } }],
          responses: {
            '202': json(ref('Event'), 'The delivery is queued; the event as it stands.'),
            '400': badRequest,
            '404': notFound('event'),
            '409': json(errorBody(['NO_NOTIFY_URL']), "NO_NOTIFY_URL: the event's order has no notifyUrl."),
            ...merchantApiResponses,
          },
        },
      },
      '/alipay/notify': {
        post: {
          tags: ['alipay'],
          operationId: 'alipayNotify',
          summary: "Alipay's asynchronous notify",
          description:
            "Form-encoded, signed by Alipay (checked as RSA2 with Alipay's public key, whatever sign_type says). Answered `success` once Temporal has accepted it, `failure` for anything unverifiable (Alipay then retries).",
          security: [],
          requestBody: {
            required: true,
            content: {
              'application/x-www-form-urlencoded': {
                schema: {
                  type: 'object',
                  required: ['app_id', 'out_trade_no', 'trade_status', 'sign'],
                  properties: {
                    notify_id: { type: 'string' },
                    app_id: { type: 'string' },
                    out_trade_no: { type: 'string' },
                    trade_no: { type: 'string' },
                    trade_status: { type: 'string' },
                    total_amount: { type: 'string' },
                    seller_id: { type: 'string' },
                    sign_type: { type: 'string' },
                    sign: { type: 'string' },
                  },
                  additionalProperties: { type: 'string' },
                },
              },
            },
          },
          responses: {
            '200': {
              description: 'Exactly `success` or `failure`, as Alipay expects.',
              content: { 'text/plain': { schema: { type: 'string', enum: ['success', 'failure'] } } },
            },
            '400': errorRef('BodyError', 'The form could not be read.'),
            '413': errorRef('BodyError', 'The form is larger than 64 kB.'),
            '415': errorRef('BodyError', 'The form has an encoding or charset that cannot be read.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address; Alipay retries on its own schedule.', retryAfter),
          },
        },
      },
      '/pay/{token}': {
        get: {
          tags: ['cashier'],
          operationId: 'cashierPage',
          summary: "The buyer's page of one order",
          description:
            'The amount, the subject, the merchant, the QR code, a countdown to expiry, and the status as it changes (from the events stream below). Served with a strict Content-Security-Policy, never cached.',
          security: [],
          parameters: [cashierTokenParam],
          responses: {
            '200': cashierPage('The page (UTF-8, zh-CN with English labels).'),
            '404': cashierPage('No order has this token.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
          },
        },
      },
      '/pay/{token}/events': {
        get: {
          tags: ['cashier'],
          operationId: 'cashierEvents',
          summary: "The order's status for its buyer, as server-sent events",
          description:
            '`event: status` with data `{"state": …}`: now, then at each change. States: `preparing` (no QR code yet), `awaiting`, and the final `paid`, `closed` and `review` (the merchant is checking a payment), after which the stream ends.',
          security: [],
          parameters: [cashierTokenParam],
          responses: {
            '200': { description: 'The stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '404': cashierPage('No order has this token.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
          },
        },
      },
      '/healthz': {
        get: {
          tags: ['operations'],
          operationId: 'health',
          summary: 'Liveness',
          security: [],
          responses: {
            '200': json({ type: 'object', required: ['status'], additionalProperties: false, properties: { status: { const: 'ok' } } }, 'The process serves requests.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
          },
        },
      },
      '/readyz': {
        get: {
          tags: ['operations'],
          operationId: 'ready',
          summary: 'Readiness: PostgreSQL and Temporal reachable',
          description: 'Answers within about 2 s.',
          security: [],
          responses: {
            '200': json(ref('Readiness'), 'Ready.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': json(ref('Readiness'), 'Not ready: each part is `ok` or `down` (the reason is in the log).'),
          },
        },
      },
      '/ops/reconciliations': {
        post: {
          tags: ['reconciliation'],
          operationId: 'startReconciliation',
          summary: "Reconcile a Beijing day with Alipay's trade bill",
          description:
            'Starts the reconciliation of the day, or answers the one there is: idempotent per day. `rerun: true` runs a day reconciled before again (refused with 409 while one is running). The answer is the day as it stands, usually RUNNING; read it again with GET until it is DONE, BILL_NOT_READY or FAILED.',
          security: opsSecurity,
          requestBody: { required: true, content: { 'application/json': { schema: ref('StartReconciliationRequest') } } },
          responses: {
            '202': json(ref('Reconciliation'), 'Accepted: the day as it stands (a run going on, or the finished one).'),
            '400': badRequest,
            '401': errorRef('OpsAuthError', 'No bearer token, or not this server’s OPS_TOKEN.', { headers: wwwAuthenticate }),
            '404': errorRef('NotFoundError', 'No such Alipay app in this engine.'),
            '409': errorRef('ReconciliationRunningError', 'A rerun while the day is being reconciled.'),
            '413': errorRef('BodyError', 'The body is larger than 4 kB.'),
            '415': errorRef('BodyError', 'The body has a charset that cannot be read.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': errorRef('TryAgainError', 'PostgreSQL did not answer in time; the same request can be retried safely.'),
          },
        },
      },
      '/ops/reconciliations/{date}': {
        get: {
          tags: ['reconciliation'],
          operationId: 'getReconciliation',
          summary: "A day's reconciliation: status, totals and mismatches",
          security: opsSecurity,
          parameters: [
            { name: 'date', in: 'path', required: true, description: 'The Beijing day, YYYY-MM-DD.', schema: fromZod(reconciliationDate) },
            {
              name: 'limit',
              in: 'query',
              description: `Mismatches in this answer (default and most: ${MAX_MISMATCH_PAGE}); mismatchCount says how many there are.`,
              schema: { type: 'integer', minimum: 1, maximum: MAX_MISMATCH_PAGE },
            },
            { name: 'offset', in: 'query', description: 'Mismatches to skip, in the order they were found.', schema: { type: 'integer', minimum: 0 } },
            { name: 'appId', in: 'query', description: "The Alipay app whose bill it is (each app has its own); default: the configured app.", schema: { type: 'string', pattern: '^\\d{6,32}$' } },
          ],
          responses: {
            '200': json(ref('Reconciliation'), 'The day as its latest run left it (RUNNING while a run goes on).'),
            '400': badRequest,
            '401': errorRef('OpsAuthError', 'No bearer token, or not this server’s OPS_TOKEN.', { headers: wwwAuthenticate }),
            '404': errorRef('NotFoundError', 'The day was never reconciled, or there is no such app.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': errorRef('TryAgainError', 'PostgreSQL did not answer in time; the same request can be retried safely.'),
          },
        },
      },
      '/ops/payments': {
        get: {
          tags: ['operators'],
          operationId: 'listOrdersForOperators',
          summary: 'Orders by their recorded status',
          description: 'For example every REVIEW order (whichever workflow put it there: the payment workflow, a late notify, a reconciliation finding, a refused late refund), or AWAITING_PAYMENT orders older than N minutes; oldest first.',
          security: opsSecurity,
          parameters: [
            { name: 'status', in: 'query', required: true, schema: { enum: PAYMENT_STATUSES } },
            { name: 'olderThanMinutes', in: 'query', description: "Only orders whose current run started more than this long ago.", schema: { type: 'integer', minimum: 0, maximum: 525_600 } },
            { name: 'merchantId', in: 'query', schema: { type: 'string', pattern: '^[A-Za-z0-9]{1,32}$' } },
            { name: 'limit', in: 'query', description: `At most this many (default 100, at most ${MAX_OPS_LIST}).`, schema: { type: 'integer', minimum: 1, maximum: MAX_OPS_LIST } },
          ],
          responses: {
            '200': json(ref('OpsPaymentList'), 'The orders, newest first.'),
            '400': badRequest,
            '401': errorRef('OpsAuthError', 'No bearer token, or not this server’s OPS_TOKEN.', { headers: wwwAuthenticate }),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': errorRef('TryAgainError', 'Temporal did not answer in time; the same request can be retried safely.'),
          },
        },
      },
      '/ops/payments/{paymentId}/query-now': {
        post: {
          tags: ['operators'],
          operationId: 'queryNow',
          summary: 'Ask Alipay about a waiting order now',
          description: "An update on the order's workflow: Alipay is queried at once instead of at the next step of the ladder. Answers with the order once that query is done (PAID if it found the payment).",
          security: opsSecurity,
          parameters: [paymentIdParam],
          requestBody: { required: false, content: { 'application/json': { schema: ref('QueryNowRequest') } } },
          responses: {
            '200': json(payment, 'The order after the query.'),
            '400': badRequest,
            '401': errorRef('OpsAuthError', 'No bearer token, or not this server’s OPS_TOKEN.', { headers: wwwAuthenticate }),
            '404': errorRef('NotFoundError', 'No such order.'),
            '409': errorRef('NotWaitingError', 'The order no longer waits for a payment.'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': errorRef('TryAgainError', 'The workflow or PostgreSQL did not answer in time; the same request can be retried safely.'),
          },
        },
      },
      '/ops/payments/{paymentId}/resolve-review': {
        post: {
          tags: ['operators'],
          operationId: 'resolveReview',
          summary: 'Decide a REVIEW order: PAID after checking, or CLOSED',
          description:
            "An update on the order's payment workflow while it waits for it, or for a REVIEW written after that workflow ended on a review workflow of its own (review:<paymentId>). PAID keeps the money, with Alipay's payment time and amount, and the merchant can refund it. CLOSED first refunds what Alipay holds of the trade (under the number of a refund Alipay refused before, else review-<trade_no>) and reads CLOSED once Alipay confirms the refund; the merchant's webhook follows.",
          security: opsSecurity,
          parameters: [paymentIdParam],
          requestBody: { required: true, content: { 'application/json': { schema: ref('ResolveReviewRequest') } } },
          responses: {
            '200': json(payment, 'The order, resolved.'),
            '400': badRequest,
            '401': errorRef('OpsAuthError', 'No bearer token, or not this server’s OPS_TOKEN.', { headers: wwwAuthenticate }),
            '404': errorRef('NotFoundError', 'No such order.'),
            '409': errorRef('NotInReviewError', 'The order is not in REVIEW (NOT_IN_REVIEW), or Alipay refused the refund of a resolution as CLOSED and the order stays in REVIEW (RESOLUTION_REFUSED).'),
            '429': errorRef('RateLimitedError', 'Too many requests from this address.', retryAfter),
            '503': errorRef('TryAgainError', 'The workflow or PostgreSQL did not answer in time; the same request can be retried safely.'),
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['operations'],
          operationId: 'openApiDocument',
          summary: 'This document',
          security: [],
          responses: {
            '200': json({ type: 'object', required: ['openapi'], properties: { openapi: { const: '3.1.0' } } }, 'The OpenAPI 3.1 document.'),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        DurapayMerchant: { type: 'apiKey', in: 'header', name: SIGNATURE_HEADERS.merchant, description: 'The merchant id. All four Durapay-* headers are required together.' },
        DurapayTimestamp: { type: 'apiKey', in: 'header', name: SIGNATURE_HEADERS.timestamp, description: `Unix seconds, within ${TIMESTAMP_TOLERANCE_SECONDS} s of the server's clock.` },
        DurapayNonce: { type: 'apiKey', in: 'header', name: SIGNATURE_HEADERS.nonce, description: `16-64 characters of A-Z a-z 0-9 _ -, never used before by this merchant.` },
        DurapaySignature: { type: 'apiKey', in: 'header', name: SIGNATURE_HEADERS.signature, description: signatureDescription },
        OpsToken: {
          type: 'http',
          scheme: 'bearer',
          description: '`Authorization: Bearer <OPS_TOKEN>` on every /ops request. `npm start` generates the token when OPS_TOKEN is unset, prints it and keeps it in the data folder.',
        },
      },
      schemas: {
        CreatePaymentRequest: fromZod(createPaymentBody),
        CreateRefundRequest: fromZod(createRefundBody),
        StartReconciliationRequest: fromZod(startReconciliationBody),
        QueryNowRequest: fromZod(queryNowBody),
        ResolveReviewRequest: fromZod(resolveReviewBody),
        OpsPaymentList: {
          type: 'object',
          additionalProperties: false,
          required: ['orders'],
          properties: {
            orders: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['paymentId', 'outTradeNo', 'merchantId', 'status', 'amount', 'alipayTradeNo', 'reason', 'startedAt', 'workflowStatus'],
                properties: {
                  paymentId: { type: 'string', description: 'The workflow id, payment:<appId>:<Alipay out_trade_no>: the path of the actions below.' },
                  outTradeNo: { type: ['string', 'null'] },
                  merchantId: { type: ['string', 'null'] },
                  status: { enum: PAYMENT_STATUSES },
                  amount: nullable(yuan),
                  alipayTradeNo: { type: ['string', 'null'] },
                  reason: { type: ['string', 'null'], description: 'Why the order is in REVIEW (or closed, failed).' },
                  startedAt: { ...instant, description: 'When the order was created.' },
                  workflowStatus: {
                    type: ['string', 'null'],
                    description:
                      "The payment workflow's: RUNNING while it waits for a payment or (REVIEW) for an operator; COMPLETED for a REVIEW written after it ended (a resolution runs in a review workflow); null once Temporal has forgotten it.",
                  },
                },
              },
            },
          },
        },
        Reconciliation: {
          type: 'object',
          description: "A day's reconciliation with Alipay's trade bill (api/ops.ts). Amounts are yuan strings with two decimals.",
          additionalProperties: false,
          required: ['date', 'status', 'reason', 'startedAt', 'finishedAt', 'totals', 'mismatchCount', 'mismatches'],
          properties: {
            date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'The Beijing day.' },
            status: {
              enum: ['RUNNING', 'DONE', 'BILL_NOT_READY', 'FAILED'],
              description: 'BILL_NOT_READY: Alipay still had no bill for the day after RECONCILIATION_BILL_TRIES asks. FAILED: see reason.',
            },
            reason: { type: ['string', 'null'], description: 'Why BILL_NOT_READY or FAILED.' },
            startedAt: nullable(instant),
            finishedAt: nullable(instant),
            totals: {
              description: 'DONE only: what the bill lists (gateway) and what durapay recorded (local) for the day; refund amounts are positive.',
              oneOf: [
                { type: 'null' },
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['payments', 'refunds'],
                  properties: { payments: ref('ReconciliationSides'), refunds: ref('ReconciliationSides') },
                },
              ],
            },
            mismatchCount: { type: 'integer', minimum: 0 },
            mismatches: { type: 'array', items: ref('Mismatch') },
          },
        },
        ReconciliationSides: {
          type: 'object',
          additionalProperties: false,
          required: ['gateway', 'local'],
          properties: {
            gateway: ref('ReconciliationTotal'),
            local: ref('ReconciliationTotal'),
          },
        },
        ReconciliationTotal: {
          type: 'object',
          additionalProperties: false,
          required: ['count', 'amount'],
          properties: { count: { type: 'integer', minimum: 0 }, amount: yuan },
        },
        Mismatch: {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'merchantId', 'outTradeNo', 'alipayOutTradeNo', 'alipayTradeNo', 'localAmount', 'gatewayAmount', 'detail', 'outRequestNo'],
          properties: {
            type: {
              enum: ['missing_local', 'missing_gateway', 'amount_mismatch', 'status_mismatch', 'refund_mismatch'],
              description:
                'missing_local: a payment in the bill durapay never confirmed (it goes into the late-payment path; no order at all: left for an operator). missing_gateway: durapay says paid, the bill has no such payment (the order goes to REVIEW). amount_mismatch: other amounts (REVIEW). status_mismatch: the order’s refund state disagrees with the bill as a whole. refund_mismatch: a refund on one side only, or with another amount.',
            },
            merchantId: { type: ['string', 'null'], description: 'The merchant of the order; null for a number that is not one of this engine’s.' },
            outTradeNo: { type: ['string', 'null'], description: "The merchant's own order number; null for a number that is not one of this engine's." },
            alipayOutTradeNo: { type: 'string', description: "Alipay's out_trade_no (the bill's 商户订单号): <merchantId>_<merchant's number, mapped>." },
            alipayTradeNo: { type: ['string', 'null'] },
            localAmount: nullable(yuan),
            gatewayAmount: nullable(yuan),
            detail: { type: 'string' },
            outRequestNo: { type: ['string', 'null'], description: "The refund's out_request_no, for refund mismatches." },
          },
        },
        Payment: {
          type: 'object',
          description: "The merchant's view of an order (api/read-model.ts paymentResource).",
          additionalProperties: false,
          required: [
            'outTradeNo', 'status', 'amount', 'subject', 'qrCode', 'expiresAt', 'alipayStatus', 'alipayTradeNo', 'paidAmount',
            'paidAt', 'reason', 'alipaySubCode', 'refundedAmount', 'latePayment', 'method', 'authCode', 'createdAt', 'updatedAt', 'cashierUrl',
          ],
          properties: {
            outTradeNo: { type: 'string' },
            status: {
              enum: PAYMENT_STATUSES,
              description: 'FAILED: a barcode payment Alipay refused for good (reason and alipaySubCode say why); no money moved.',
            },
            method: { enum: ['qr', 'barcode'], description: "qr: the buyer scans the order's QR code. barcode: the cashier scanned the buyer's payment code." },
            authCode: { type: ['string', 'null'], description: 'Barcode: the payment code, masked (first 2 and last 4 digits). Never stored or shown in full.' },
            alipaySubCode: { type: ['string', 'null'], description: "FAILED: Alipay's sub_code for the refusal, e.g. ACQ.BUYER_BALANCE_NOT_ENOUGH." },
            amount: yuan,
            subject: { type: 'string' },
            qrCode: { type: ['string', 'null'], description: 'The code to show the buyer; null when Alipay issued none.' },
            expiresAt: instant,
            alipayStatus: { enum: ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED', null], description: "Alipay's own trade status, when known." },
            alipayTradeNo: { type: ['string', 'null'] },
            paidAmount: nullable(yuan),
            paidAt: nullable(instant),
            reason: { type: ['string', 'null'], description: 'Why the order went to REVIEW, PRECREATE_FAILED, FAILED or CLOSED.' },
            refundedAmount: yuan,
            latePayment: {
              description:
                'Money Alipay took for the order after it was closed, and the refund that gives it back; refundedBy cancel: Alipay refunded it itself, as its answer to the cancel of a payment that landed meanwhile.',
              oneOf: [
                { type: 'null' },
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['alipayTradeNo', 'amount', 'detectedAt', 'refundOutRequestNo', 'refundStatus', 'refundedBy', 'lastRefusal'],
                  properties: {
                    alipayTradeNo: { type: 'string' },
                    amount: yuan,
                    detectedAt: instant,
                    refundOutRequestNo: { type: ['string', 'null'] },
                    refundStatus: { enum: [...REFUND_STATUSES, null] },
                    refundedBy: { enum: ['cancel', null] },
                    lastRefusal: {
                      description:
                        'While the refund is sent again after a refusal that can pass (ACQ.SELLER_BALANCE_NOT_ENOUGH, …), for LATE_REFUND_RETRY_WINDOW: Alipay’s last refusal, how many there were, and when the next try goes.',
                      oneOf: [
                        { type: 'null' },
                        {
                          type: 'object',
                          additionalProperties: false,
                          required: ['subCode', 'message', 'at', 'attempts'],
                          properties: {
                            subCode: { type: 'string' },
                            message: { type: 'string' },
                            at: instant,
                            attempts: { type: 'integer', minimum: 1 },
                            nextAttemptAt: instant,
                          },
                        },
                      ],
                    },
                  },
                },
              ],
            },
            createdAt: instant,
            updatedAt: instant,
            cashierUrl: {
              type: ['string', 'null'],
              format: 'uri',
              description:
                "The buyer's page of this order (GET /pay/{token}) on PUBLIC_BASE_URL: show it or send the buyer there. Null for orders created before cashier pages.",
            },
          },
        },
        Refund: {
          type: 'object',
          description: 'A refund (api/read-model.ts refundResource).',
          additionalProperties: false,
          required: ['outRequestNo', 'amount', 'status', 'reason', 'failureReason', 'alipayFundChange', 'createdAt', 'settledAt'],
          properties: {
            outRequestNo: { type: 'string' },
            amount: yuan,
            status: { enum: REFUND_STATUSES },
            reason: { type: ['string', 'null'] },
            failureReason: { type: ['string', 'null'], description: "Alipay's sub_code and message, when it refused." },
            alipayFundChange: { type: ['string', 'null'], description: "Alipay's fund_change: Y when the call moved money." },
            createdAt: instant,
            settledAt: nullable(instant),
          },
        },
        Event: {
          type: 'object',
          description: eventsSubjectToChange,
          additionalProperties: false,
          required: ['id', 'type', 'created', 'sequence', 'status', 'deliveredAt', 'data', 'attempts'],
          properties: {
            id: { type: 'string', pattern: '^evt_[0-9a-f]{24}$' },
            type: { type: 'string', examples: ['payment.paid', 'refund.succeeded'] },
            created: { type: 'integer', description: 'Unix seconds, as in the webhook body.' },
            sequence: { type: 'integer', minimum: 1, description: "The event's place among its order's events; delivered in this order." },
            status: { enum: ['pending', 'delivered', 'failed', 'no_endpoint'] },
            deliveredAt: { anyOf: [instant, { type: 'null' }] },
            data: { type: 'object', description: 'The webhook body’s data: the payment (and the refund) as they were; the payment without cashierUrl.' },
            attempts: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['attemptedAt', 'statusCode', 'latencyMs', 'error', 'delivered', 'result'],
                properties: {
                  attemptedAt: instant,
                  statusCode: { type: ['integer', 'null'], description: "The merchant's HTTP status; null when none came." },
                  latencyMs: { type: ['integer', 'null'], minimum: 0 },
                  error: {
                    type: ['string', 'null'],
                    description: 'Why the attempt failed, coarsely: `HTTP <status>`, `timeout`, `target refused` (a private address under WEBHOOK_PRIVATE_TARGETS=deny) or `unreachable`; null when delivered.',
                  },
                  delivered: { type: 'boolean' },
                  result: {
                    type: 'string',
                    pattern: '^(delivered|http [1-5][0-9]{2}|timeout|refused|unreachable)$',
                    description: 'How the attempt went: `delivered` (a 2xx), `http <status>`, `timeout`, `refused` (the target was refused) or `unreachable`.',
                    examples: ['delivered', 'http 503', 'timeout'],
                  },
                },
              },
            },
          },
        },
        Readiness: {
          type: 'object',
          additionalProperties: false,
          required: ['status', 'postgres', 'temporal'],
          properties: {
            status: { enum: ['ready', 'not ready'] },
            postgres: { enum: ['ok', 'down'], description: '`down`: the reason is in the API\'s log' },
            temporal: { enum: ['ok', 'down'], description: '`down`: the reason is in the API\'s log' },
          },
        },
        Error: {
          description: 'Every error answer.',
          ...errorBody(Object.keys(ERROR_CODES) as ErrorCode[], {}),
        },
        FieldIssue: {
          type: 'object',
          additionalProperties: false,
          required: ['field', 'rule'],
          properties: {
            field: { type: 'string', description: 'The field, parameter or path segment, or (body) for the body as a whole.' },
            rule: { type: 'string' },
          },
        },
        BadRequestError: {
          oneOf: [
            errorBody(['INVALID_REQUEST'], { type: 'array', minItems: 1, items: ref('FieldIssue') }),
            errorBody(['INVALID_JSON', 'BAD_REQUEST']),
          ],
        },
        BodyError: errorBody(['BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE']),
        AuthError: errorBody(['AUTH_MISSING', 'AUTH_UNKNOWN_MERCHANT', 'AUTH_STALE_TIMESTAMP', 'AUTH_BAD_SIGNATURE', 'AUTH_REPLAYED_NONCE']),
        NotFoundError: errorBody(['NOT_FOUND']),
        OrderConflictError: errorBody(['ORDER_CONFLICT']),
        OrderClosedError: errorBody(['ORDER_CLOSED'], payment),
        NotCancellableError: errorBody(['NOT_CANCELLABLE'], payment),
        NotWaitingError: errorBody(['NOT_WAITING'], payment),
        NotInReviewError: errorBody(['NOT_IN_REVIEW', 'RESOLUTION_REFUSED'], payment),
        PrecreateFailedError: errorBody(['PRECREATE_FAILED'], payment),
        RefundConflictError: errorBody(['REFUND_CONFLICT']),
        RefundExceedsRefundableError: errorBody(['REFUND_EXCEEDS_REFUNDABLE'], {
          type: 'object',
          additionalProperties: false,
          required: ['refundable'],
          properties: { refundable: yuan },
        }),
        NotRefundableError: errorBody(['NOT_REFUNDABLE'], {
          type: 'object',
          additionalProperties: false,
          required: ['status'],
          properties: { status: { enum: PAYMENT_STATUSES } },
        }),
        RateLimitedError: errorBody(['RATE_LIMITED'], {
          type: 'object',
          required: ['limit', 'windowSeconds', 'retryAfterSeconds'],
          properties: { limit: { type: 'integer' }, windowSeconds: { type: 'integer' }, retryAfterSeconds: { type: 'integer' } },
        }),
        TryAgainError: errorBody(['TRY_AGAIN']),
        OpsAuthError: errorBody(['OPS_UNAUTHORIZED']),
        ReconciliationRunningError: errorBody(['RECONCILIATION_RUNNING']),
      },
    },
  };
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

/** /openapi.json and /docs, unauthenticated. The page's assets come from swagger-ui-dist on disk: no CDN. */
export function docsRouter(): Router {
  const document = buildOpenApiDocument();
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  // The document is embedded in the page, so it renders behind any path prefix and offline.
  const options = { customSiteTitle: 'durapay API', swaggerOptions: { defaultModelsExpandDepth: 0 } };
  router.use('/docs', swaggerUi.serveFiles(document, options), swaggerUi.setup(document, options));
  return router;
}
