// The merchant API for webhooks: an order's events with every delivery attempt, and a resend.
// Scoped to the calling merchant: another merchant's order or event is not found.
import { Router } from 'express';
import { z } from 'zod';
import type pg from 'pg';
import { TARGET_REFUSED } from '../lib/merchants/webhook-targets.js';
import { wakeWebhookDelivery, type WebhookTarget } from '../lib/merchants/webhooks.js';
import { HttpError, invalidRequest } from './errors.js';
import { noteOrderParam, type Merchant } from './merchant.js';
import { EVENT_ID_PATTERN } from './schemas.js';
import { requireOrder } from './payments.js';

export interface EventsDeps {
  pool: pg.Pool;
  webhooks: WebhookTarget;
}

interface EventRow {
  id: string;
  payment_id: string;
  sequence: number;
  type: string;
  payload: unknown;
  created_at: Date;
  status: string;
  delivered_at: Date | null;
  attempts: { attemptedAt: string; statusCode: number | null; latencyMs: number | null; error: string | null; delivered: boolean }[];
}

const EVENTS_WITH_ATTEMPTS = `
  SELECT e.*, coalesce(
    (SELECT json_agg(json_build_object('attemptedAt', a.attempted_at, 'statusCode', a.status_code, 'latencyMs', a.latency_ms,
                                       'error', a.error, 'delivered', a.delivered) ORDER BY a.id)
     FROM webhook_attempts a WHERE a.event_id = e.id), '[]') AS attempts
  FROM webhook_events e JOIN payments p ON p.id = e.payment_id`;

type AttemptRow = EventRow['attempts'][number];

/** Texts an attempt stores that say nothing about the network the worker runs in. */
const OUR_OWN_WORDS = new Set(['timeout', TARGET_REFUSED, 'unreachable', 'the order has no notifyUrl', 'the attempt did not finish']);

/**
 * How an attempt went, coarsely: delivered, http <status>, timeout, refused or unreachable. The
 * resolver's and the socket's messages (an internal address, a port that is closed) never reach
 * the merchant, including those stored before attempts were recorded this way.
 */
function attemptResource(a: AttemptRow) {
  const timedOut = a.error === 'timeout' || a.error?.startsWith('no answer within');
  const result = a.delivered
    ? 'delivered'
    : a.statusCode !== null
      ? `http ${a.statusCode}`
      : timedOut
        ? 'timeout'
        : a.error === TARGET_REFUSED
          ? 'refused'
          : 'unreachable';
  const error = a.delivered
    ? null
    : a.statusCode !== null
      ? `HTTP ${a.statusCode}`
      : timedOut
        ? 'timeout'
        : a.error !== null && OUR_OWN_WORDS.has(a.error)
          ? a.error
          : 'unreachable';
  return { ...a, attemptedAt: new Date(a.attemptedAt).toISOString(), error, result };
}

/** What the merchant's endpoint receives as the body, plus how its delivery went. */
function eventResource(row: EventRow) {
  return {
    id: row.id,
    type: row.type,
    created: Math.floor(row.created_at.getTime() / 1000),
    sequence: row.sequence,
    status: row.status,
    deliveredAt: row.delivered_at?.toISOString() ?? null,
    data: row.payload,
    attempts: row.attempts.map(attemptResource),
  };
}

/** Event ids as the outbox makes them: evt_ and 24 hex digits. */
export const eventId = z.string().regex(EVENT_ID_PATTERN, 'must be an event id: evt_ followed by 24 hex digits');

export function eventsRouter({ pool, webhooks }: EventsDeps): Router {
  const router = Router();
  router.param('outTradeNo', noteOrderParam);

  async function findEvent(merchant: Merchant, id: string): Promise<EventRow | undefined> {
    const { rows } = await pool.query<EventRow>(`${EVENTS_WITH_ATTEMPTS} WHERE e.id = $1 AND p.merchant_id = $2`, [id, merchant.id]);
    return rows[0];
  }

  router.get('/payments/:outTradeNo/events', async (req, res) => {
    const payment = await requireOrder(pool, res.locals.merchant as Merchant, req.params.outTradeNo!);
    const { rows } = await pool.query<EventRow>(`${EVENTS_WITH_ATTEMPTS} WHERE e.payment_id = $1 ORDER BY e.sequence`, [payment.id]);
    res.json({ events: rows.map(eventResource) });
  });

  router.post('/events/:id/resend', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const id = eventId.safeParse(req.params.id);
    if (!id.success) throw invalidRequest(id.error);
    const event = await findEvent(merchant, id.data);
    if (!event) throw new HttpError('NOT_FOUND', `no event ${req.params.id}`);
    if (event.status === 'no_endpoint') {
      throw new HttpError('NO_NOTIFY_URL', `the order of event ${event.id} has no notifyUrl`);
    }
    // The order's delivery workflow sends it again, after whatever it is delivering now.
    await wakeWebhookDelivery(webhooks, event.payment_id, event.id);
    res.status(202).json(eventResource(event));
  });

  return router;
}
