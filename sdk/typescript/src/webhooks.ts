// Verifying the webhooks durapay sends. A webhook's body is JSON {"id","type","apiVersion","created","data"};
// its Durapay-Signature header is `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + rawBody)>`,
// with one v1 per live secret during an endpoint's secret rotation (the new one first).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { components } from './schema.js';

type Schemas = components['schemas'];

/** The header durapay signs its webhooks in. */
export const WEBHOOK_SIGNATURE_HEADER = 'Durapay-Signature';
/** The header carrying the event id (the same on every attempt: use it to drop duplicates). */
export const WEBHOOK_EVENT_ID_HEADER = 'Durapay-Event-Id';
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** The events of an order a merchant hears of (the schema's EventType, less the endpoints' ping). */
export type PaymentWebhookEventType = Exclude<Schemas['EventType'], 'ping'>;

/** An order's event's data: the payment as it was (without cashierUrl) and, for refund events, the refund. */
export type PaymentEventData = Omit<Schemas['Payment'], 'cashierUrl'> & { refund?: Schemas['Refund'] };

interface EventEnvelope<Type extends string, Data> {
  /** evt_ + 24 hex; the same on every attempt. */
  id: string;
  type: Type;
  /** The version of the body's shape, e.g. "2026-12-07". */
  apiVersion: string;
  /** Unix seconds. */
  created: number;
  data: Data;
}

/** An order's event, as a webhook carries it and the events feed lists it. */
export type PaymentWebhookEvent = EventEnvelope<PaymentWebhookEventType, PaymentEventData>;
/** The test event of a webhook endpoint (POST /v1/webhook-endpoints/{id}/test). */
export type PingWebhookEvent = EventEnvelope<'ping', { endpointId: string }>;
/** What verifyWebhook returns. */
export type WebhookEvent = PaymentWebhookEvent | PingWebhookEvent;

export type WebhookSignatureFailure = 'malformed' | 'stale' | 'bad_signature';

/** The webhook cannot be trusted: answer it with a 400 and do nothing with it. */
export class WebhookSignatureError extends Error {
  override readonly name = 'WebhookSignatureError';
  constructor(
    /** malformed: no usable header (or a body that is not a JSON event); stale: t is outside the
     *  tolerance; bad_signature: no v1 value matches any of the secrets. */
    readonly reason: WebhookSignatureFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifyWebhookOptions {
  /** How far the header's t may be from now, either way; default 300. */
  toleranceSeconds?: number;
  /** The time to check t against (a Date, or milliseconds since the epoch as Date.now() gives); default now. */
  now?: Date | number;
}

/** The header's t and its v1 values, in order; other schemes (v0=…) and unknown keys are ignored. */
export function parseWebhookSignatureHeader(header: string): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't' && timestamp === undefined && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && value) signatures.push(value);
  }
  return timestamp === undefined || signatures.length === 0 ? undefined : { timestamp, signatures };
}

function v1(secret: string, timestamp: number, rawBody: Uint8Array | string): Buffer {
  const hmac = createHmac('sha256', secret).update(`${timestamp}.`, 'utf8');
  hmac.update(rawBody);
  return Buffer.from(hmac.digest('hex'), 'utf8');
}

/**
 * Checks a webhook and returns its event. `rawBody` must be the bytes received, unparsed (a Buffer
 * from express.raw() or the request stream; a string is taken as its UTF-8 bytes). `secrets`: the
 * endpoint's secret, or several (e.g. the new and the previous during a rotation): the webhook is
 * genuine when ANY v1 value of the header equals, in constant time, the signature under ANY secret.
 * Throws WebhookSignatureError otherwise.
 */
export function verifyWebhook(
  secrets: string | readonly string[],
  rawBody: Uint8Array | string,
  signatureHeader: string | readonly string[] | null | undefined,
  { toleranceSeconds = DEFAULT_WEBHOOK_TOLERANCE_SECONDS, now = Date.now() }: VerifyWebhookOptions = {},
): WebhookEvent {
  const keys = typeof secrets === 'string' ? [secrets] : [...secrets];
  if (keys.length === 0 || keys.some((key) => typeof key !== 'string' || key.length === 0)) {
    throw new TypeError('verifyWebhook needs at least one non-empty webhook secret');
  }
  const header = Array.isArray(signatureHeader) ? (signatureHeader.length === 1 ? signatureHeader[0] : undefined) : signatureHeader;
  if (typeof header !== 'string' || header.length === 0) {
    throw new WebhookSignatureError('malformed', `no ${WEBHOOK_SIGNATURE_HEADER} header (or more than one)`);
  }
  const parsed = parseWebhookSignatureHeader(header);
  if (!parsed) throw new WebhookSignatureError('malformed', `${WEBHOOK_SIGNATURE_HEADER} has no t= or no v1= value`);
  const nowSeconds = (typeof now === 'number' ? now : now.getTime()) / 1000;
  if (Math.abs(nowSeconds - parsed.timestamp) > toleranceSeconds) {
    throw new WebhookSignatureError('stale', `the signature's timestamp is more than ${toleranceSeconds} s from now`);
  }
  const given = parsed.signatures.map((value) => Buffer.from(value, 'utf8'));
  let matched = false;
  for (const key of keys) {
    const expected = v1(key, parsed.timestamp, rawBody);
    for (const value of given) {
      // Every comparison runs, in constant time for equal lengths: no early exit tells which matched.
      if (value.length === expected.length && timingSafeEqual(value, expected)) matched = true;
    }
  }
  if (!matched) throw new WebhookSignatureError('bad_signature', 'no v1 signature matches the webhook secret(s)');
  let event: unknown;
  try {
    event = JSON.parse(typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength).toString('utf8'));
  } catch {
    throw new WebhookSignatureError('malformed', 'the body is not JSON');
  }
  if (!isEvent(event)) throw new WebhookSignatureError('malformed', 'the body is not a durapay event');
  return event;
}

function isEvent(value: unknown): value is WebhookEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  return typeof event.id === 'string' && typeof event.type === 'string' && typeof event.created === 'number' && typeof event.data === 'object' && event.data !== null;
}
