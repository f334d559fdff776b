// Where `npm start` keeps its state, resolved once here so the tools that read that state (the
// merchant CLI finds the dev merchant's credentials there) look in the same folder.
import { join, resolve } from 'node:path';

/** DURAPAY_DATA_DIR, or .data, relative to the working directory (npm runs scripts from the package root). */
export function resolveDataDir(env: Record<string, string | undefined> = process.env): string {
  return resolve(env.DURAPAY_DATA_DIR ?? '.data');
}

/** The development merchant's credentials, { merchantId, secret, webhookSecret }, written by `npm start`. */
export function devMerchantFile(dataDir: string): string {
  return join(dataDir, 'dev-merchant.json');
}

/** The embedded PostgreSQL's URL, for `npm run merchant` beside a running `npm start` (mode 600). */
export function databaseUrlFile(dataDir: string): string {
  return join(dataDir, 'database-url');
}

/** The /ops bearer token `npm start` generates when OPS_TOKEN is unset, kept for later starts (mode 600). */
export function opsTokenFile(dataDir: string): string {
  return join(dataDir, 'ops-token');
}

/** DURAPAY_MASTER_KEY of the local stack (mode 600): what it sealed must open after a restart. */
export function masterKeyFile(dataDir: string): string {
  return join(dataDir, 'master-key');
}

/** The secret `durapay listen` signs the webhooks it forwards with (whsec_…, mode 600), made on first use. */
export function listenSecretFile(dataDir: string): string {
  return join(dataDir, 'listen-secret');
}

/** The web console's dev logins `npm start` makes, { operator, merchant } with their passwords (mode 600). */
export function consoleLoginsFile(dataDir: string): string {
  return join(dataDir, 'console-logins.json');
}
