// PostgreSQL access shared by the API (reads) and the activities (writes), the schema migrations
// (`npm run migrate`, a step of its own) and the check the API and the worker make at start.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type PgModule from 'pg';
import type { Pool, PoolClient } from 'pg';
import { runner } from 'node-pg-migrate';
import { ConfigError } from './environment.js';

// Through require, so that tracing's pg instrumentation, started first, sees it load (ES imports
// of CommonJS packages pass its hooks by).
const pg = createRequire(import.meta.url)('pg') as typeof PgModule;

// bigint columns hold fen; they stay far below 2^53, so read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (text) => Number(text));

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../db/migrations', import.meta.url));

export interface DatabaseTimeouts {
  /** Getting a connection: opening a new one, or waiting for a free one in a full pool. */
  connectTimeoutMs: number;
  /** PostgreSQL's statement_timeout: the server cancels a statement that runs longer. */
  statementTimeoutMs: number;
}

/**
 * How much longer than statement_timeout the client waits for an answer before it gives up on a
 * server that says nothing at all (hung, black-holed): a live server's own cancel arrives first.
 */
const QUERY_TIMEOUT_MARGIN_MS = 1_000;

/** Every call through the pool is bounded by `timeouts`; nothing waits on PostgreSQL forever. */
export function createPool(databaseUrl: string, timeouts: DatabaseTimeouts, max = 10): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    statement_timeout: timeouts.statementTimeoutMs,
    query_timeout: timeouts.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    // Lets the kernel notice a peer that vanished while a connection sat idle in the pool.
    keepAlive: true,
  });
  // An idle connection dropped by the server (restart, shutdown) must not crash the process;
  // the pool replaces it, and the next query reports any lasting outage.
  pool.on('error', () => {});
  return pool;
}

// pg and pg-pool raise these as plain Errors, without a code.
const UNAVAILABLE_MESSAGES = [
  /^timeout exceeded when trying to connect$/, // pool: no connection free within connectionTimeoutMillis
  /^Connection terminated/, // due to connection timeout, or unexpectedly (server gone)
  /^timeout expired$/, // client: the server did not finish the handshake in time
  /^Query read timeout$/, // query_timeout: the server never answered
  /is not queryable$/, // a client whose connection already failed
];
// Socket errors of a server that cannot be reached.
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EPIPE', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
// SQLSTATEs of a server that cannot serve now, as opposed to a statement that is wrong: connection
// exceptions (08), insufficient resources (53: too many connections, out of memory, disk full),
// shutting down or starting up (57P01-57P03), statement_timeout or lock_timeout reached (57014,
// 55P03), and sessions the server ended for idling (25P03, 57P05).
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[1235]|57014|55P03|25P03)$/;

/**
 * True when an error says PostgreSQL is unreachable, timed out, refusing or overloaded: the same
 * call can succeed later, unchanged. False for errors of the statement itself.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 5) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_ERRNOS.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(err.message))) return true;
  // Node reports a refused connection to every address of a host as one AggregateError.
  const inner = [err.cause, ...(err instanceof AggregateError ? err.errors : [])];
  return inner.some((cause) => isDatabaseUnavailable(cause, depth + 1));
}

// SQLSTATEs of values the schema can never hold, whatever the server's state: data exceptions (22:
// text that is not valid UTF-8, a \u0000 or a lone surrogate in JSON, a number out of range) and
// check violations (23514: an amount that is not positive).
const REFUSED_DATA_SQLSTATE = /^(22...|23514)$/;

/**
 * True when PostgreSQL refused the values a statement carries: the same call is refused again,
 * unchanged, so retrying it can never help.
 */
export function isDataRefused(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return err instanceof Error && typeof code === 'string' && REFUSED_DATA_SQLSTATE.test(code);
}

const MIGRATIONS_TABLE = 'schema_migrations';

/** Applies pending migrations; safe to run from several processes at once (advisory lock). */
export async function migrate(databaseUrl: string, log: (msg: string) => void = () => {}): Promise<void> {
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: MIGRATIONS_TABLE,
    log,
  });
}

/** The migrations this build carries that the database has not applied, oldest first. Read-only. */
export async function pendingMigrations(pool: Pool): Promise<string[]> {
  // node-pg-migrate records a migration by its file name without the extension.
  const carried = (await readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith('.sql')).map((file) => path.basename(file, '.sql')).sort();
  const { rows: table } = await pool.query<{ exists: boolean }>(`SELECT to_regclass('${MIGRATIONS_TABLE}') IS NOT NULL AS exists`);
  const applied = new Set(table[0]?.exists ? (await pool.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map((row) => row.name) : []);
  return carried.filter((name) => !applied.has(name));
}

/** Printed as it is, like a configuration error: the operator has a step to run. */
export class SchemaBehindError extends ConfigError {}

/**
 * The API and the worker start only on a schema at least as new as their build: migrations are a
 * step of their own (`npm run migrate`, a compose job, a Kubernetes Job), run before a new build
 * starts. A newer schema is fine (an older build still draining runs beside a newer one).
 */
export async function requireCurrentSchema(databaseUrl: string): Promise<void> {
  const pool = createPool(databaseUrl, { connectTimeoutMs: 10_000, statementTimeoutMs: 10_000 }, 1);
  const pending = await pendingMigrations(pool).finally(() => pool.end());
  if (pending.length > 0) {
    throw new SchemaBehindError(
      `the database schema is behind this build: ${pending.length} migration(s) not applied (${pending.join(', ')}); run \`npm run migrate\` (in an image: node dist/scripts/migrate.js) first`,
    );
  }
}

/** Bounded by the pool's timeouts: when PostgreSQL is down or stops answering, the attempt fails
 *  within seconds and Temporal retries it; event keys make the retry land once. */
export async function inTransaction<T>(pool: Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  let discard: Error | undefined;
  try {
    await db.query('BEGIN');
    const result = await work(db);
    await db.query('COMMIT');
    return result;
  } catch (err) {
    if (isDatabaseUnavailable(err)) {
      // Not rolled back: a ROLLBACK would queue behind the statement that never answered. The
      // connection is closed instead, and the server rolls back what it held.
      discard = err as Error;
    } else {
      await db.query('ROLLBACK').catch((rollbackErr: Error) => (discard = rollbackErr));
    }
    throw err;
  } finally {
    // A connection in doubt is closed, never handed to the next activity.
    db.release(discard);
  }
}
