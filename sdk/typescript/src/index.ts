export { Durapay, signingMiddleware } from './client.js';
export type {
  CreatePaymentRequest,
  CreateRefundRequest,
  CreateWebhookEndpointRequest,
  DeletedWebhookEndpoint,
  DurapayOptions,
  EventFeedPage,
  EventFeedQuery,
  EventStreamOptions,
  FetchLike,
  ListPaymentsQuery,
  ListWebhookDeliveriesQuery,
  NewWebhookEndpoint,
  Payment,
  PaymentEvent,
  PaymentList,
  PaymentStatus,
  Refund,
  RotatedWebhookSecret,
  RotateWebhookSecretRequest,
  UpdateWebhookEndpointRequest,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointTest,
} from './client.js';
export {
  AuthenticationError,
  ConflictError,
  DurapayError,
  errorFromResponse,
  InvalidRequestError,
  NotFoundError,
  RateLimitError,
  TryAgainError,
} from './errors.js';
export type { DurapayErrorFields, ErrorCode, KnownErrorCode } from './errors.js';
export { bodySha256, newNonce, requestSignature, signatureHeaders, SIGNATURE_HEADERS, stringToSign } from './signing.js';
export type { RequestToSign } from './signing.js';
export {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  parseWebhookSignatureHeader,
  verifyWebhook,
  WEBHOOK_EVENT_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WebhookSignatureError,
} from './webhooks.js';
export type {
  PaymentEventData,
  PaymentWebhookEvent,
  PaymentWebhookEventType,
  PingWebhookEvent,
  VerifyWebhookOptions,
  WebhookEvent,
  WebhookSignatureFailure,
} from './webhooks.js';
export type { components, operations, paths } from './schema.js';
