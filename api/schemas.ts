// What the API answers, as zod schemas: the resources and the error bodies. The OpenAPI document is
// generated from them (api/openapi.ts), the resource builders are typed by them, and the
// conformance test checks real answers against the document they make. Each `id` is the schema's
// name under components/schemas.
import { z } from 'zod';
import { YUAN_PATTERN } from '../lib/payments/money.js';
import { PAYMENT_STATUSES } from '../lib/payments/payment.js';
import { ENDPOINT_ID_PATTERN } from '../lib/merchants/webhook-endpoints.js';
import { PING_EVENT_TYPE, WEBHOOK_API_VERSION, WEBHOOK_EVENT_TYPES } from '../lib/merchants/webhooks.js';
import { ERROR_CODE_NAMES, type ErrorCode } from './error-codes.js';

/** A yuan amount the API gives: two decimals, never negative. */
export const yuan = z.string().regex(YUAN_PATTERN).meta({ examples: ['12.50'] });
export const instant = z.iso.datetime();

export const paymentStatus = z.enum(PAYMENT_STATUSES).meta({
  id: 'PaymentStatus',
  description:
    'AWAITING_PAYMENT: waiting for the buyer. PAID, PARTIALLY_REFUNDED, REFUNDED: paid, and how much went back. CLOSED: never paid (cancelled or expired), or resolved so. PRECREATE_FAILED: Alipay issued no QR code. FAILED: a barcode payment Alipay refused for good; no money moved. REVIEW: an operator decides (money and record disagree).',
});
export const refundStatus = z.enum(['PENDING', 'SUCCEEDED', 'FAILED']);

const lastRefusal = z.strictObject({
  subCode: z.string(),
  message: z.string(),
  at: instant,
  attempts: z.int().min(1),
  nextAttemptAt: instant.optional(),
});

const latePayment = z
  .strictObject({
    alipayTradeNo: z.string(),
    amount: yuan,
    detectedAt: instant,
    refundOutRequestNo: z.string().nullable(),
    refundStatus: refundStatus.nullable(),
    refundedBy: z.enum(['cancel']).nullable(),
    lastRefusal: lastRefusal.nullable().meta({
      description:
        'While the refund is sent again after a refusal that can pass (ACQ.SELLER_BALANCE_NOT_ENOUGH, …), for LATE_REFUND_RETRY_WINDOW: Alipay’s last refusal, how many there were, and when the next try goes.',
    }),
  })
  .nullable()
  .meta({
    description:
      'Money Alipay took for the order after it was closed, and the refund that gives it back; refundedBy cancel: Alipay refunded it itself, as its answer to the cancel of a payment that landed meanwhile.',
  });

/** The merchant's view of an order (api/read-model.ts paymentResource). */
export const paymentSchema = z
  .strictObject({
    outTradeNo: z.string(),
    status: paymentStatus,
    amount: yuan,
    subject: z.string(),
    qrCode: z.string().nullable().meta({ description: 'The code to show the buyer; null when Alipay issued none.' }),
    expiresAt: instant,
    alipayStatus: z
      .enum(['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'])
      .nullable()
      .meta({ description: "Alipay's own trade status, when known." }),
    alipayTradeNo: z.string().nullable(),
    paidAmount: yuan.nullable(),
    paidAt: instant.nullable(),
    reason: z.string().nullable().meta({ description: 'Why the order went to REVIEW, PRECREATE_FAILED, FAILED or CLOSED.' }),
    alipaySubCode: z.string().nullable().meta({ description: "FAILED: Alipay's sub_code for the refusal, e.g. ACQ.BUYER_BALANCE_NOT_ENOUGH." }),
    refundedAmount: yuan,
    latePayment,
    method: z
      .enum(['qr', 'barcode'])
      .meta({ description: "qr: the buyer scans the order's QR code. barcode: the cashier scanned the buyer's payment code." }),
    authCode: z
      .string()
      .nullable()
      .meta({ description: 'Barcode: the payment code, masked (first 2 and last 4 digits). Never stored or shown in full.' }),
    createdAt: instant,
    updatedAt: instant,
    cashierUrl: z.url().nullable().meta({
      description:
        "The buyer's page of this order (GET /pay/{token}) on PUBLIC_BASE_URL: show it or send the buyer there. Null for a barcode order (the cashier has already scanned the buyer) and for orders created before cashier pages.",
    }),
  })
  .meta({ id: 'Payment', description: "The merchant's view of an order. Amounts are yuan strings with two decimals." });
