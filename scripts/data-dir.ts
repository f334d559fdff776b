// The folder where `npm start` keeps its state, and the files in it other tools read.
import { resolve } from 'node:path';

export const dataDirFromEnv = (env: Record<string, string | undefined> = process.env) => resolve(env.DURAPAY_DATA_DIR ?? '.data');

/** The embedded PostgreSQL's URL, for `npm run merchant` beside a running `npm start` (mode 600). */
export const DATABASE_URL_FILE = 'database-url';
/** `{ merchantId, secret, webhookSecret }` of the dev merchant (mode 600). */
export const DEV_MERCHANT_FILE = 'dev-merchant.json';
