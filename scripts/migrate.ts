// `npm run migrate` (in an image: node dist/scripts/migrate.js): brings the database schema to this
// build's, then seals merchants' secrets an older database holds in clear (SQL cannot reach the key).
// A step of its own, run before a new build's API and workers start: they refuse a schema behind them.
import { loadMigrateConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { merchantSecretsVault } from '../lib/platform/key-vault.js';
import { createLogger } from '../lib/platform/logger.js';
import { migrateSealingMerchantSecrets } from '../lib/merchants/accounts.js';

const logger = createLogger('migrate');
try {
  const config = loadMigrateConfig();
  logger.level = config.logLevel;
  const started = Date.now();
  await migrateSealingMerchantSecrets(config.databaseUrl, merchantSecretsVault(config.merchantSecrets), (msg) => logger.info(msg));
  logger.info({ ms: Date.now() - started }, 'database schema is current');
} catch (err) {
  if (err instanceof ConfigError) console.error(err.message);
  else logger.fatal({ err }, 'migration failed');
  process.exitCode = 1;
}