export type PaymentResource = z.infer<typeof paymentSchema>;

export const refundSchema = z
  .strictObject({
    outRequestNo: z.string(),
    amount: yuan,
    status: refundStatus,
    reason: z.string().nullable(),
    failureReason: z.string().nullable().meta({ description: "Alipay's sub_code and message, when it refused." }),
    alipayFundChange: z.string().nullable().meta({ description: "Alipay's fund_change: Y when the call moved money." }),
    createdAt: instant,
    settledAt: instant.nullable(),
  })
  .meta({ id: 'Refund', description: 'A refund of a paid order.' });
export type RefundResource = z.infer<typeof refundSchema>;

export const EVENT_ID_PATTERN = /^evt_[0-9a-f]{24}$/;

const deliveryAttempt = z.strictObject({
  attemptedAt: instant,
  statusCode: z.int().nullable().meta({ description: "The merchant's HTTP status; null when none came." }),
  latencyMs: z.int().min(0).nullable(),
  error: z.string().nullable().meta({
    description:
      'Why the attempt failed, coarsely: `HTTP <status>`, `timeout`, `target refused` (a private address under WEBHOOK_PRIVATE_TARGETS=deny) or `unreachable`; null when delivered.',
  }),
  delivered: z.boolean(),
  result: z
    .string()
    .regex(/^(delivered|http [1-5][0-9]{2}|timeout|refused|unreachable)$/)
    .meta({
      description: 'How the attempt went: `delivered` (a 2xx), `http <status>`, `timeout`, `refused` (the target was refused) or `unreachable`.',
      examples: ['delivered', 'http 503', 'timeout'],
    }),
});

export const eventSchema = z
  .strictObject({
    id: z.string().regex(EVENT_ID_PATTERN),
    type: z.string().meta({ examples: ['payment.paid', 'refund.succeeded'] }),
    created: z.int().meta({ description: 'Unix seconds, as in the webhook body.' }),
    sequence: z.int().min(1).meta({ description: "The event's place among its order's events; delivered in this order." }),
    status: z.enum(['pending', 'delivered', 'failed', 'no_endpoint']).meta({
      description: "The delivery to the order's notifyUrl (no_endpoint: the order has none); each webhook endpoint's deliveries are listed under the endpoint.",
    }),
    deliveredAt: instant.nullable(),
    data: z
      .record(z.string(), z.unknown())
      .meta({ description: 'The webhook body’s data: the payment (and the refund) as they were; the payment without cashierUrl.' }),
    attempts: z.array(deliveryAttempt).meta({ description: "The attempts at the order's notifyUrl." }),
  })
  .meta({ id: 'Event', description: "One of an order's events, and how its delivery to the order's notifyUrl went." });

const eventTypeSchema = z.enum([...WEBHOOK_EVENT_TYPES, PING_EVENT_TYPE]).meta({ id: 'EventType' });

export const webhookEventSchema = z
  .strictObject({
    id: z.string().regex(EVENT_ID_PATTERN),
    type: eventTypeSchema,
    apiVersion: z.literal(WEBHOOK_API_VERSION).meta({ description: 'The version of the event body: the fields of data for a type are only added to under one version.' }),
    created: z.int().meta({ description: 'Unix seconds.' }),
    data: z.record(z.string(), z.unknown()).meta({
      description: 'The payment (and for refund events, its refund under data.refund) as it was when the event happened; a ping: { endpointId }.',
    }),
  })
  .meta({ id: 'WebhookEvent', description: 'An event exactly as a webhook body carries it, byte for byte in that key order.' });

