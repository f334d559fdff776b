// Merchants in PostgreSQL: who may call /v1, with which secrets. Used by the API (to check
// requests), the merchant CLI, npm start (the dev merchant) and tests. Secrets leave this module
// only to be shown once, at creation or rotation.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';

export interface MerchantRecord {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  createdAt: string;
}

/** What the API needs to check a request's signature. */
export interface MerchantCredentials {
  id: string;
  status: 'active' | 'disabled';
  secrets: string[];
  /** The merchant's own Alipay app; null: the configured one. */
  alipayAppId: string | null;
  /** When the previous secret among `secrets` stops being accepted; null when there is none. */
  previousSecretExpiresAt: Date | null;
  /** Changes with every change to the merchant's row (its xmin): see claimNonceIfUnchanged. */
  version: string;
}

export interface NewMerchant extends MerchantRecord {
  secret: string;
  webhookSecret: string;
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** m + 9 lowercase letters and digits: short, so it fits in front of Alipay's out_trade_no. */
function newMerchantId(): string {
  return `m${Array.from(randomBytes(9), (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('')}`;
}

const newSecret = (prefix: string) => `${prefix}_${randomBytes(32).toString('base64url')}`;

const toRecord = (row: Record<string, any>): MerchantRecord => ({
  id: row.id,
  name: row.name,
  status: row.status,
  createdAt: row.created_at.toISOString(),
});

export async function createMerchant(pool: pg.Pool, name: string): Promise<NewMerchant> {
  const secret = newSecret('sk');
  const webhookSecret = newSecret('whsec');
  const { rows } = await pool.query(
    'INSERT INTO merchants (id, name, api_secret, webhook_secret) VALUES ($1, $2, $3, $4) RETURNING *',
    [newMerchantId(), name, secret, webhookSecret],
  );
  return { ...toRecord(rows[0]), secret, webhookSecret };
}

export async function listMerchants(pool: pg.Pool): Promise<MerchantRecord[]> {
  const { rows } = await pool.query('SELECT * FROM merchants ORDER BY created_at, id');
  return rows.map(toRecord);
}

export async function setMerchantStatus(pool: pg.Pool, id: string, status: 'active' | 'disabled'): Promise<MerchantRecord | undefined> {
  const { rows } = await pool.query('UPDATE merchants SET status = $2 WHERE id = $1 RETURNING *', [id, status]);
  return rows[0] && toRecord(rows[0]);
}

/** A new API secret; the old one keeps working for `graceMs`, so callers can switch over. */
export async function rotateMerchantSecret(pool: pg.Pool, id: string, graceMs: number): Promise<{ secret: string; previousValidUntil: string } | undefined> {
  const secret = newSecret('sk');
  const { rows } = await pool.query(
    `UPDATE merchants SET previous_api_secret = api_secret, api_secret = $2,
       previous_secret_expires_at = now() + $3 * interval '1 millisecond'
     WHERE id = $1 RETURNING previous_secret_expires_at`,
    [id, secret, graceMs],
  );
  return rows[0] && { secret, previousValidUntil: rows[0].previous_secret_expires_at.toISOString() };
}

export async function findMerchantCredentials(pool: pg.Pool, id: string): Promise<MerchantCredentials | undefined> {
  const { rows } = await pool.query(
    `SELECT id, status, api_secret, alipay_app_id, xmin::text AS version,
       CASE WHEN previous_secret_expires_at > now() THEN previous_api_secret END AS previous_secret,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at
     FROM merchants WHERE id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    status: row.status,
    secrets: [row.api_secret, row.previous_secret].filter(Boolean),
    alipayAppId: row.alipay_app_id,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    version: row.version,
  };
}

export async function findWebhookSecret(pool: pg.Pool, id: string): Promise<string | undefined> {
  const { rows } = await pool.query('SELECT webhook_secret FROM merchants WHERE id = $1', [id]);
  return rows[0]?.webhook_secret;
}

/** True the first time this merchant uses this nonce within the window; false for a replay. */
export async function claimNonce(pool: pg.Pool, merchantId: string, nonce: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    'INSERT INTO merchant_nonces (merchant_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [merchantId, nonce],
  );
  return rowCount === 1;
}

/**
 * claimNonce, only while the merchant is still at `version` (as its credentials were read): false
 * for a replay, and also when the merchant changed since (disabled, secret rotated), so a request
 * checked against credentials read a moment ago is never accepted after they changed.
 */
export async function claimNonceIfUnchanged(pool: pg.Pool, merchantId: string, nonce: string, version: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `INSERT INTO merchant_nonces (merchant_id, nonce)
     SELECT id, $2 FROM merchants WHERE id = $1 AND xmin::text = $3
     ON CONFLICT DO NOTHING`,
    [merchantId, nonce, version],
  );
  return rowCount === 1;
}

/** Nonces older than the timestamp window can never be replayed (the timestamp check refuses). */
export async function forgetOldNonces(pool: pg.Pool, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await pool.query("DELETE FROM merchant_nonces WHERE seen_at < now() - $1 * interval '1 second'", [olderThanSeconds]);
  return rowCount ?? 0;
}
