// PostgreSQL access shared by the API (reads) and the activities (writes), and the schema
// migrations both apply at start.
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';

// bigint columns hold fen; they stay far below 2^53, so read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (text) => Number(text));

export const MIGRATIONS_DIR = fileURLToPath(new URL('../db/migrations', import.meta.url));

export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max });
  // An idle connection dropped by the server (restart, shutdown) must not crash the process;
  // the pool replaces it, and the next query reports any lasting outage.
  pool.on('error', () => {});
  return pool;
}

/** Applies pending migrations; safe to run from several processes at once (advisory lock). */
export async function migrate(databaseUrl: string, log: (msg: string) => void = () => {}): Promise<void> {
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'schema_migrations',
    log,
  });
}
