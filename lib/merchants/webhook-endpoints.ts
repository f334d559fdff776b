// Webhook endpoints a merchant manages (POST /v1/webhook-endpoints …): where its orders' events go,
// which events, and the secret each delivery is signed with. The secret leaves this module only to
// be shown once (at creation or rotation) or opened in memory to sign one delivery. At rest it is
// sealed under the merchant-secrets key, bound to the endpoint: a sealed secret moved to another
// endpoint does not open.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { inTransaction } from '../platform/database.js';
import { openSecret, rewrapSecret, sealSecret, type KeyProvider, type SealedSecret } from '../platform/key-vault.js';
import type { WebhookEventType } from './webhooks.js';

/** What an endpoint listens to: some event types, or every one ("*"). */
export type EndpointEvents = WebhookEventType[] | ['*'];

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: EndpointEvents;
  description: string | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** While the previous secret still signs deliveries beside the new one; null otherwise. */
  previousSecretExpiresAt: string | null;
}

export const ENDPOINT_ID_PATTERN = /^we_[0-9a-f]{24}$/;
/** Endpoints per merchant: enough for every system a merchant runs, few enough to fan out cheaply. */
export const MAX_ENDPOINTS_PER_MERCHANT = 16;
/** The longest grace period a rotation gives the previous secret. */
export const MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 3600;
export const DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600;

const secretContext = (endpointId: string) => `webhook_endpoints:${endpointId}:secret`;
const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

interface EndpointRow {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  previous_secret_expires_at: Date | null;
}

/** The previous secret's expiry only while it still signs. */
const ENDPOINT_COLUMNS = `id, url, events, description, enabled, created_at, updated_at,
  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at`;

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events as EndpointEvents,
    description: row.description,
    enabled: row.enabled,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    previousSecretExpiresAt: row.previous_secret_expires_at?.toISOString() ?? null,
  };
}

export class EndpointLimitReached extends Error {}

/** A new endpoint and its secret, shown this once. Refused past MAX_ENDPOINTS_PER_MERCHANT. */
export async function createEndpoint(
  pool: pg.Pool,
  vault: KeyProvider,
  merchantId: string,
  fields: { url: string; events: EndpointEvents; description?: string },
): Promise<WebhookEndpoint & { secret: string }> {
  const id = `we_${randomBytes(12).toString('hex')}`;
  const secret = newSecret();
  const sealed = JSON.stringify(await sealSecret(vault, secret, secretContext(id)));
  // The count and the insert under the merchant's row lock: two creates at once cannot both take the last place.
  const row = await inTransaction(pool, async (db) => {
    await db.query('SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE', [merchantId]);
    const { rows } = await db.query<EndpointRow>(
      `INSERT INTO webhook_endpoints (id, merchant_id, url, events, description, secret_sealed)
       SELECT $1, $2, $3, $4, $5, $6
       WHERE (SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $2 AND deleted_at IS NULL) < $7
       RETURNING ${ENDPOINT_COLUMNS}`,
      [id, merchantId, fields.url, fields.events, fields.description ?? null, sealed, MAX_ENDPOINTS_PER_MERCHANT],
    );
    return rows[0];
  });
  if (!row) throw new EndpointLimitReached();
  return { ...toEndpoint(row), secret };
}

export async function listEndpoints(pool: pg.Pool, merchantId: string): Promise<WebhookEndpoint[]> {
  const { rows } = await pool.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`,
    [merchantId],
  );
  return rows.map(toEndpoint);
}

export async function findEndpoint(pool: pg.Pool, merchantId: string, id: string): Promise<WebhookEndpoint | undefined> {
  const { rows } = await pool.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL`,
    [id, merchantId],
  );
  return rows[0] && toEndpoint(rows[0]);
}

