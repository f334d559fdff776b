// Serves the app on a port and closes it gracefully.
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ApiConfig } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { temporalConnectionOptions } from '../lib/temporal-connection.js';
import { createApp } from './app.js';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(config: ApiConfig, logger: Logger, host = '127.0.0.1'): Promise<RunningApi> {
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const pool = createPool(config.databaseUrl, config.databaseTimeouts);
  const app = createApp({ config, client, pool, logger });
  const server = app.listen(config.port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // keep-alive sockets would hold close() open
      await closed;
      await connection.close();
      await pool.end();
    },
  };
}