export const eventFeedSchema = z
  .strictObject({
    events: z.array(webhookEventSchema).meta({ description: 'Oldest first.' }),
    nextCursor: z.string().meta({ description: 'Pass it as after for the events that follow; it is given even when events is empty.' }),
  })
  .meta({ id: 'EventFeed' });

export const ENDPOINT_ID_SCHEMA = z.string().regex(ENDPOINT_ID_PATTERN, 'must be a webhook endpoint id: we_ followed by 24 hex digits');

export const webhookEndpointSchema = z
  .strictObject({
    id: z.string().regex(ENDPOINT_ID_PATTERN),
    url: z.string(),
    events: z.array(z.enum([...WEBHOOK_EVENT_TYPES, '*'])).min(1).meta({ description: 'The event types it receives; ["*"]: every one.' }),
    description: z.string().nullable(),
    enabled: z.boolean(),
    createdAt: instant,
    updatedAt: instant,
    previousSecretExpiresAt: instant.nullable().meta({
      description: 'After a rotation, until when the previous secret signs beside the new one (two v1 values); null when only one secret signs.',
    }),
  })
  .meta({ id: 'WebhookEndpoint', description: "One of the merchant's webhook endpoints; its secret is shown only when created or rotated." });

export const newWebhookEndpointSchema = webhookEndpointSchema
  .extend({ secret: z.string().meta({ description: 'The signing secret (whsec_…), shown this once.' }) })
  .meta({ id: 'NewWebhookEndpoint' });

export const webhookDeliverySchema = z
  .strictObject({
    eventId: z.string().regex(EVENT_ID_PATTERN),
    type: eventTypeSchema,
    outTradeNo: z.string().nullable().meta({ description: "The event's order; null for a ping." }),
    status: z.enum(['pending', 'delivered', 'failed', 'cancelled']).meta({
      description: 'pending: being sent (or waiting for its next attempt); failed: every attempt failed; cancelled: the endpoint was disabled or deleted first.',
    }),
    createdAt: instant,
    deliveredAt: instant.nullable(),
    attempts: z.array(deliveryAttempt),
  })
  .meta({ id: 'WebhookDelivery', description: 'One event sent to one webhook endpoint, with every attempt.' });

const reconciliationTotal = z.strictObject({ count: z.int().min(0), amount: yuan }).meta({ id: 'ReconciliationTotal' });
const reconciliationSides = z.strictObject({ gateway: reconciliationTotal, local: reconciliationTotal }).meta({ id: 'ReconciliationSides' });

const mismatchSchema = z
  .strictObject({
    type: z.enum(['missing_local', 'missing_gateway', 'amount_mismatch', 'status_mismatch', 'refund_mismatch']).meta({
      description:
        'missing_local: a payment in the bill durapay never confirmed (it goes into the late-payment path; no order at all: left for an operator). missing_gateway: durapay says paid, the bill has no such payment (the order goes to REVIEW). amount_mismatch: other amounts (REVIEW). status_mismatch: the order’s refund state disagrees with the bill as a whole. refund_mismatch: a refund on one side only, or with another amount.',
    }),
    merchantId: z.string().nullable().meta({ description: 'The merchant of the order; null for a number that is not one of this engine’s.' }),
    outTradeNo: z.string().nullable().meta({ description: "The merchant's own order number; null for a number that is not one of this engine's." }),
    alipayOutTradeNo: z
      .string()
      .meta({ description: "Alipay's out_trade_no (the bill's 商户订单号): <merchantId>_<merchant's number, mapped>." }),
    alipayTradeNo: z.string().nullable(),
    localAmount: yuan.nullable(),
    gatewayAmount: yuan.nullable(),
    detail: z.string(),
    outRequestNo: z.string().nullable().meta({ description: "The refund's out_request_no, for refund mismatches." }),
  })
  .meta({ id: 'Mismatch' });

