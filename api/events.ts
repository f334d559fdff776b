// The merchant API for webhooks: an order's events with every delivery attempt to its notifyUrl, a
// resend, and the merchant's feed of events (what `durapay listen` reads, no public URL needed).
// Scoped to the calling merchant: another merchant's order or event is not found.
import { Router } from 'express';
import { z } from 'zod';
import type pg from 'pg';
import { TARGET_REFUSED } from '../lib/merchants/webhook-targets.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { PING_EVENT_TYPE, wakeWebhookDelivery, webhookEventResource, type WebhookTarget } from '../lib/merchants/webhooks.js';
import { HttpError, invalidRequest } from './errors.js';
import { noteOrderParam, type Merchant } from './merchant.js';
import { EVENT_ID_PATTERN, wholeNumberParam } from './schemas.js';
import { unknownFields } from './payments.js';
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

/** The select-list column `attempts`: the attempts `which` picks out, oldest first, as AttemptRow[]. */
export const attemptsColumn = (which: string) => `coalesce(
    (SELECT json_agg(json_build_object('attemptedAt', a.attempted_at, 'statusCode', a.status_code, 'latencyMs', a.latency_ms,
                                       'error', a.error, 'delivered', a.delivered) ORDER BY a.id)
     FROM webhook_attempts a WHERE ${which}), '[]') AS attempts`;

/** An order's events, with the attempts at its notifyUrl. */
const EVENTS_WITH_ATTEMPTS = `
  SELECT e.*, ${attemptsColumn('a.event_id = e.id AND a.endpoint_id IS NULL')}
  FROM webhook_events e JOIN payments p ON p.id = e.payment_id`;

export type AttemptRow = EventRow['attempts'][number];

/** Texts an attempt stores that say nothing about the network the worker runs in. */
const OUR_OWN_WORDS = new Set(['timeout', TARGET_REFUSED, 'unreachable', 'the order has no notifyUrl', 'the attempt did not finish']);

/**
 * How an attempt went, coarsely: delivered, http <status>, timeout, refused or unreachable. The
 * resolver's and the socket's messages (an internal address, a port that is closed) never reach
 * the merchant, including those stored before attempts were recorded this way.
 */
export function attemptResource(a: AttemptRow) {
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

const CURSOR_RULE = 'must be a nextCursor this API gave';
export const feedQuery = z.strictObject(
  {
    after: z
      .string({ error: CURSOR_RULE })
      .regex(/^\d{1,20}\.\d{1,19}$/, CURSOR_RULE)
      .optional()
      .meta({ description: 'The nextCursor of the previous answer; without it the feed starts now, with events written after the call began.' }),
    limit: wholeNumberParam(1, 100, 'must be a whole number from 1 to 100', 'At most this many events; default 100.').optional(),
    waitSeconds: wholeNumberParam(0, 30, 'must be a whole number of seconds from 0 to 30', 'With nothing after the cursor, wait up to this long for an event (a long poll); default 0.').optional(),
  },
  unknownFields,
);

/** How often a long poll looks again while it waits. */
const FEED_POLL_MS = 250;

/**
 * The merchant's events after a cursor (writer transaction id, position), oldest first. Only rows
 * of transactions older than this snapshot's xmin are read: every one of those has finished, so a
 * transaction that commits late never lands behind a cursor already handed out.
 */
const FEED = `
  SELECT id, type, created_at, payload, writer_xid::text AS cursor_xid, position::text AS cursor_position FROM webhook_events
  WHERE merchant_id = $1 AND type <> '${PING_EVENT_TYPE}' AND (writer_xid, position) > ($2::xid8, $3::bigint)
    AND writer_xid < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY writer_xid, position LIMIT $4`;
// (The cursor's parts are selected under other names: an output column named position would be
// what ORDER BY sorts by, as text, and 10 would come before 9.)

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

  router.get('/events', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const query = feedQuery.safeParse(req.query);
    if (!query.success) throw invalidRequest(query.error);
    const { limit = 100, waitSeconds = 0 } = query.data;
    // Now: every transaction older than the snapshot's xmin is over; those still open may add events.
    const start = query.data.after ?? `${(await pool.query('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xid')).rows[0].xid}.0`;
    const [xid, position] = start.split('.');
    const deadline = Date.now() + waitSeconds * 1000;
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    for (;;) {
      const { rows } = await pool.query(FEED, [merchant.id, xid, position, limit]);
      if (rows.length > 0 || Date.now() >= deadline || gone) {
        const last = rows.at(-1);
        res.json({ events: rows.map(webhookEventResource), nextCursor: last ? `${last.cursor_xid}.${last.cursor_position}` : start });
        return;
      }
      await sleep(Math.min(FEED_POLL_MS, deadline - Date.now()));
    }
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
