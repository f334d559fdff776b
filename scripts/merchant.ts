// `npm run merchant -- <command>`: the merchants of this engine, in PostgreSQL (DATABASE_URL, or
// the embedded one of a running `npm start`). Secrets are printed once, when they are made.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPool } from '../lib/platform/database.js';
import { parseDuration } from '../lib/platform/config.js';
import { createMerchant, listMerchants, rewrapMerchantSecrets, rotateMerchantSecret, setMerchantStatus } from '../lib/merchants/accounts.js';
import { rewrapEndpointSecrets } from '../lib/merchants/webhook-endpoints.js';
import { assignAlipayApp, rewrapAlipayAppKeys, saveAlipayApp } from '../lib/alipay/apps.js';
import { ALIPAY_APP_ID_PATTERN, ALIPAY_APP_ID_RULE, ALIPAY_GATEWAYS, alipayUrlProblem, parseApiKeysVariable, parseMasterKeyVariable } from '../lib/platform/config.js';
import { parseAlipayAppFiles } from '../lib/alipay/credentials.js';
import { databaseUrlFile, masterKeyFile, resolveDataDir } from '../lib/platform/data-dir.js';
import { MasterKeyProvider, merchantSecretsVault, type KeyProvider } from '../lib/platform/key-vault.js';
import { deriveApiKeys, formatApiKeys, MASTER_KEY_RULE, parseMasterKey } from '../lib/platform/master-key.js';

const USAGE = `usage: npm run merchant -- <command>
  create --name "Tea House"            a new merchant: prints its id, API secret and webhook secret once
                                       (stored sealed; needs DURAPAY_MASTER_KEY or DURAPAY_API_KEYS, as rotate-secret)
  list                                 every merchant, without secrets
  disable <merchantId>                 refuse its requests from now on
  enable <merchantId>                  accept them again
  rotate-secret <merchantId> [--grace 24h]
                                       a new API secret; the old one stays valid for the grace period
                                       (default ${'24h'}; 0s ends it at once)
  app set <merchantId> --app-id <id> --private-key-file <f> --notify-url <url>
          (--alipay-public-key-file <f> | --app-cert-file <f> --alipay-public-cert-file <f> --alipay-root-cert-file <f>)
          [--seller-id 2088…] [--env production|sandbox | --gateway-url <url>]
                                       registers or updates the merchant's own Alipay app (key or certificate
                                       mode) and points the merchant to it; its private key is stored sealed
                                       under DURAPAY_MASTER_KEY
  app unset <merchantId>               back to the configured app
  master-key rotate --new-key-file <f> re-wraps every stored private key and merchant secret under the new master
                                       key (the old one is DURAPAY_MASTER_KEY); then give the worker the new key and
                                       the API the keys derive-api prints for it
  master-key derive-api                prints DURAPAY_API_KEYS, what the API holds instead of DURAPAY_MASTER_KEY
                                       (npm run --silent merchant -- master-key derive-api > secrets/durapay_api_keys)
Uses DATABASE_URL, or the embedded PostgreSQL of a running \`npm start\` (DURAPAY_DATA_DIR or .data).`;

function databaseUrl(): string {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const file = databaseUrlFile(resolveDataDir());
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`DATABASE_URL is not set and ${file} does not exist: start \`npm start\` first, or set DATABASE_URL`);
  }
}

/** DURAPAY_MASTER_KEY (or _FILE), or the one `npm start` keeps in its data folder. */
function masterKey(): Buffer {
  // DURAPAY_MASTER_KEY or _FILE, read and checked as the worker reads it.
  const configured = parseMasterKeyVariable(process.env);
  if (configured) return configured;
  const file = masterKeyFile(resolveDataDir());
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`DURAPAY_MASTER_KEY is not set and ${file} cannot be read: set DURAPAY_MASTER_KEY (or _FILE), or run npm start first`);
  }
  const key = parseMasterKey(text);
  if (!key) throw new Error(`${file}: ${MASTER_KEY_RULE}`);
  return key;
}

const masterKeyVault = () => new MasterKeyProvider(masterKey());

