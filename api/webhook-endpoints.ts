// The merchant API for webhook endpoints: where the merchant's orders' events go, which events, the
// secret that signs them and its rotation, a test event, and each endpoint's deliveries with a
// resend. Scoped to the calling merchant: another merchant's endpoint is not found. The API writes
// only what the merchant configures (and a test event); deliveries are the worker's.
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import {
  createEndpoint,
  DEFAULT_ROTATION_GRACE_SECONDS,
  deleteEndpoint,
  EndpointLimitReached,
  findEndpoint,
  listEndpoints,
  MAX_ENDPOINTS_PER_MERCHANT,
  MAX_ROTATION_GRACE_SECONDS,
  rotateEndpointSecret,
  updateEndpoint,
  type EndpointEvents,
  type WebhookEndpoint,
} from '../lib/merchants/webhook-endpoints.js';
import type { WebhookPrivateTargets } from '../lib/merchants/webhook-targets.js';
import { PING_EVENT_TYPE, startWebhookPing, wakeWebhookDelivery, WEBHOOK_EVENT_TYPES, type WebhookTarget } from '../lib/merchants/webhooks.js';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import { inTransaction } from '../lib/platform/database.js';
import { HttpError, invalidRequest } from './errors.js';
import { attemptResource, attemptsColumn, eventId, type AttemptRow } from './events.js';
import type { Merchant } from './merchant.js';
import { isWellFormedText, refusePrivateTarget, unknownFields, WELL_FORMED_RULE, webhookUrl } from './payments.js';
import { ENDPOINT_ID_SCHEMA, wholeNumberParam, type webhookDeliverySchema } from './schemas.js';

export interface WebhookEndpointsDeps {
  pool: pg.Pool;
  /** Seals and opens the endpoints' secrets: the merchant-secrets key. */
  merchantSecrets: KeyProvider;
  webhooks: WebhookTarget;
  webhookPrivateTargets: WebhookPrivateTargets;
}

const EVENTS_RULE = `must be a non-empty list of distinct event types (${WEBHOOK_EVENT_TYPES.join(', ')}), or ["*"] for every one`;

export const endpointEvents = z
  .array(z.enum([...WEBHOOK_EVENT_TYPES, '*'], { error: EVENTS_RULE }), { error: EVENTS_RULE })
  .min(1, EVENTS_RULE)
  .max(WEBHOOK_EVENT_TYPES.length, EVENTS_RULE)
  .refine((events) => new Set(events).size === events.length, EVENTS_RULE)
  .refine((events) => !events.includes('*') || events.length === 1, EVENTS_RULE)
  .transform((events) => events as EndpointEvents)
  .meta({ description: 'The event types the endpoint receives, or ["*"] for every one.', examples: [['payment.paid', 'refund.succeeded'], ['*']] });

const DESCRIPTION_RULE = 'must be at most 200 characters, without control characters';
const description = z
  .string({ error: DESCRIPTION_RULE })
  .max(200, DESCRIPTION_RULE)
  .refine((text) => !/[\u0000-\u001f\u007f]/.test(text), DESCRIPTION_RULE)
  .refine(isWellFormedText, WELL_FORMED_RULE)
  .meta({ description: 'A note for the merchant’s own staff.', examples: ['ERP order sync'] });

const endpointUrl = webhookUrl('Where durapay posts the events');

export const createEndpointBody = z.strictObject({ url: endpointUrl, events: endpointEvents, description: description.optional() }, unknownFields).meta({
  id: 'CreateWebhookEndpointRequest',
  examples: [
    { url: 'https://shop.example.com/durapay/webhooks', events: ['payment.paid', 'refund.succeeded'] },
    { url: 'https://erp.example.com/hooks/durapay', events: ['*'], description: 'ERP order sync' },
  ],
});

export const updateEndpointBody = z
  .strictObject(
    {
      url: endpointUrl.optional(),
      events: endpointEvents.optional(),
      description: description.nullable().optional().meta({ description: 'A note for the merchant’s own staff; null removes it.' }),
      enabled: z.boolean({ error: 'must be true or false' }).optional().meta({ description: 'false: no event is sent to it, and what was still due is cancelled.' }),
    },
    unknownFields,
  )
  .refine((body) => Object.keys(body).length > 0, 'must change at least one of url, events, description, enabled')
  .meta({
    id: 'UpdateWebhookEndpointRequest',
    minProperties: 1,
    examples: [{ enabled: false }, { events: ['*'], description: null }, { url: 'https://shop.example.com/durapay/webhooks/v2', enabled: true }],
  });

