// `npm run api`: the API against TEMPORAL_ADDRESS and DATABASE_URL.
import { loadApiConfig } from '../lib/config.js';
import { migrate } from '../lib/db.js';
import { merchantSecretsVault } from '../lib/key-vault.js';
import { createLogger } from '../lib/logger.js';
import { runUntilSignalled } from '../lib/process.js';
import { describeTemporalConnection } from '../lib/temporal-connection.js';
import { startApiServer } from './server.js';

const logger = createLogger('api');
await runUntilSignalled(logger, async () => {
  const config = loadApiConfig();
  logger.level = config.logLevel;
  await migrate(config.databaseUrl, (msg) => logger.debug(msg), { merchantSecrets: merchantSecretsVault(config.apiKeys.merchantSecrets) });
  const api = await startApiServer(config, logger, config.host);
  logger.info({ url: api.url, temporal: describeTemporalConnection(config.temporal) }, 'api listening');
  return () => api.close();
});