/** What seals merchant secrets: from DURAPAY_API_KEYS (so the CLI works where the API runs) or the master key. */
function merchantSecrets(): KeyProvider {
  const apiKeys = parseApiKeysVariable(process.env) ?? deriveApiKeys(masterKey());
  return merchantSecretsVault(apiKeys.merchantSecrets);
}

const readText = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file, 'utf8'));

/** The app's settings and files, checked as the worker checks its own at start. */
function readAppFiles(values: Record<string, string | boolean | undefined>) {
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const appId = text('app-id');
  if (!appId || !ALIPAY_APP_ID_PATTERN.test(appId)) throw new Error(`--app-id: ${ALIPAY_APP_ID_RULE}`);
  const notifyUrl = text('notify-url');
  if (!notifyUrl) throw new Error('--notify-url is required: the public URL of this engine\'s /alipay/notify');
  const notifyUrlProblem = alipayUrlProblem('notify', notifyUrl);
  if (notifyUrlProblem) throw new Error(`--notify-url: ${notifyUrlProblem}`);
  const sellerId = text('seller-id');
  if (sellerId !== undefined && !/^2088\d{12}$/.test(sellerId)) throw new Error('--seller-id: a seller id is 16 digits starting with 2088');
  const envName = text('env');
  if (envName !== undefined && envName !== 'production' && envName !== 'sandbox') throw new Error('--env: production or sandbox');
  const gatewayUrl = text('gateway-url') ?? ALIPAY_GATEWAYS[envName ?? 'production'];
  // The configuration's own rule, so a registered app's gateway is held to ALIPAY_GATEWAY_URL's.
  const gatewayUrlProblem = alipayUrlProblem('gateway', gatewayUrl);
  if (gatewayUrlProblem) throw new Error(`--gateway-url: ${gatewayUrlProblem}`);
  const keyFile = text('private-key-file');
  if (!keyFile) throw new Error('--private-key-file is required: the app\'s RSA private key');
  const { privateKey, credentials } = parseAlipayAppFiles({
    privateKey: readFileSync(keyFile, 'utf8'),
    alipayPublicKey: readText(text('alipay-public-key-file')),
    appCert: readText(text('app-cert-file')),
    alipayPublicCert: readText(text('alipay-public-cert-file')),
    alipayRootCert: readText(text('alipay-root-cert-file')),
  });
  return { appId, privateKey, credentials, notifyUrl, gatewayUrl, ...(sellerId ? { sellerId } : {}) };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      grace: { type: 'string', default: '24h' },
      'app-id': { type: 'string' },
      'private-key-file': { type: 'string' },
      'alipay-public-key-file': { type: 'string' },
      'app-cert-file': { type: 'string' },
      'alipay-public-cert-file': { type: 'string' },
      'alipay-root-cert-file': { type: 'string' },
      'seller-id': { type: 'string' },
      'notify-url': { type: 'string' },
      env: { type: 'string' },
      'gateway-url': { type: 'string' },
      'new-key-file': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const [command, target, third] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'master-key' && target === 'derive-api') {
    // No database: the keys derive from the master key alone. The line goes to stdout, for a file.
    console.log(formatApiKeys(deriveApiKeys(masterKey())));
    console.error('Give this line to the API as DURAPAY_API_KEYS (or in the file DURAPAY_API_KEYS_FILE names), and remove DURAPAY_MASTER_KEY from it.');
    return 0;
  }
  const pool = createPool(databaseUrl(), { connectTimeoutMs: 5_000, statementTimeoutMs: 10_000 }, 1);
  try {
    switch (command) {
      case 'create': {
        const name = values.name?.trim();
        if (!name || name.length > 128) throw new Error('--name is required: 1-128 characters');
        const merchant = await createMerchant(pool, merchantSecrets(), name);
        console.log(JSON.stringify({ merchantId: merchant.id, name: merchant.name, secret: merchant.secret, webhookSecret: merchant.webhookSecret }, null, 2));
        console.error('Keep both secrets now: they are not shown again (rotate-secret makes a new API secret).');
        return 0;
      }
      case 'list':
        console.log(JSON.stringify(await listMerchants(pool), null, 2));
        return 0;
      case 'disable':
      case 'enable': {
        if (!target) throw new Error(`${command} needs a merchant id`);
        const merchant = await setMerchantStatus(pool, target, command === 'disable' ? 'disabled' : 'active');
        if (!merchant) throw new Error(`no merchant ${target}`);
        console.log(JSON.stringify(merchant, null, 2));
        return 0;
      }
      case 'rotate-secret': {
        if (!target) throw new Error('rotate-secret needs a merchant id');
        const graceMs = parseDuration(values.grace!) ?? (values.grace === '0' ? 0 : undefined);
        if (graceMs === undefined) throw new Error(`--grace ${values.grace}: not a duration like 0s, 30m or 24h`);
        const rotated = await rotateMerchantSecret(pool, merchantSecrets(), target, graceMs);
        if (!rotated) throw new Error(`no merchant ${target}`);
        console.log(JSON.stringify({ merchantId: target, secret: rotated.secret, previousSecretValidUntil: rotated.previousValidUntil }, null, 2));
        return 0;
      }
      case 'app': {
        if (target !== 'set' && target !== 'unset') throw new Error('app needs set or unset');
        if (!third) throw new Error(`app ${target} needs a merchant id`);
        if (target === 'unset') {
          if (!(await assignAlipayApp(pool, third, null))) throw new Error(`no merchant ${third}`);
          console.log(JSON.stringify({ merchantId: third, alipayAppId: null }, null, 2));
          return 0;
        }
        const app = readAppFiles(values);
        await saveAlipayApp(pool, masterKeyVault(), app);
        if (!(await assignAlipayApp(pool, third, app.appId))) throw new Error(`no merchant ${third} (the app ${app.appId} is registered)`);
        const { privateKey: _, ...shown } = app;
        console.log(JSON.stringify({ merchantId: third, alipayApp: { ...shown, credentials: { mode: shown.credentials.mode } } }, null, 2));
        console.error('The private key is stored sealed under DURAPAY_MASTER_KEY. Restart the worker for the app\'s daily reconciliation Schedule.');
        return 0;
      }
      case 'master-key': {
        if (target !== 'rotate') throw new Error('master-key needs rotate or derive-api');
        const file = values['new-key-file'];
        if (!file) throw new Error('--new-key-file is required: a file holding the new key (openssl rand -hex 32)');
        const next = parseMasterKey(readFileSync(file, 'utf8'));
        if (!next) throw new Error(`--new-key-file: ${MASTER_KEY_RULE}`);
        const current = masterKey();
        const [from, to] = [new MasterKeyProvider(current), new MasterKeyProvider(next)];
        if (from.keyId === to.keyId) throw new Error('the new key is the key in use');
        const [secretsFrom, secretsTo] = [current, next].map((key) => merchantSecretsVault(deriveApiKeys(key).merchantSecrets)) as [KeyProvider, KeyProvider];
        // The Alipay keys, the merchant secrets and the webhook endpoints' secrets together, all or nothing.
        const db = await pool.connect();
        let counts: { rewrapped: number; merchantSecretsRewrapped: number; webhookEndpointSecretsRewrapped: number };
        try {
          await db.query('BEGIN');
          counts = {
            rewrapped: await rewrapAlipayAppKeys(db, from, to),
            merchantSecretsRewrapped: await rewrapMerchantSecrets(db, secretsFrom, secretsTo),
            webhookEndpointSecretsRewrapped: await rewrapEndpointSecrets(db, secretsFrom, secretsTo),
          };
          await db.query('COMMIT');
        } catch (err) {
          await db.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          db.release();
        }
        console.log(JSON.stringify({ ...counts, from: from.keyId, to: to.keyId }, null, 2));
        console.error(
          'Now set the new DURAPAY_MASTER_KEY on the worker, give the API the DURAPAY_API_KEYS that master-key derive-api prints with it, and restart both.',
        );
        return 0;
      }
      default:
        console.error(`unknown command ${command}\n${USAGE}`);
        return 2;
    }
  } finally {
    await pool.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error((err as Error).message);
    process.exit(1);
  },
);
