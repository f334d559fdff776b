// `npm run api`: the API against TEMPORAL_ADDRESS and DATABASE_URL.
import { tracing } from './start-tracing.js';
import { loadApiConfig } from '../lib/platform/config.js';
import { createLogger } from '../lib/platform/logger.js';
import { requireCurrentSchema } from '../lib/platform/database.js';
import { runUntilSignalled } from '../lib/platform/process.js';
import { describeTemporalConnection } from '../lib/platform/temporal-connection.js';
import { startApiServer } from './server.js';

const logger = createLogger('api');
await runUntilSignalled(logger, async () => {
  if (tracing.configError) throw tracing.configError;
  const config = loadApiConfig();
  logger.level = config.logLevel;
  await requireCurrentSchema(config.databaseUrl);
  const api = await startApiServer(config, logger, config.host);
  logger.info({ url: api.url, temporal: describeTemporalConnection(config.temporal) }, 'api listening');
  return async () => {
    await api.close();
    await tracing.shutdown();
  };
});
