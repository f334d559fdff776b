// The durapay merchant API client: openapi-fetch over the generated paths, with a middleware that
// signs every request over the exact bytes it sends, and methods that return the typed resource
// or throw a typed DurapayError.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import { errorFromResponse } from './errors.js';
import type { components, operations, paths } from './schema.js';
import { signatureHeaders } from './signing.js';
import type { PaymentWebhookEvent } from './webhooks.js';

type Schemas = components['schemas'];
type Json<Op extends keyof operations, Status extends number> = operations[Op]['responses'] extends Record<Status, { content: { 'application/json': infer T } }> ? T : never;

export type Payment = Schemas['Payment'];
export type PaymentStatus = Schemas['PaymentStatus'];
export type CreatePaymentRequest = Schemas['CreatePaymentRequest'];
export type Refund = Schemas['Refund'];
export type CreateRefundRequest = Schemas['CreateRefundRequest'];
/** An order's event and its webhook deliveries, as GET /v1/payments/{outTradeNo}/events lists them. */
export type PaymentEvent = Schemas['Event'];
export type ListPaymentsQuery = NonNullable<operations['listPayments']['parameters']['query']>;
export type PaymentList = Json<'listPayments', 200>;
export type EventFeedQuery = NonNullable<operations['listEvents']['parameters']['query']>;
/** A page of the events feed: events oldest first (typed as webhooks carry them), and the cursor to pass back. */
export interface EventFeedPage {
  events: PaymentWebhookEvent[];
  nextCursor: string;
}
export interface EventStreamOptions {
  /** A cursor from an earlier page, to go on from there; default: events from now on. */
  after?: string;
  limit?: number;
  /** How long each poll waits for an event, 0-30 seconds; default 30. */
  waitSeconds?: number;
  signal?: AbortSignal;
}
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
/** A webhook endpoint as created: with its signing secret, shown this once. */
export type NewWebhookEndpoint = Schemas['NewWebhookEndpoint'];
export type CreateWebhookEndpointRequest = operations['createWebhookEndpoint']['requestBody']['content']['application/json'];
export type UpdateWebhookEndpointRequest = operations['updateWebhookEndpoint']['requestBody']['content']['application/json'];
export type RotateWebhookSecretRequest = NonNullable<operations['rotateWebhookEndpointSecret']['requestBody']>['content']['application/json'];
export type RotatedWebhookSecret = Json<'rotateWebhookEndpointSecret', 200>;
export type DeletedWebhookEndpoint = Json<'deleteWebhookEndpoint', 200>;
export type WebhookEndpointTest = Json<'testWebhookEndpoint', 202>;
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type ListWebhookDeliveriesQuery = NonNullable<operations['listWebhookDeliveries']['parameters']['query']>;

/** The fetch the client calls: the global one by default. */
export type FetchLike = (input: Request) => Promise<Response>;

export interface DurapayOptions {
  /** Where the API is, e.g. https://pay.example.com (a path prefix is kept, and signed). */
  apiUrl: string;
  /** The merchant id, m + 9 lowercase letters or digits. */
  merchantId: string;
  /** The merchant's API secret (never the webhook secret). */
  secret: string;
  /** A fetch of your own (a proxy, a test double); default globalThis.fetch. */
  fetch?: FetchLike;
  /** Headers sent with every request, e.g. a well-formed X-Request-Id. */
  headers?: Record<string, string>;
}

/** The middleware that signs each request: method, path and query as sent, timestamp, a fresh nonce
 *  and the SHA-256 of the body bytes, which it then sends as they were hashed. */
