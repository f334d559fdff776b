// Serves the app on a port and closes it gracefully.
import { createServer } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ApiConfig } from '../lib/platform/config.js';
import { createPool } from '../lib/platform/database.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { temporalClientInterceptors } from '../lib/platform/tracing.js';
import { createApp } from './app.js';
import { PgNotifications } from './pg-notifications.js';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

/** The URL a browser on this machine opens for a listen address (0.0.0.0 and :: are every address). */
function listenUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

export async function startApiServer(config: ApiConfig, logger: Logger, host = '127.0.0.1'): Promise<RunningApi> {
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
  const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: temporalClientInterceptors() });
  const pool = createPool(config.databaseUrl, config.databaseTimeouts);
  // Merchant changes and blocked addresses, announced by PostgreSQL to every API process.
  const notifications = new PgNotifications(config.databaseUrl, logger, config.databaseTimeouts.connectTimeoutMs);
  await notifications.start();
  const server = createServer();
  server.listen(config.port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  // The app is made once the port is known (PORT=0 picks one): cashier links default to it.
  const publicBaseUrl = config.publicBaseUrl ?? listenUrl(host, port);
  server.on('request', createApp({ config, client, pool, logger, publicBaseUrl, notifications }));
  return {
    url: `http://${host}:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // keep-alive sockets would hold close() open
      await closed;
      await connection.close();
      await notifications.close();
      await pool.end();
    },
  };
}
