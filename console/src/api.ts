// The console's one way to the API: JSON over fetch with the session cookie, the session's CSRF
// token on every change request, and one answer to a lost session wherever it happens.

export interface ConsoleUser {
  id: string;
  email: string;
  role: string;
  merchantId: string | null;
}

export interface Session {
  user: ConsoleUser;
  csrfToken: string;
  expiresAt: string;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const API_BASE = '/console/api';

let csrfToken: string | undefined;
let onUnauthorized: ((code: string) => void) | undefined;

/** The token every POST, PATCH and DELETE carries (from the session's answer). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called on a 401 from any request but the login itself. */
export function setUnauthorizedHandler(handler: ((code: string) => void) | undefined): void {
  onUnauthorized = handler;
}

export async function request<T>(method: string, path: string, body?: unknown, { quiet401 = false } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(`${API_BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: ApiErrorBody } | undefined)?.error;
    const failure = new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? (text || res.statusText), error?.details);
    if (res.status === 401 && !quiet401) onUnauthorized?.(failure.code);
    throw failure;
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: <T>(path: string) => request<T>('DELETE', path),
};

/** A query string of the defined values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// ---- The resources the console reads (api/schemas.ts).

export type PaymentStatus = 'AWAITING_PAYMENT' | 'PAID' | 'PARTIALLY_REFUNDED' | 'REFUNDED' | 'CLOSED' | 'PRECREATE_FAILED' | 'FAILED' | 'REVIEW';
export const PAYMENT_STATUSES: PaymentStatus[] = ['AWAITING_PAYMENT', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'PRECREATE_FAILED', 'FAILED', 'REVIEW'];

export interface Payment {
  outTradeNo: string;
  status: PaymentStatus;
  amount: string;
  subject: string;
  qrCode: string | null;
  expiresAt: string;
  alipayStatus: string | null;
  alipayTradeNo: string | null;
  paidAmount: string | null;
  paidAt: string | null;
  reason: string | null;
  alipaySubCode: string | null;
  refundedAmount: string;
  method: 'qr' | 'barcode';
  authCode: string | null;
  createdAt: string;
  updatedAt: string;
  cashierUrl: string | null;
}

export interface Refund {
  outRequestNo: string;
  amount: string;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  reason: string | null;
  failureReason: string | null;
  alipayFundChange: string | null;
  createdAt: string;
  settledAt: string | null;
}

export interface Attempt {
  attemptedAt: string;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
  delivered: boolean;
  result: string;
}

export interface OrderEvent {
  id: string;
  type: string;
  created: number;
  sequence: number;
  status: 'pending' | 'delivered' | 'failed' | 'no_endpoint';
  deliveredAt: string | null;
  data: Record<string, unknown>;
  attempts: Attempt[];
}

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  previousSecretExpiresAt: string | null;
  secret?: string;
}

export interface WebhookDelivery {
  eventId: string;
  type: string;
  outTradeNo: string | null;
  status: 'pending' | 'delivered' | 'failed' | 'cancelled';
  createdAt: string;
  deliveredAt: string | null;
  attempts: Attempt[];
}

export interface OpsOrder {
  paymentId: string;
  outTradeNo: string | null;
  merchantId: string | null;
  status: PaymentStatus;
  amount: string | null;
  alipayTradeNo: string | null;
  reason: string | null;
  startedAt: string;
  workflowStatus: string | null;
}

export interface TimelineEntry {
  at: string;
  source: 'ledger' | 'webhook' | 'alipay' | 'reconciliation';
  type: string;
  summary: string;
  [key: string]: unknown;
}

export interface TimelineWorkflow {
  workflowId: string;
  kind: string;
  runId: string | null;
  status: string | null;
  historyAvailable: boolean;
  temporalUiUrl: string | null;
}

export interface OpsTimeline {
  paymentId: string;
  outTradeNo: string;
  merchantId: string | null;
  status: PaymentStatus;
  amount: string;
  workflowId: string;
  temporalUiUrl: string | null;
  traceId: string | null;
  historyAvailable: boolean;
  workflows: TimelineWorkflow[];
  entries: TimelineEntry[];
}

export interface AuditEntry {
  id: string | number;
  at: string;
  actor: { id: string; email: string; role: string } | null;
  action: string;
  /** The route's parameters, e.g. { paymentId }. */
  target: Record<string, string> | string | null;
  status: number | null;
  address: string | null;
  requestId: string | null;
  detail: unknown;
}

export interface MerchantSummary {
  id: string;
  name?: string;
  status?: string;
  enabled?: boolean;
  disabled?: boolean;
  disabledAt?: string | null;
  createdAt?: string;
  [key: string]: unknown;
}