const GRACE_RULE = `must be a whole number of seconds from 0 to ${MAX_ROTATION_GRACE_SECONDS}`;
export const rotateSecretBody = z.strictObject(
  {
    graceSeconds: z
      .int({ error: GRACE_RULE })
      .min(0, GRACE_RULE)
      .max(MAX_ROTATION_GRACE_SECONDS, GRACE_RULE)
      .optional()
      .meta({ description: `How long the previous secret keeps signing beside the new one; default ${DEFAULT_ROTATION_GRACE_SECONDS} (a day).` }),
  },
  unknownFields,
).meta({ id: 'RotateWebhookSecretRequest', examples: [{ graceSeconds: 3600 }, {}] });

export const deliveriesQuery = z.strictObject(
  { limit: wholeNumberParam(1, 100, 'must be a whole number from 1 to 100', 'How many deliveries, newest first; default 20.').optional() },
  unknownFields,
);

export const endpointParams = z.object({ id: ENDPOINT_ID_SCHEMA });

type DeliveryResource = z.infer<typeof webhookDeliverySchema>;

interface DeliveryRow {
  event_id: string;
  type: string;
  out_trade_no: string | null;
  payment_id: string | null;
  status: DeliveryResource['status'];
  created_at: Date;
  delivered_at: Date | null;
  attempts: AttemptRow[];
}

const DELIVERIES = `
  SELECT d.event_id, e.type, p.out_trade_no, d.payment_id, d.status, d.created_at, d.delivered_at,
    ${attemptsColumn('a.event_id = d.event_id AND a.endpoint_id = d.endpoint_id')}
  FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id LEFT JOIN payments p ON p.id = d.payment_id`;

const deliveryResource = (row: DeliveryRow): DeliveryResource => ({
  eventId: row.event_id,
  type: row.type as DeliveryResource['type'],
  outTradeNo: row.out_trade_no,
  status: row.status,
  createdAt: row.created_at.toISOString(),
  deliveredAt: row.delivered_at?.toISOString() ?? null,
  attempts: row.attempts.map(attemptResource),
});