export async function updateEndpoint(
  pool: pg.Pool,
  merchantId: string,
  id: string,
  fields: { url?: string; events?: EndpointEvents; description?: string | null; enabled?: boolean },
): Promise<WebhookEndpoint | undefined> {
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query<EndpointRow>(
      `UPDATE webhook_endpoints SET
         url = COALESCE($3, url), events = COALESCE($4, events),
         description = CASE WHEN $5 THEN $6 ELSE description END,
         enabled = COALESCE($7, enabled), updated_at = now()
       WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL RETURNING ${ENDPOINT_COLUMNS}`,
      [id, merchantId, fields.url ?? null, fields.events ?? null, fields.description !== undefined, fields.description ?? null, fields.enabled ?? null],
    );
    // What a disabled endpoint was still due is not sent when it is enabled again, as with a deleted one.
    if (rows[0] && fields.enabled === false) await cancelPendingDeliveries(db, id);
    return rows[0] && toEndpoint(rows[0]);
  });
}

/** Deleted for the merchant; its deliveries' history stays, and what was pending is cancelled. */
export async function deleteEndpoint(pool: pg.Pool, merchantId: string, id: string): Promise<boolean> {
  return inTransaction(pool, async (db) => {
    const { rowCount } = await db.query(
      'UPDATE webhook_endpoints SET deleted_at = now(), enabled = false, updated_at = now() WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL',
      [id, merchantId],
    );
    if (rowCount) await cancelPendingDeliveries(db, id);
    return Boolean(rowCount);
  });
}

async function cancelPendingDeliveries(db: Pick<pg.PoolClient, 'query'>, endpointId: string): Promise<void> {
  await db.query("UPDATE webhook_deliveries SET status = 'cancelled' WHERE endpoint_id = $1 AND status = 'pending'", [endpointId]);
}

/** A new secret; the previous one keeps signing beside it for `graceSeconds` (0: stops at once). */
export async function rotateEndpointSecret(
  pool: pg.Pool,
  vault: KeyProvider,
  merchantId: string,
  id: string,
  graceSeconds: number,
): Promise<{ secret: string; previousSecretExpiresAt: string } | undefined> {
  const secret = newSecret();
  const { rows } = await pool.query(
    `UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, secret_sealed = $3,
       previous_secret_expires_at = now() + $4 * interval '1 second', updated_at = now()
     WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL RETURNING previous_secret_expires_at`,
    [id, merchantId, JSON.stringify(await sealSecret(vault, secret, secretContext(id))), graceSeconds],
  );
  return rows[0] && { secret, previousSecretExpiresAt: rows[0].previous_secret_expires_at.toISOString() };
}

/** Where a delivery goes and the secrets that sign it, new first; undefined when the endpoint no
 *  longer takes deliveries (disabled or deleted). */
export async function endpointTarget(
  db: Pick<pg.Pool, 'query'>,
  vault: KeyProvider,
  id: string,
): Promise<{ url: string; secrets: string[] } | undefined> {
  const { rows } = await db.query(
    `SELECT id, url, secret_sealed, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_sealed END AS previous_secret_sealed
     FROM webhook_endpoints WHERE id = $1 AND enabled AND deleted_at IS NULL`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const sealed: SealedSecret[] = [row.secret_sealed, ...(row.previous_secret_sealed ? [row.previous_secret_sealed] : [])];
  return { url: row.url, secrets: await Promise.all(sealed.map((s) => openSecret(vault, s, secretContext(row.id)))) };
}

/** Master key rotation: each endpoint secret's data key re-wrapped within the caller's transaction. */
export async function rewrapEndpointSecrets(db: Pick<pg.PoolClient, 'query'>, from: KeyProvider, to: KeyProvider): Promise<number> {
  const { rows } = await db.query('SELECT id, secret_sealed, previous_secret_sealed FROM webhook_endpoints ORDER BY id FOR UPDATE');
  for (const row of rows) {
    await db.query('UPDATE webhook_endpoints SET secret_sealed = $2, previous_secret_sealed = $3 WHERE id = $1', [
      row.id,
      JSON.stringify(await rewrapSecret(from, to, row.secret_sealed)),
      row.previous_secret_sealed ? JSON.stringify(await rewrapSecret(from, to, row.previous_secret_sealed)) : null,
    ]);
  }
  return rows.length;
}
