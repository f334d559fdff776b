// The statements over a whole day's rows, shared by the staging thread's job and the comparison.
import type pg from 'pg';
import { inTransaction } from '../../lib/platform/database.js';

/** Bulk statements over a whole day run longer than the pool's per-statement bound. */
export const BULK_STATEMENT_TIMEOUT_MS = 180_000;

/** A statement that may run for the bulk bound, on a connection whose transaction set it. */
export function bulk(db: pg.PoolClient, text: string, values: unknown[] = []) {
  return db.query({ text, values, query_timeout: BULK_STATEMENT_TIMEOUT_MS + 5_000 } as pg.QueryConfig);
}

export async function bulkTransaction<T>(pool: pg.Pool, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (db) => {
    await db.query(`SET LOCAL statement_timeout = ${BULK_STATEMENT_TIMEOUT_MS}`);
    return work(db);
  });
}

