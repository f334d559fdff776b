// `npm run merchant -- <command>`: the merchants of this engine, in PostgreSQL (DATABASE_URL, or
// the embedded one of a running `npm start`). Secrets are printed once, when they are made.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPool } from '../lib/db.js';
import { parseDuration } from '../lib/config.js';
import { createMerchant, listMerchants, rotateMerchantSecret, setMerchantStatus } from '../lib/merchants.js';
import { databaseUrlFile, resolveDataDir } from '../lib/data-dir.js';

const USAGE = `usage: npm run merchant -- <command>
  create --name "Tea House"            a new merchant: prints its id, API secret and webhook secret once
  list                                 every merchant, without secrets
  disable <merchantId>                 refuse its requests from now on
  enable <merchantId>                  accept them again
  rotate-secret <merchantId> [--grace 24h]
                                       a new API secret; the old one stays valid for the grace period
                                       (default ${'24h'}; 0s ends it at once)
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

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, grace: { type: 'string', default: '24h' }, help: { type: 'boolean' } },
  });
  const [command, target] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const pool = createPool(databaseUrl(), { connectTimeoutMs: 5_000, statementTimeoutMs: 10_000 }, 1);
  try {
    switch (command) {
      case 'create': {
        const name = values.name?.trim();
        if (!name || name.length > 128) throw new Error('--name is required: 1-128 characters');
        const merchant = await createMerchant(pool, name);
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
        const rotated = await rotateMerchantSecret(pool, target, graceMs);
        if (!rotated) throw new Error(`no merchant ${target}`);
        console.log(JSON.stringify({ merchantId: target, secret: rotated.secret, previousSecretValidUntil: rotated.previousValidUntil }, null, 2));
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