export function webhookEndpointsRouter({ pool, merchantSecrets, webhooks, webhookPrivateTargets }: WebhookEndpointsDeps): Router {
  const router = Router();

  function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw invalidRequest(parsed.error);
    return parsed.data;
  }

  /** The endpoint in the path, the calling merchant's, or a 404. */
  async function requireEndpoint(merchant: Merchant, id: string | undefined): Promise<WebhookEndpoint> {
    const { id: endpointId } = parse(endpointParams, { id });
    const endpoint = await findEndpoint(pool, merchant.id, endpointId);
    if (!endpoint) throw new HttpError('NOT_FOUND', `no webhook endpoint ${endpointId}`);
    return endpoint;
  }

  const requireEnabled = (endpoint: WebhookEndpoint) => {
    if (!endpoint.enabled) throw new HttpError('ENDPOINT_DISABLED', `webhook endpoint ${endpoint.id} is disabled: enable it first (PATCH enabled: true)`);
  };

  router.post('/webhook-endpoints', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const body = parse(createEndpointBody, req.body ?? {});
    refusePrivateTarget('url', body.url, webhookPrivateTargets);
    try {
      res.status(201).json(await createEndpoint(pool, merchantSecrets, merchant.id, body));
    } catch (err) {
      if (!(err instanceof EndpointLimitReached)) throw err;
      throw new HttpError('ENDPOINT_LIMIT', `a merchant has at most ${MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints: delete one first`);
    }
  });

  router.get('/webhook-endpoints', async (_req, res) => {
    res.json({ endpoints: await listEndpoints(pool, (res.locals.merchant as Merchant).id) });
  });

  router.get('/webhook-endpoints/:id', async (req, res) => {
    res.json(await requireEndpoint(res.locals.merchant as Merchant, req.params.id));
  });

  router.patch('/webhook-endpoints/:id', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const { id } = parse(endpointParams, req.params);
    const body = parse(updateEndpointBody, req.body ?? {});
    refusePrivateTarget('url', body.url, webhookPrivateTargets);
    const updated = await updateEndpoint(pool, merchant.id, id, body);
    if (!updated) throw new HttpError('NOT_FOUND', `no webhook endpoint ${id}`);
    res.json(updated);
  });

  router.delete('/webhook-endpoints/:id', async (req, res) => {
    const { id } = parse(endpointParams, req.params);
    if (!(await deleteEndpoint(pool, (res.locals.merchant as Merchant).id, id))) throw new HttpError('NOT_FOUND', `no webhook endpoint ${id}`);
    res.json({ id, deleted: true });
  });

  router.post('/webhook-endpoints/:id/rotate-secret', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const { id } = parse(endpointParams, req.params);
    const { graceSeconds = DEFAULT_ROTATION_GRACE_SECONDS } = parse(rotateSecretBody, req.body ?? {});
    const rotated = await rotateEndpointSecret(pool, merchantSecrets, merchant.id, id, graceSeconds);
    if (!rotated) throw new HttpError('NOT_FOUND', `no webhook endpoint ${id}`);
    res.json(rotated);
  });

  router.post('/webhook-endpoints/:id/test', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const endpoint = await requireEndpoint(merchant, req.params.id);
    requireEnabled(endpoint);
    const id = `evt_${randomBytes(12).toString('hex')}`;
    await inTransaction(pool, async (db) => {
      await db.query(
        `INSERT INTO webhook_events (id, payment_id, merchant_id, sequence, type, payload, status) VALUES ($1, NULL, $2, 1, $3, $4, 'no_endpoint')`,
        [id, merchant.id, PING_EVENT_TYPE, JSON.stringify({ endpointId: endpoint.id })],
      );
      await db.query(`INSERT INTO webhook_deliveries (endpoint_id, event_id, payment_id, sequence, status) VALUES ($1, $2, NULL, 0, 'pending')`, [endpoint.id, id]);
    });
    await startWebhookPing(webhooks, { eventId: id, endpointId: endpoint.id });
    res.status(202).json({ id, type: PING_EVENT_TYPE });
  });

  router.get('/webhook-endpoints/:id/deliveries', async (req, res) => {
    const endpoint = await requireEndpoint(res.locals.merchant as Merchant, req.params.id);
    const { limit = 20 } = parse(deliveriesQuery, req.query);
    const { rows } = await pool.query<DeliveryRow>(`${DELIVERIES} WHERE d.endpoint_id = $1 ORDER BY d.created_at DESC, d.sequence DESC, d.event_id DESC LIMIT $2`, [
      endpoint.id,
      limit,
    ]);
    res.json({ deliveries: rows.map(deliveryResource) });
  });

  router.post('/webhook-endpoints/:id/deliveries/:eventId/resend', async (req, res) => {
    const endpoint = await requireEndpoint(res.locals.merchant as Merchant, req.params.id);
    const event = parse(eventId, req.params.eventId);
    const { rows } = await pool.query<DeliveryRow>(`${DELIVERIES} WHERE d.endpoint_id = $1 AND d.event_id = $2`, [endpoint.id, event]);
    const delivery = rows[0];
    if (!delivery) throw new HttpError('NOT_FOUND', `webhook endpoint ${endpoint.id} has no delivery of event ${event}`);
    requireEnabled(endpoint);
    // The worker reopens the delivery and sends it, after whatever it is sending that order's
    // endpoint now; a ping is simply sent again.
    if (delivery.payment_id) {
      await wakeWebhookDelivery(webhooks, delivery.payment_id, delivery.event_id, endpoint.id);
    } else {
      await pool.query("UPDATE webhook_deliveries SET status = 'pending' WHERE endpoint_id = $1 AND event_id = $2", [endpoint.id, event]);
      await startWebhookPing(webhooks, { eventId: event, endpointId: endpoint.id });
    }
    res.status(202).json(deliveryResource({ ...delivery, status: 'pending' }));
  });

  return router;
}
