// Merchants in PostgreSQL: who may call /v1, with which secrets. Used by the API (to check
// requests), the worker (to sign webhooks), the merchant CLI, npm start (the dev merchant) and
// tests. Secrets leave this module only to be shown once, at creation or rotation, or opened in
// memory for one use. At rest they are sealed (lib/platform/key-vault.ts) under the merchant-secrets key,
// bound to the merchant and to the secret's purpose: a sealed secret moved to another merchant or
// to the other purpose does not open.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { createPool, inTransaction, migrate } from '../platform/database.js';
import { openSecret, rewrapSecret, sealSecret, type KeyProvider, type SealedSecret } from '../platform/key-vault.js';

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

/** The current and the previous API secret share a purpose (they sign requests), so a rotation moves
 *  the sealed secret from one column to the other without opening it. */
const apiSecretContext = (merchantId: string) => `merchants:${merchantId}:api_secret`;
const webhookSecretContext = (merchantId: string) => `merchants:${merchantId}:webhook_secret`;

/** The sealed column, or (a row from before the sealing migration, sealed at the next start) the clear one. */
async function openColumn(vault: KeyProvider, sealed: SealedSecret | null, clear: string | null, context: string): Promise<string | null> {
  if (sealed) return openSecret(vault, sealed, context);
  return clear;
}

const toRecord = (row: Record<string, any>): MerchantRecord => ({
  id: row.id,
  name: row.name,
  status: row.status,
  createdAt: row.created_at.toISOString(),
});