export const reconciliationSchema = z
  .strictObject({
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).meta({ description: 'The Beijing day.' }),
    status: z.enum(['RUNNING', 'DONE', 'BILL_NOT_READY', 'FAILED']).meta({
      description: 'BILL_NOT_READY: Alipay still had no bill for the day after RECONCILIATION_BILL_TRIES asks. FAILED: see reason.',
    }),
    reason: z.string().nullable().meta({ description: 'Why BILL_NOT_READY or FAILED.' }),
    startedAt: instant.nullable(),
    finishedAt: instant.nullable(),
    totals: z
      .strictObject({ payments: reconciliationSides, refunds: reconciliationSides })
      .nullable()
      .meta({ description: 'DONE only: what the bill lists (gateway) and what durapay recorded (local) for the day; refund amounts are positive.' }),
    mismatchCount: z.int().min(0),
    mismatches: z.array(mismatchSchema),
  })
  .meta({
    id: 'Reconciliation',
    description: "A day's reconciliation with Alipay's trade bill. Amounts are yuan strings with two decimals.",
  });

export const opsPaymentListSchema = z
  .strictObject({
    orders: z.array(
      z.strictObject({
        paymentId: z
          .string()
          .meta({ description: 'The workflow id, payment:<appId>:<Alipay out_trade_no>: the path of the actions below.' }),
        outTradeNo: z.string().nullable(),
        merchantId: z.string().nullable(),
        status: paymentStatus,
        amount: yuan.nullable(),
        alipayTradeNo: z.string().nullable(),
        reason: z.string().nullable().meta({ description: 'Why the order is in REVIEW (or closed, failed).' }),
        startedAt: instant.meta({ description: 'When the order was created.' }),
        workflowStatus: z.string().nullable().meta({
          description:
            "The payment workflow's: RUNNING while it waits for a payment or (REVIEW) for an operator; COMPLETED for a REVIEW written after it ended (a resolution runs in a review workflow); null once Temporal has forgotten it.",
        }),
      }),
    ),
  })
  .meta({ id: 'OpsPaymentList' });
export type OpsOrder = z.infer<typeof opsPaymentListSchema>['orders'][number];

export const TIMELINE_SOURCES = ['ledger', 'webhook', 'alipay', 'reconciliation'] as const;
const TRACE_ID_PATTERN = /^[0-9a-f]{32}$/;

const timelineWorkflowSchema = z
  .strictObject({
    workflowId: z.string(),
    kind: z.enum(['payment', 'refund', 'review', 'late-notify', 'reconciliation']),
    runId: z.string().nullable().meta({ description: 'The latest run; null when Temporal no longer has the workflow.' }),
    status: z.string().nullable().meta({ description: 'RUNNING, COMPLETED, …; null when Temporal no longer has the workflow.' }),
    historyAvailable: z.boolean().meta({ description: "false: Temporal no longer has its history (retention has passed): its Alipay calls are missing from entries." }),
    temporalUiUrl: z.string().nullable().meta({ description: 'The workflow in the Temporal UI; null when TEMPORAL_UI_URL is not set.' }),
  })
  .meta({ id: 'TimelineWorkflow' });

