// Every error code the API answers with: its HTTP status and when it is answered. The one table the
// API raises errors from (HttpError takes a code from it), the OpenAPI document lists, and the docs
// render; a code missing here does not compile.
import { TIMESTAMP_TOLERANCE_SECONDS } from '../lib/merchants/signing.js';

interface ErrorCodeEntry {
  /** The status it is answered with; the first is the one HttpError uses. */
  statuses: readonly [number, ...number[]];
  when: string;
}

export const ERROR_CODES = {
  INVALID_REQUEST: { statuses: [400], when: 'A field, parameter or path segment broke its rule; details lists each as {field, rule}.' },
  INVALID_JSON: { statuses: [400], when: 'The body is not JSON.' },
  BAD_REQUEST: {
    statuses: [400, 413, 415],
    when: 'The body could not be read (too large: 16 kB on /v1, 4 kB on /ops, 64 kB on the notify; a bad encoding or charset).',
  },
  UNSUPPORTED_MEDIA_TYPE: { statuses: [415], when: 'A /v1 body that is not application/json.' },
  AUTH_MISSING: { statuses: [401], when: 'A signature header is missing, or the nonce is malformed.' },
  AUTH_UNKNOWN_MERCHANT: { statuses: [401], when: 'No active merchant has this id.' },
  AUTH_STALE_TIMESTAMP: { statuses: [401], when: `The timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s from the server's clock.` },
  AUTH_BAD_SIGNATURE: { statuses: [401], when: 'The signature does not match the request.' },
  AUTH_REPLAYED_NONCE: { statuses: [401], when: 'The nonce was used before.' },
  OPS_UNAUTHORIZED: {
    statuses: [401],
    when: 'An /ops request without `Authorization: Bearer <OPS_TOKEN>`, with another token, or to a server where OPS_TOKEN is not set.',
  },
  SESSION_REQUIRED: { statuses: [401], when: 'A /console/api request without a console session: no durapay_console cookie, or one no session has.' },
  SESSION_EXPIRED: {
    statuses: [401],
    when: 'The console session ended: CONSOLE_SESSION_IDLE without a request, or CONSOLE_SESSION_MAX after its login. Log in again.',
  },
  LOGIN_FAILED: { statuses: [401], when: 'A console login with an unknown e-mail address, a wrong password or a disabled login: the same answer for each.' },
  CSRF_TOKEN_INVALID: {
    statuses: [403],
    when: "A console change (any method but GET and HEAD) without the session's X-CSRF-Token header, or a login from another Origin; nothing changed.",
  },
  FORBIDDEN_ROLE: {
    statuses: [403],
    when: "The console login's role may not do this: merchant staff on /console/api/ops, an operator on /console/api/v1, or an order created from the console.",
  },
  NOT_FOUND: { statuses: [404], when: 'No such order, refund, event, webhook endpoint or delivery, reconciliation, Alipay app or route.' },
  ORDER_CONFLICT: { statuses: [409], when: 'The order number exists with another amount, subject, method or payment code.' },
  ORDER_CLOSED: { statuses: [409], when: 'The order is closed and never reopened; details is the order. Use a new order number.' },
  NOT_CANCELLABLE: { statuses: [409], when: 'The order is paid (or otherwise not open); details is the order.' },
  REFUND_CONFLICT: { statuses: [409], when: 'The refund number exists with another amount.' },
  REFUND_EXCEEDS_REFUNDABLE: { statuses: [409], when: 'More than is left to refund; details.refundable says how much is.' },
  NOT_REFUNDABLE: { statuses: [409], when: 'The order is not paid; details.status is its status.' },
  NO_NOTIFY_URL: { statuses: [409], when: "The event's order has no notifyUrl, so there is nowhere to send it." },
  ENDPOINT_LIMIT: { statuses: [409], when: 'The merchant already has the most webhook endpoints it may (16); delete one first.' },
  ENDPOINT_DISABLED: { statuses: [409], when: 'A test or a resend to a webhook endpoint that is disabled; enable it first.' },
  RECONCILIATION_RUNNING: { statuses: [409], when: 'A rerun was asked for while a reconciliation of that day is running.' },
  NOT_WAITING: { statuses: [409], when: 'Query now, for an order that no longer waits for a payment; details is the order.' },
  NOT_IN_REVIEW: { statuses: [409], when: 'A review resolution, for an order that is not in REVIEW; details is the order.' },
  RESOLUTION_REFUSED: {
    statuses: [409],
    when: 'A resolution as CLOSED whose refund of the money Alipay holds was refused; the order stays in REVIEW, its reason says why; details is the order.',
  },
  RATE_LIMITED: { statuses: [429], when: 'Too many requests; see Retry-After and details.' },
  TOO_MANY_LOGIN_ATTEMPTS: {
    statuses: [429],
    when: 'More than 5 failed console logins for one e-mail address or from one client address within 15 minutes; see Retry-After. The right password is refused too until then.',
  },
  TOO_MANY_STREAMS: {
    statuses: [429],
    when: "Too many open status streams of the buyer's page, per order (CASHIER_STREAMS_PER_TOKEN) or per client address (CASHIER_STREAMS_PER_ADDRESS); details says which.",
  },
  INTERNAL: { statuses: [500], when: 'A bug; never part of a documented answer.' },
  PRECREATE_FAILED: { statuses: [502], when: 'Alipay did not issue a QR code; details is the order, whose reason says why.' },
  TRY_AGAIN: { statuses: [503], when: 'PostgreSQL or the workflow did not answer in time; the same request can be retried safely.' },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];
