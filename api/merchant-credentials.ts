// Merchants' credentials as lib/merchants/accounts.ts returns them, kept for a few seconds so a signed request
// (or a flood of requests naming one merchant) costs no lookup. A change to a merchant (disabled,
// enabled, secret rotated, Alipay app set) is announced by PostgreSQL to every API process
// (api/pg-notifications.ts), which forgets the merchant at once; while that announcement cannot
// arrive (the listening connection is down), nothing is cached. A rotated secret's grace ends when
// PostgreSQL said it would, never a cache lifetime later.
import type pg from 'pg';
import type { KeyProvider } from '../lib/platform/key-vault.js';
import { findMerchantCredentials, type MerchantCredentials } from '../lib/merchants/accounts.js';
import { CHANNELS, type PgNotifications } from './pg-notifications.js';

/** How long a merchant's credentials are used without asking PostgreSQL again. */
export const CREDENTIALS_TTL_MS = 5_000;
/** Entries kept at most (unknown ids included); the oldest go first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  credentials: MerchantCredentials | undefined;
  expiresAt: number;
}

export class MerchantCredentialCache {
  readonly #entries = new Map<string, Entry>();
  /** Bumped by every change heard and every (re)connection: a lookup begun before is not kept. */
  #generation = 0;

  constructor(
    private readonly pool: pg.Pool,
    /** Opens the merchants' sealed API secrets. */
    private readonly merchantSecrets: KeyProvider,
    private readonly notifications: PgNotifications,
    private readonly ttlMs = CREDENTIALS_TTL_MS,
    private readonly now = () => Date.now(),
  ) {
    notifications.on(CHANNELS.merchantChanged, (id) => {
      this.#generation += 1;
      this.#entries.delete(id);
    });
    notifications.onState(() => {
      this.#generation += 1;
      this.#entries.clear();
    });
  }

  /** The merchant's credentials (undefined: no such merchant), at most a few seconds old. */
  async find(id: string): Promise<MerchantCredentials | undefined> {
    const cached = this.#entries.get(id);
    if (cached && cached.expiresAt > this.now()) return cached.credentials;
    if (cached) this.#entries.delete(id);
    return this.refresh(id);
  }

  /** The merchant's credentials as PostgreSQL has them now, kept for the next find. */
  async refresh(id: string): Promise<MerchantCredentials | undefined> {
    const now = this.now();
    const generation = this.#generation;
    const credentials = await findMerchantCredentials(this.pool, this.merchantSecrets, id);
    if (this.notifications.listening && generation === this.#generation) {
      const graceEnds = credentials?.previousSecretExpiresAt?.getTime() ?? Infinity;
      this.#entries.set(id, { credentials, expiresAt: Math.min(now + this.ttlMs, graceEnds) });
      if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return credentials;
  }
}