const timelineEntrySchema = z
  .strictObject({
    at: instant.meta({ description: 'When it happened: the ledger write, the attempt, the call (its scheduling), or the finding (when it was handed to the order).' }),
    source: z.enum(TIMELINE_SOURCES),
    type: z.string().meta({
      description: 'ledger: the event type (created, paid, refund_requested, …); webhook: the event type (payment.paid, …); alipay: the method (alipay.trade.precreate, …); reconciliation: the mismatch type.',
      examples: ['paid', 'payment.paid', 'alipay.trade.refund', 'missing_gateway'],
    }),
    summary: z.string().meta({ description: 'One line for people.' }),
    workflowId: z.string().nullable().optional().meta({ description: 'alipay: the workflow that made the call.' }),
    data: z.record(z.string(), z.unknown()).optional().meta({ description: 'ledger: the event as recorded, amounts as yuan strings (amountFen becomes amount).' }),
    eventId: z.string().optional().meta({ description: 'webhook: the event (evt_…).' }),
    endpointId: z.string().nullable().optional().meta({ description: "webhook: the webhook endpoint; null: the order's notifyUrl." }),
    attempt: z.int().min(1).optional().meta({ description: 'webhook: the attempt at this target, from 1. alipay: the attempts Temporal made.' }),
    outcome: z.string().optional().meta({
      description: 'webhook: delivered, http <status>, timeout, refused or unreachable. alipay: completed, failed, timed_out, canceled or pending (still going).',
    }),
    httpStatus: z.int().nullable().optional().meta({ description: "webhook: the receiver's HTTP status; null when none came." }),
    latencyMs: z.int().min(0).nullable().optional(),
    activity: z.string().optional().meta({ description: 'alipay: the activity that made the call.' }),
    finishedAt: instant.nullable().optional().meta({ description: 'alipay: when the call ended; null while it goes on.' }),
    result: z.string().nullable().optional().meta({ description: "alipay: what the answer said (the trade's status, closed, succeeded, …)." }),
    subCode: z.string().nullable().optional().meta({ description: "alipay: Alipay's sub_code, when the answer carried one." }),
    failure: z.string().nullable().optional().meta({ description: 'alipay: why the call failed, when it did.' }),
    billDate: z.string().optional().meta({ description: "reconciliation: the Beijing day of the bill." }),
    runId: z.string().optional().meta({ description: 'reconciliation: the reconciliation run that found it.' }),
    localAmount: yuan.nullable().optional(),
    gatewayAmount: yuan.nullable().optional(),
    outRequestNo: z.string().nullable().optional().meta({ description: "The refund's out_request_no, for a refund mismatch." }),
    detail: z.string().optional(),
  })
  .meta({ id: 'TimelineEntry', description: 'One thing that happened to the order; the fields besides the first four depend on the source.' });

export const opsTimelineSchema = z
  .strictObject({
    paymentId: z.string(),
    outTradeNo: z.string(),
    merchantId: z.string().nullable(),
    status: paymentStatus,
    amount: yuan,
    workflowId: z.string().meta({ description: "The order's payment workflow (its id is the paymentId)." }),
    temporalUiUrl: z.string().nullable().meta({ description: 'The payment workflow in the Temporal UI; null when TEMPORAL_UI_URL is not set.' }),
    traceId: z.string().regex(TRACE_ID_PATTERN).nullable().meta({
      description: 'The trace the payment workflow was started under (32 lowercase hex digits); null when it was started under none, or Temporal no longer has it.',
    }),
    historyAvailable: z.boolean().meta({ description: "false: Temporal no longer has the payment workflow's history, so its Alipay calls are missing." }),
    workflows: z.array(timelineWorkflowSchema).meta({ description: 'The order\'s workflows whose histories were read: the payment workflow first, then its refunds, review, late notifies and reconciliation findings.' }),
    entries: z.array(timelineEntrySchema).meta({ description: 'Oldest first; entries of the same instant in the order alipay, ledger, webhook, reconciliation, then as each source keeps them.' }),
  })
  .meta({ id: 'OpsTimeline', description: "One order's story: its ledger, webhook attempts, Alipay calls and reconciliation findings in time order. Amounts are yuan strings with two decimals." });
export type OpsTimeline = z.infer<typeof opsTimelineSchema>;
export type TimelineEntry = OpsTimeline['entries'][number];
export type TimelineWorkflow = OpsTimeline['workflows'][number];
export { TRACE_ID_PATTERN };

export const readinessSchema = z
  .strictObject({
    status: z.enum(['ready', 'not ready']),
    postgres: z.enum(['ok', 'down']).meta({ description: "`down`: the reason is in the API's log" }),
    temporal: z.enum(['ok', 'down']).meta({ description: "`down`: the reason is in the API's log" }),
  })
  .meta({ id: 'Readiness' });

/**
 * A whole number in a query string, from min to max: at most as many digits as max has. The
 * document says it as an integer parameter.
 */
export function wholeNumberParam(min: number, max: number, rule: string, description: string) {
  return z
    .string({ error: rule })
    .regex(new RegExp(`^\\d{1,${String(max).length}}$`), rule)
    .transform(Number)
    .refine((n) => n >= min && n <= max, rule)
    .meta({ type: 'integer', minimum: min, maximum: max, description });
}