export async function createMerchant(pool: pg.Pool, vault: KeyProvider, name: string): Promise<NewMerchant> {
  const id = newMerchantId();
  const secret = newSecret('sk');
  const webhookSecret = newSecret('whsec');
  const { rows } = await pool.query(
    'INSERT INTO merchants (id, name, api_secret_sealed, webhook_secret_sealed) VALUES ($1, $2, $3, $4) RETURNING *',
    [id, name, JSON.stringify(await sealSecret(vault, secret, apiSecretContext(id))), JSON.stringify(await sealSecret(vault, webhookSecret, webhookSecretContext(id)))],
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
export async function rotateMerchantSecret(
  pool: pg.Pool,
  vault: KeyProvider,
  id: string,
  graceMs: number,
): Promise<{ secret: string; previousValidUntil: string } | undefined> {
  const secret = newSecret('sk');
  const { rows } = await pool.query(
    `UPDATE merchants SET previous_api_secret_sealed = api_secret_sealed, previous_api_secret = api_secret,
       api_secret_sealed = $2, api_secret = NULL,
       previous_secret_expires_at = now() + $3 * interval '1 millisecond'
     WHERE id = $1 RETURNING previous_secret_expires_at`,
    [id, JSON.stringify(await sealSecret(vault, secret, apiSecretContext(id))), graceMs],
  );
  return rows[0] && { secret, previousValidUntil: rows[0].previous_secret_expires_at.toISOString() };
}

/** The merchant's API secrets, opened in memory: the current one, and the previous one within its grace period. */
export async function findMerchantCredentials(pool: pg.Pool, vault: KeyProvider, id: string): Promise<MerchantCredentials | undefined> {
  const { rows } = await pool.query(
    `SELECT id, status, api_secret, api_secret_sealed, alipay_app_id, xmin::text AS version,
       CASE WHEN previous_secret_expires_at > now() THEN previous_api_secret END AS previous_secret,
       CASE WHEN previous_secret_expires_at > now() THEN previous_api_secret_sealed END AS previous_secret_sealed,
       CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at
     FROM merchants WHERE id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const secrets = [
    await openColumn(vault, row.api_secret_sealed, row.api_secret, apiSecretContext(row.id)),
    await openColumn(vault, row.previous_secret_sealed, row.previous_secret, apiSecretContext(row.id)),
  ].filter((secret): secret is string => Boolean(secret));
  return { id: row.id, status: row.status, secrets, alipayAppId: row.alipay_app_id, previousSecretExpiresAt: row.previous_secret_expires_at, version: row.version };
}

/** The columns a query selects for openWebhookSecret, from `merchants` as `alias`. */
export const webhookSecretColumns = (alias: string) =>
  `${alias}.id AS merchant_id, ${alias}.webhook_secret_sealed, ${alias}.webhook_secret`;

/** The webhook secret of a row selected with webhookSecretColumns, opened in memory. */
export async function openWebhookSecret(
  vault: KeyProvider,
  row: { merchant_id: string; webhook_secret_sealed: SealedSecret | null; webhook_secret: string | null },
): Promise<string> {
  const secret = await openColumn(vault, row.webhook_secret_sealed, row.webhook_secret, webhookSecretContext(row.merchant_id));
  if (!secret) throw new Error(`merchant ${row.merchant_id} has no webhook secret`);
  return secret;
}

export async function findWebhookSecret(pool: pg.Pool, vault: KeyProvider, id: string): Promise<string | undefined> {
  const { rows } = await pool.query(`SELECT ${webhookSecretColumns('m')} FROM merchants m WHERE m.id = $1`, [id]);
  return rows[0] && openWebhookSecret(vault, rows[0]);
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * The migration step SQL cannot take (it has no key): every secret still in a clear column is
 * sealed and the clear column emptied. Run by each process that migrates, after the SQL
 * migrations; idempotent, and safe from several processes at once (the rows are locked).
 */
export async function sealMerchantSecretsAtRest(pool: pg.Pool, vault: KeyProvider): Promise<number> {
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query(
      `SELECT id, api_secret, previous_api_secret, webhook_secret FROM merchants
       WHERE api_secret IS NOT NULL OR previous_api_secret IS NOT NULL OR webhook_secret IS NOT NULL
       ORDER BY id FOR UPDATE`,
    );
    const seal = async (clear: string | null, context: string) => (clear === null ? null : JSON.stringify(await sealSecret(vault, clear, context)));
    for (const row of rows) {
      await db.query(
        `UPDATE merchants SET
           api_secret_sealed = COALESCE($2, api_secret_sealed), api_secret = NULL,
           previous_api_secret_sealed = COALESCE($3, previous_api_secret_sealed), previous_api_secret = NULL,
           webhook_secret_sealed = COALESCE($4, webhook_secret_sealed), webhook_secret = NULL
         WHERE id = $1`,
        [
          row.id,
          await seal(row.api_secret, apiSecretContext(row.id)),
          await seal(row.previous_api_secret, apiSecretContext(row.id)),
          await seal(row.webhook_secret, webhookSecretContext(row.id)),
        ],
      );
    }
    return rows.length;
  });
}

/** Master key rotation: each sealed merchant secret's data key re-wrapped, within the caller's
 *  transaction. The ciphertexts do not change. */
export async function rewrapMerchantSecrets(db: Queryable, from: KeyProvider, to: KeyProvider): Promise<number> {
  const { rows } = await db.query(
    'SELECT id, api_secret_sealed, previous_api_secret_sealed, webhook_secret_sealed FROM merchants ORDER BY id FOR UPDATE',
  );
  const rewrap = async (sealed: SealedSecret | null) => (sealed ? JSON.stringify(await rewrapSecret(from, to, sealed)) : null);
  for (const row of rows) {
    await db.query(
      'UPDATE merchants SET api_secret_sealed = $2, previous_api_secret_sealed = $3, webhook_secret_sealed = $4 WHERE id = $1',
      [row.id, await rewrap(row.api_secret_sealed), await rewrap(row.previous_api_secret_sealed), await rewrap(row.webhook_secret_sealed)],
    );
  }
  return rows.length;
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

/** The migrations, then the step SQL cannot do: merchants' secrets stored in clear before they were
 *  sealed are sealed under the master key's merchant-secrets key. */
export async function migrateSealingMerchantSecrets(databaseUrl: string, merchantSecrets: KeyProvider, log: (msg: string) => void = () => {}): Promise<void> {
  await migrate(databaseUrl, log);
  const pool = createPool(databaseUrl, { connectTimeoutMs: 10_000, statementTimeoutMs: 60_000 }, 1);
  try {
    const sealed = await sealMerchantSecretsAtRest(pool, merchantSecrets);
    if (sealed > 0) log(`sealed the secrets of ${sealed} merchant(s) stored in clear`);
  } finally {
    await pool.end();
  }
}
