// The Alipay apps an engine serves: the one configured by environment (the default, for merchants
// without an app of their own) and those in the alipay_apps table, one per merchant of an ISV or a
// platform. Private keys rest sealed (lib/platform/key-vault.ts); clients are built per app and cached.
import type pg from 'pg';
import type { AlipaySdk } from 'alipay-sdk';
import { createAlipayClient } from './client.js';
import type { AlipayConfig } from '../platform/config.js';
import type { AlipayCredentials, AlipayVerification } from './credentials.js';
import { openSecret, rewrapSecret, sealSecret, type KeyProvider, type SealedSecret } from '../platform/key-vault.js';

/** An app as the worker uses it: everything, the private key in clear, in memory only. */
export type AlipayApp = AlipayConfig;

/** An app as the API uses it: no private key. */
export interface AlipayAppPublic {
  appId: string;
  credentials: AlipayVerification;
  sellerId?: string;
  notifyUrl: string;
}

interface AppRow {
  app_id: string;
  mode: 'key' | 'cert';
  private_key: SealedSecret;
  alipay_public_key: string | null;
  app_cert: string | null;
  alipay_public_cert: string | null;
  alipay_root_cert: string | null;
  seller_id: string | null;
  notify_url: string;
  gateway_url: string;
}

const privateKeyContext = (appId: string) => `alipay_apps:${appId}:private_key`;

function credentialsOf(row: AppRow): AlipayCredentials {
  return row.mode === 'key'
    ? { mode: 'key', alipayPublicKey: row.alipay_public_key! }
    : { mode: 'cert', appCert: row.app_cert!, alipayPublicCert: row.alipay_public_cert!, alipayRootCert: row.alipay_root_cert! };
}

/** Registers or updates an app; its private key is sealed before it leaves this process. */
export async function saveAlipayApp(pool: pg.Pool, vault: KeyProvider, app: AlipayApp): Promise<void> {
  const sealed = await sealSecret(vault, app.privateKey, privateKeyContext(app.appId));
  const c = app.credentials;
  await pool.query(
    `INSERT INTO alipay_apps (app_id, mode, private_key, alipay_public_key, app_cert, alipay_public_cert, alipay_root_cert, seller_id, notify_url, gateway_url)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (app_id) DO UPDATE SET mode = $2, private_key = $3, alipay_public_key = $4, app_cert = $5, alipay_public_cert = $6,
       alipay_root_cert = $7, seller_id = $8, notify_url = $9, gateway_url = $10, updated_at = now()`,
    [
      app.appId,
      c.mode,
      JSON.stringify(sealed),
      c.mode === 'key' ? c.alipayPublicKey : null,
      c.mode === 'cert' ? c.appCert : null,
      c.mode === 'cert' ? c.alipayPublicCert : null,
      c.mode === 'cert' ? c.alipayRootCert : null,
      app.sellerId ?? null,
      app.notifyUrl,
      app.gatewayUrl,
    ],
  );
}

/** Points a merchant to its app; null: back to the configured default. */
export async function assignAlipayApp(pool: pg.Pool, merchantId: string, appId: string | null): Promise<boolean> {
  const { rowCount } = await pool.query('UPDATE merchants SET alipay_app_id = $2 WHERE id = $1', [merchantId, appId]);
  return rowCount === 1;
}

export async function listAlipayAppIds(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ app_id: string }>('SELECT app_id FROM alipay_apps ORDER BY app_id');
  return rows.map((row) => row.app_id);
}

/** Master key rotation: every stored private key's data key re-wrapped under the new key, within
 *  the caller's transaction (the CLI rotates these and the merchant secrets all or nothing). The
 *  ciphertexts themselves do not change. */
export async function rewrapAlipayAppKeys(db: Pick<pg.PoolClient, 'query'>, from: KeyProvider, to: KeyProvider): Promise<number> {
  const { rows } = await db.query<Pick<AppRow, 'app_id' | 'private_key'>>('SELECT app_id, private_key FROM alipay_apps ORDER BY app_id FOR UPDATE');
  for (const row of rows) {
    const rewrapped = await rewrapSecret(from, to, row.private_key);
    await db.query('UPDATE alipay_apps SET private_key = $2, updated_at = now() WHERE app_id = $1', [row.app_id, JSON.stringify(rewrapped)]);
  }
  return rows.length;
}

/** An app looked up again after this long, so `app set` reaches running processes. */
const APP_CACHE_MS = 30_000;

/**
 * The apps, by app id, for one process. The configured app is always there; the others are read
 * from PostgreSQL when first asked for and kept a short while. The worker's directory has a vault
 * and gives signing clients; the API's has none and gives verifiers only.
 */
export class AlipayAppDirectory {
  private readonly cached = new Map<string, { at: number; app: Promise<{ client: AlipaySdk; settings: AlipayAppPublic } | undefined> }>();

  /** `keys`: the worker's vault, to open the apps' private keys; 'verify-only' in the API. An
   *  absent vault (no DURAPAY_MASTER_KEY) leaves the worker with the configured app only. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly configured: { app: AlipayAppPublic; client: AlipaySdk },
    private readonly keys: { vault: KeyProvider | undefined } | 'verify-only',
  ) {}

  get defaultAppId(): string {
    return this.configured.app.appId;
  }

  /** The client for an app: signing in the worker, verifying in the API. Undefined for an unknown app. */
  async client(appId: string = this.defaultAppId): Promise<AlipaySdk | undefined> {
    return (await this.lookup(appId))?.client;
  }

  /** What orders of an app need: its notify URL and seller id. */
  async settings(appId: string = this.defaultAppId): Promise<AlipayAppPublic | undefined> {
    return (await this.lookup(appId))?.settings;
  }

  private lookup(appId: string) {
    if (appId === this.defaultAppId) return Promise.resolve({ client: this.configured.client, settings: this.configured.app });
    const hit = this.cached.get(appId);
    if (hit && Date.now() - hit.at < APP_CACHE_MS) return hit.app;
    const app = this.load(appId);
    this.cached.set(appId, { at: Date.now(), app });
    // Only registered apps are kept, so the cache is no bigger than alipay_apps: an unknown app id
    // (anyone may name one in a notify) or a failed read (PostgreSQL down) is read again next time.
    const forget = () => {
      if (this.cached.get(appId)?.app === app) this.cached.delete(appId);
    };
    app.then((found) => {
      if (!found) forget();
    }, forget);
    return app;
  }

  private async load(appId: string) {
    const { rows } = await this.pool.query<AppRow>('SELECT * FROM alipay_apps WHERE app_id = $1', [appId]);
    const row = rows[0];
    if (!row) return undefined;
    const credentials = credentialsOf(row);
    const settings: AlipayAppPublic = {
      appId,
      credentials: credentials.mode === 'key' ? credentials : { mode: 'cert', alipayPublicCert: credentials.alipayPublicCert, alipayRootCert: credentials.alipayRootCert },
      ...(row.seller_id ? { sellerId: row.seller_id } : {}),
      notifyUrl: row.notify_url,
    };
    let privateKey: string | undefined;
    if (this.keys !== 'verify-only') {
      if (!this.keys.vault) throw new Error(`Alipay app ${appId}'s private key is stored sealed, and this worker has no DURAPAY_MASTER_KEY to open it`);
      privateKey = await openSecret(this.keys.vault, row.private_key, privateKeyContext(appId));
    }
    const client = createAlipayClient({
      appId,
      credentials: privateKey ? credentials : settings.credentials,
      gatewayUrl: row.gateway_url,
      ...(privateKey ? { privateKey } : {}),
    });
    return { client, settings };
  }
}