export const healthSchema = z.strictObject({ status: z.literal('ok') });

// ---- Error bodies: { error: { code, message, details, requestId } }, narrowed to what one answer can carry.

const requestIdField = z.string().meta({ description: "The answer's Request-Id header: quote it to find the request in the logs." });

function errorShape<C extends ErrorCode>(codes: readonly [C, ...C[]], details: z.ZodType) {
  return z.strictObject({ error: z.strictObject({ code: z.enum(codes), message: z.string(), details, requestId: requestIdField }) });
}
const errorBody = <C extends ErrorCode>(id: string, codes: readonly [C, ...C[]], details: z.ZodType = z.null()) =>
  errorShape(codes, details).meta({ id });

export const fieldIssueSchema = z
  .strictObject({
    field: z.string().meta({ description: 'The field, parameter or path segment, or (body) for the body as a whole.' }),
    rule: z.string(),
  })
  .meta({ id: 'FieldIssue' });

export const errors = {
  any: errorShape(ERROR_CODE_NAMES, z.any()).meta({ description: 'Every error answer.' }),
  badRequest: z
    .union([
      errorBody('InvalidRequestError', ['INVALID_REQUEST'], z.array(fieldIssueSchema).min(1)),
      errorBody('UnreadableBodyError', ['INVALID_JSON', 'BAD_REQUEST']),
    ])
    .meta({ id: 'BadRequestError' }),
  body: errorBody('BodyError', ['BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE']),
  auth: errorBody('AuthError', ['AUTH_MISSING', 'AUTH_UNKNOWN_MERCHANT', 'AUTH_STALE_TIMESTAMP', 'AUTH_BAD_SIGNATURE', 'AUTH_REPLAYED_NONCE']),
  opsAuth: errorBody('OpsAuthError', ['OPS_UNAUTHORIZED']),
  notFound: errorBody('NotFoundError', ['NOT_FOUND']),
  orderConflict: errorBody('OrderConflictError', ['ORDER_CONFLICT']),
  orderClosed: errorBody('OrderClosedError', ['ORDER_CLOSED'], paymentSchema),
  notCancellable: errorBody('NotCancellableError', ['NOT_CANCELLABLE'], paymentSchema),
  notWaiting: errorBody('NotWaitingError', ['NOT_WAITING'], paymentSchema),
  notInReview: errorBody('NotInReviewError', ['NOT_IN_REVIEW', 'RESOLUTION_REFUSED'], paymentSchema),
  precreateFailed: errorBody('PrecreateFailedError', ['PRECREATE_FAILED'], paymentSchema),
  refundConflict: errorBody('RefundConflictError', ['REFUND_CONFLICT']),
  refundExceedsRefundable: errorBody('RefundExceedsRefundableError', ['REFUND_EXCEEDS_REFUNDABLE'], z.strictObject({ refundable: yuan })),
  notRefundable: errorBody('NotRefundableError', ['NOT_REFUNDABLE'], z.strictObject({ status: paymentStatus })),
  noNotifyUrl: errorBody('NoNotifyUrlError', ['NO_NOTIFY_URL']),
  endpointLimit: errorBody('EndpointLimitError', ['ENDPOINT_LIMIT']),
  endpointDisabled: errorBody('EndpointDisabledError', ['ENDPOINT_DISABLED']),
  reconciliationRunning: errorBody('ReconciliationRunningError', ['RECONCILIATION_RUNNING']),
  rateLimited: errorBody(
    'RateLimitedError',
    ['RATE_LIMITED'],
    z.object({ limit: z.int(), windowSeconds: z.int(), retryAfterSeconds: z.int() }),
  ),
  tooManyStreams: errorBody(
    'TooManyStreamsError',
    ['TOO_MANY_STREAMS'],
    z.strictObject({ limit: z.int().min(1), per: z.enum(['order', 'address']) }),
  ),
  tryAgain: errorBody('TryAgainError', ['TRY_AGAIN']),
  consoleSession: errorBody('ConsoleSessionError', ['SESSION_REQUIRED', 'SESSION_EXPIRED']),
  consoleMerchantSession: errorBody('ConsoleMerchantSessionError', ['SESSION_REQUIRED', 'SESSION_EXPIRED', 'AUTH_UNKNOWN_MERCHANT']),
  consoleForbidden: errorBody('ConsoleForbiddenError', ['CSRF_TOKEN_INVALID', 'FORBIDDEN_ROLE']),
  consoleCsrf: errorBody('ConsoleCsrfError', ['CSRF_TOKEN_INVALID']),
  loginFailed: errorBody('LoginFailedError', ['LOGIN_FAILED']),
  tooManyLogins: z
    .union([
      errorBody('TooManyLoginAttemptsError', ['TOO_MANY_LOGIN_ATTEMPTS'], z.strictObject({ retryAfterSeconds: z.int().min(1) })),
      errorShape(['RATE_LIMITED'], z.object({ limit: z.int(), windowSeconds: z.int(), retryAfterSeconds: z.int() })),
    ])
    .meta({ id: 'ConsoleLoginRefusedError' }),
};