export function signingMiddleware(merchantId: string, secret: string): Middleware {
  return {
    async onRequest({ request }) {
      const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
      const url = new URL(request.url);
      const headers = new Headers(request.headers);
      const signed = signatureHeaders(merchantId, secret, { method: request.method, pathWithQuery: url.pathname + url.search, body });
      for (const [name, value] of Object.entries(signed)) headers.set(name, value);
      // A new request carrying exactly the bytes that were hashed.
      return new Request(url, {
        method: request.method,
        headers,
        body,
        redirect: request.redirect,
        signal: request.signal,
      });
    },
  };
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful answer; a typed DurapayError for any other. */
async function unwrap<T>(pending: Promise<Answer<T>>): Promise<NonNullable<T>> {
  const { data, error, response } = await pending;
  if (!response.ok) throw errorFromResponse(response, error);
  if (data === undefined || data === null) throw errorFromResponse(response, `an empty ${response.status} answer`);
  return data as NonNullable<T>;
}

export class Durapay {
  /** The typed openapi-fetch client, signed like every method here: for routes without a method. */
  readonly api: Client<paths>;

  constructor(options: DurapayOptions) {
    if (!options.apiUrl) throw new TypeError('Durapay: apiUrl is required');
    if (!/^m[a-z0-9]{9}$/.test(options.merchantId ?? '')) throw new TypeError('Durapay: merchantId must be m followed by 9 lowercase letters or digits');
    if (!options.secret) throw new TypeError('Durapay: secret is required');
    const fetchImpl: FetchLike = options.fetch ?? ((request) => globalThis.fetch(request));
    this.api = createClient<paths>({ baseUrl: options.apiUrl.replace(/\/+$/, ''), fetch: fetchImpl, headers: options.headers });
    this.api.use(signingMiddleware(options.merchantId, options.secret));
  }

  readonly payments = {
    /** POST /v1/payments: a QR code to show (or a barcode charge). Idempotent on outTradeNo. */
    create: (body: CreatePaymentRequest): Promise<Payment> => unwrap(this.api.POST('/v1/payments', { body })),
    /** GET /v1/payments/{outTradeNo}. */
    get: (outTradeNo: string): Promise<Payment> => unwrap(this.api.GET('/v1/payments/{outTradeNo}', { params: { path: { outTradeNo } } })),
    /** GET /v1/payments: newest first; pass nextCursor back as cursor for the next page. */
    list: (query: ListPaymentsQuery = {}): Promise<PaymentList> => unwrap(this.api.GET('/v1/payments', { params: { query } })),
    /** POST /v1/payments/{outTradeNo}/cancel: closes an unpaid order. Safe to repeat. */
    cancel: (outTradeNo: string): Promise<Payment> =>
      unwrap(this.api.POST('/v1/payments/{outTradeNo}/cancel', { params: { path: { outTradeNo } } })),
  };

  readonly refunds = {
    /** POST /v1/payments/{outTradeNo}/refunds: idempotent on outRequestNo. */
    create: (outTradeNo: string, body: CreateRefundRequest): Promise<Refund> =>
      unwrap(this.api.POST('/v1/payments/{outTradeNo}/refunds', { params: { path: { outTradeNo } }, body })),
    /** GET /v1/payments/{outTradeNo}/refunds. */
    list: async (outTradeNo: string): Promise<Refund[]> =>
      (await unwrap(this.api.GET('/v1/payments/{outTradeNo}/refunds', { params: { path: { outTradeNo } } }))).refunds,
    /** GET /v1/payments/{outTradeNo}/refunds/{outRequestNo}. */
    get: (outTradeNo: string, outRequestNo: string): Promise<Refund> =>
      unwrap(this.api.GET('/v1/payments/{outTradeNo}/refunds/{outRequestNo}', { params: { path: { outTradeNo, outRequestNo } } })),
  };

  readonly events = {
    /** GET /v1/payments/{outTradeNo}/events: the order's events and their deliveries, oldest first. */
    listForPayment: async (outTradeNo: string): Promise<PaymentEvent[]> =>
      (await unwrap(this.api.GET('/v1/payments/{outTradeNo}/events', { params: { path: { outTradeNo } } }))).events,
    /** POST /v1/events/{id}/resend: one more delivery of the event to its order's notifyUrl. */
    resend: (eventId: string): Promise<PaymentEvent> => unwrap(this.api.POST('/v1/events/{id}/resend', { params: { path: { id: eventId } } })),
    /**
     * GET /v1/events: the feed of every order's events, oldest first. Without `after` it starts now;
     * always pass the page's nextCursor back as `after`. With `waitSeconds` (0-30) the call waits for
     * an event when there is none yet (a long poll).
     */
    list: async (query: EventFeedQuery = {}, options: { signal?: AbortSignal } = {}): Promise<EventFeedPage> => {
      const page = await unwrap(this.api.GET('/v1/events', { params: { query }, signal: options.signal }));
      return { events: page.events as PaymentWebhookEvent[], nextCursor: page.nextCursor };
    },
    /**
     * The feed as an endless stream of events: long polls of `waitSeconds` (default 30), each from the
     * last page's cursor. Ends when `signal` aborts (the pending poll is cancelled; the loop throws the
     * abort reason) or when the consumer breaks out of its for-await loop.
     */
    stream: (options: EventStreamOptions = {}): AsyncGenerator<PaymentWebhookEvent, void, undefined> => this.streamEvents(options),
  };

  readonly webhookEndpoints = {
    /** POST /v1/webhook-endpoints: the endpoint with its secret (whsec_…), shown this once. */
    create: (body: CreateWebhookEndpointRequest): Promise<NewWebhookEndpoint> => unwrap(this.api.POST('/v1/webhook-endpoints', { body })),
    /** GET /v1/webhook-endpoints: oldest first. */
    list: async (): Promise<WebhookEndpoint[]> => (await unwrap(this.api.GET('/v1/webhook-endpoints'))).endpoints,
    /** GET /v1/webhook-endpoints/{id}. */
    get: (id: string): Promise<WebhookEndpoint> => unwrap(this.api.GET('/v1/webhook-endpoints/{id}', { params: { path: { id } } })),
    /** PATCH /v1/webhook-endpoints/{id}: url, events, enabled, description. */
    update: (id: string, body: UpdateWebhookEndpointRequest): Promise<WebhookEndpoint> =>
      unwrap(this.api.PATCH('/v1/webhook-endpoints/{id}', { params: { path: { id } }, body })),
    /** DELETE /v1/webhook-endpoints/{id}. */
    delete: (id: string): Promise<DeletedWebhookEndpoint> => unwrap(this.api.DELETE('/v1/webhook-endpoints/{id}', { params: { path: { id } } })),
    /** POST /v1/webhook-endpoints/{id}/rotate-secret: a new secret; the previous one also signs for graceSeconds (default 86400). */
    rotateSecret: (id: string, body: RotateWebhookSecretRequest = {}): Promise<RotatedWebhookSecret> =>
      unwrap(this.api.POST('/v1/webhook-endpoints/{id}/rotate-secret', { params: { path: { id } }, body })),
    /** POST /v1/webhook-endpoints/{id}/test: sends the endpoint a signed ping event. */
    test: (id: string): Promise<WebhookEndpointTest> => unwrap(this.api.POST('/v1/webhook-endpoints/{id}/test', { params: { path: { id } } })),
    /** GET /v1/webhook-endpoints/{id}/deliveries: newest first, each with its attempts. */
    listDeliveries: async (id: string, query: ListWebhookDeliveriesQuery = {}): Promise<WebhookDelivery[]> =>
      (await unwrap(this.api.GET('/v1/webhook-endpoints/{id}/deliveries', { params: { path: { id }, query } }))).deliveries,
    /** POST /v1/webhook-endpoints/{id}/deliveries/{eventId}/resend: the delivery, pending again. */
    resendDelivery: (id: string, eventId: string): Promise<WebhookDelivery> =>
      unwrap(this.api.POST('/v1/webhook-endpoints/{id}/deliveries/{eventId}/resend', { params: { path: { id, eventId } } })),
  };

  private async *streamEvents({ after, limit, waitSeconds = 30, signal }: EventStreamOptions): AsyncGenerator<PaymentWebhookEvent, void, undefined> {
    let cursor = after;
    for (;;) {
      signal?.throwIfAborted();
      const page = await this.events.list({ after: cursor, limit, waitSeconds }, { signal });
      cursor = page.nextCursor;
      yield* page.events;
    }
  }
}
