// Typed errors: every error answer of the API is {"error": {"code", "message", "details", "requestId"?}}.
import type { components } from './schema.js';

/** The error codes the API documents (from the generated schema). */
export type KnownErrorCode = components['schemas']['Error']['error']['code'];
/** A documented code, or one added to the API after this SDK was generated. */
export type ErrorCode = KnownErrorCode | (string & {});

export interface DurapayErrorFields {
  status: number;
  code: ErrorCode;
  message: string;
  details: unknown;
  /** The answer's Request-Id (from the body, else the header); quote it when asking for help. */
  requestId: string | undefined;
}

/** Any error answer of the API; subclasses by kind. */
export class DurapayError extends Error implements DurapayErrorFields {
  override name = 'DurapayError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly requestId: string | undefined;
  constructor(fields: DurapayErrorFields) {
    super(fields.message);
    this.status = fields.status;
    this.code = fields.code;
    this.details = fields.details;
    this.requestId = fields.requestId;
  }
}

/** 401 AUTH_*: the request was not signed as an active merchant (wrong secret, clock, reused nonce). */
export class AuthenticationError extends DurapayError {
  override name = 'AuthenticationError';
}
/** 400, 413, 415: a field, parameter or body broke its rule; nothing changed. */
export class InvalidRequestError extends DurapayError {
  override name = 'InvalidRequestError';
}
/** 404: no such payment, refund, event or webhook endpoint for this merchant. */
export class NotFoundError extends DurapayError {
  override name = 'NotFoundError';
}
/** 409: the request conflicts with the resource's state (ORDER_CONFLICT, NOT_REFUNDABLE, …). */
export class ConflictError extends DurapayError {
  override name = 'ConflictError';
}
/** 429: too many requests; wait retryAfterSeconds. */
export class RateLimitError extends DurapayError {
  override name = 'RateLimitError';
  constructor(
    fields: DurapayErrorFields,
    /** From the Retry-After header (else the details); undefined when neither says. */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(fields);
  }
}
/** 503 TRY_AGAIN: the engine did not answer in time; the same request can be sent again safely. */
export class TryAgainError extends DurapayError {
  override name = 'TryAgainError';
}

/** The typed error for an error answer (`body` as parsed: JSON when it was, else its text). */
export function errorFromResponse(response: Response, body: unknown): DurapayError {
  const payload = (typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined) as
    | { code?: unknown; message?: unknown; details?: unknown; requestId?: unknown }
    | undefined;
  const status = response.status;
  const code = typeof payload?.code === 'string' ? payload.code : `HTTP_${status}`;
  const message =
    typeof payload?.message === 'string'
      ? payload.message
      : `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  const fields: DurapayErrorFields = {
    status,
    code,
    message,
    details: payload?.details ?? null,
    requestId: typeof payload?.requestId === 'string' ? payload.requestId : (response.headers.get('Request-Id') ?? undefined),
  };
  if (status === 401 || code.startsWith('AUTH_')) return new AuthenticationError(fields);
  if (status === 400 || status === 413 || status === 415) return new InvalidRequestError(fields);
  if (status === 404) return new NotFoundError(fields);
  if (status === 409) return new ConflictError(fields);
  if (status === 429) return new RateLimitError(fields, retryAfter(response, payload?.details));
  if (status === 503) return new TryAgainError(fields);
  return new DurapayError(fields);
}

function retryAfter(response: Response, details: unknown): number | undefined {
  const header = response.headers.get('Retry-After');
  if (header !== null && /^\d+$/.test(header.trim())) return Number(header.trim());
  const fromDetails = (details as { retryAfterSeconds?: unknown } | null | undefined)?.retryAfterSeconds;
  return typeof fromDetails === 'number' ? fromDetails : undefined;
}