// ---- The web console's own answers (api/console.ts).

export const consoleSessionSchema = z
  .strictObject({
    user: z.strictObject({
      id: z.string(),
      email: z.string(),
      role: z.string().meta({ description: 'operator, or merchant:<merchant id> for a merchant\'s staff.' }),
      merchantId: z.string().nullable().meta({ description: "The merchant of a merchant's staff; null for an operator." }),
    }),
    csrfToken: z.string().meta({ description: 'Send it as the X-CSRF-Token header with every change (any method but GET and HEAD).' }),
    expiresAt: instant.meta({ description: 'When the session ends unless used before: CONSOLE_SESSION_IDLE after its last request, CONSOLE_SESSION_MAX after the login at the latest.' }),
  })
  .meta({ id: 'ConsoleSession' });

const consoleMerchantSummary = { id: z.string(), name: z.string(), disabled: z.boolean() };
export const consoleMerchantSchema = z.strictObject(consoleMerchantSummary).meta({ id: 'ConsoleMerchant' });
export const consoleMerchantListSchema = z.strictObject({ data: z.array(consoleMerchantSchema) }).meta({ id: 'ConsoleMerchantList' });
export const consoleNewMerchantSchema = z
  .strictObject({
    ...consoleMerchantSummary,
    merchantId: z.string().meta({ description: 'The same as id.' }),
    secret: z.string().meta({ description: 'The API secret that signs /v1 requests: shown this once.' }),
    webhookSecret: z.string().meta({ description: 'The secret webhooks to the order\'s notifyUrl are signed with: shown this once.' }),
  })
  .meta({ id: 'ConsoleNewMerchant' });
export const consoleRotatedSecretSchema = z
  .strictObject({
    merchantId: z.string(),
    secret: z.string().meta({ description: 'The new API secret: shown this once.' }),
    previousSecretValidUntil: instant.meta({ description: 'Until when the previous secret is still accepted.' }),
  })
  .meta({ id: 'ConsoleRotatedSecret' });
export const consoleAuditPageSchema = z
  .strictObject({
    data: z.array(
      z.strictObject({
        id: z.int(),
        at: instant,
        actor: z.strictObject({
          id: z.string().nullable(),
          email: z.string().nullable().meta({ description: 'For a failed login, the e-mail address tried.' }),
          role: z.string().nullable(),
        }),
        action: z.string().meta({ description: 'The method and the route, e.g. POST /console/api/v1/payments/:outTradeNo/refunds.' }),
        target: z.record(z.string(), z.string()).meta({ description: "The route's parameters." }),
        status: z.int().meta({ description: 'The HTTP status answered.' }),
        address: z.string().nullable().meta({ description: 'The client address.' }),
        requestId: z.string().nullable(),
        detail: z.unknown().meta({ description: 'The JSON body sent, without any field whose name holds password, secret, key, token or authCode; null without a body.' }),
      }),
    ),
    nextBefore: z.int().nullable().meta({ description: 'The before of the next (older) page; null on the last page.' }),
  })
  .meta({ id: 'ConsoleAuditPage' });
