// An express-rate-limit Store on the API's own PostgreSQL pool, so that every API process counts
// the same minute for a key: one upsert per counted request in rate_limit_counts
// (db/migrations/011_rate_limits.sql), a fixed window from the key's first request, as the
// MemoryStore does. When PostgreSQL does not answer within a moment, the process counts in its
// own memory until PostgreSQL is back: the limits then hold per process, and requests are neither
// refused nor held up by the outage.
import type pg from 'pg';
import type { Logger } from 'pino';
import { MemoryStore, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';

/** After a failure, how long the process counts on its own before it asks PostgreSQL again. */
const OWN_COUNT_FOR_MS = 5_000;
const CLEANUP_EVERY_MS = 60_000;

const INCREMENT = `
INSERT INTO rate_limit_counts AS c (key, hits, resets_at) VALUES ($1, 1, now() + $2 * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN c.resets_at <= now() THEN 1 ELSE c.hits + 1 END,
  resets_at = CASE WHEN c.resets_at <= now() THEN EXCLUDED.resets_at ELSE c.resets_at END
RETURNING hits, extract(epoch FROM resets_at - now()) * 1000 AS remaining_ms`;

export class PostgresRateLimitStore implements Store {
  readonly localKeys = false;
  #windowMs = 60_000;
  readonly #fallback = new MemoryStore();
  #ownCountUntil = 0;
  #lastCleanup = 0;

  constructor(
    private readonly pool: pg.Pool,
    /** Keeps each limit's keys apart in the one table, e.g. "ip/1200/": processes with the same limit share its counts. */
    readonly prefix: string,
    private readonly logger: Logger,
    /** How long a count may take before the process counts on its own (RATE_LIMIT_DB_WAIT). */
    private readonly answerWithinMs = 500,
  ) {}

  init(options: Options): void {
    this.#windowMs = options.windowMs;
    this.#fallback.init(options);
  }

  /** The query, or undefined when PostgreSQL is down or slow (then the process counts on its own). */
  async #ask<T extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<T> | undefined> {
    if (Date.now() < this.#ownCountUntil) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const query = this.pool.query<T>(text, values);
    query.catch(() => {}); // an answer after the deadline is dropped, and so is its error
    try {
      return await Promise.race([
        query,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.answerWithinMs} ms`)), this.answerWithinMs);
        }),
      ]);
    } catch (err) {
      this.#ownCountUntil = Date.now() + OWN_COUNT_FOR_MS;
      this.logger.warn({ err, limit: this.prefix }, 'rate limit: PostgreSQL did not answer; counting in this process for a while');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const result = await this.#ask<{ hits: number; remaining_ms: string | number }>(INCREMENT, [this.prefix + key, this.#windowMs]);
    if (!result) return this.#fallback.increment(key);
    this.#cleanup();
    const row = result.rows[0]!;
    return { totalHits: row.hits, resetTime: new Date(Date.now() + Math.max(0, Number(row.remaining_ms))) };
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const result = await this.#ask<{ hits: number; remaining_ms: string | number }>(
      `SELECT hits, extract(epoch FROM resets_at - now()) * 1000 AS remaining_ms FROM rate_limit_counts WHERE key = $1 AND resets_at > now()`,
      [this.prefix + key],
    );
    if (!result) return this.#fallback.get(key);
    const row = result.rows[0];
    return row && { totalHits: row.hits, resetTime: new Date(Date.now() + Number(row.remaining_ms)) };
  }

  async decrement(key: string): Promise<void> {
    const result = await this.#ask('UPDATE rate_limit_counts SET hits = greatest(hits - 1, 0) WHERE key = $1 AND resets_at > now()', [this.prefix + key]);
    if (!result) await this.#fallback.decrement(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.#ask('DELETE FROM rate_limit_counts WHERE key = $1', [this.prefix + key]);
    await this.#fallback.resetKey(key);
  }

  /** Windows that ended are forgotten, now and then, best effort. */
  #cleanup(): void {
    if (Date.now() - this.#lastCleanup < CLEANUP_EVERY_MS) return;
    this.#lastCleanup = Date.now();
    this.pool.query('DELETE FROM rate_limit_counts WHERE resets_at < now()').catch(() => {});
  }

  shutdown(): void {
    this.#fallback.shutdown();
  }
}
