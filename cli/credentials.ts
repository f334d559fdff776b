// Who the CLI signs as. Each value comes from the first of: its flag, its environment variable,
// the dev merchant file that `npm start` writes. The file is read only when something is missing,
// and its contents never appear in a message.
import { readFileSync } from 'node:fs';
import { devMerchantFile, opsTokenFile, resolveDataDir } from '../lib/platform/data-dir.js';
import { CliError } from './exit.js';

type Env = Record<string, string | undefined>;

interface DevMerchant {
  merchantId?: unknown;
  secret?: unknown;
  webhookSecret?: unknown;
}

function readDevMerchant(file: string): DevMerchant | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as DevMerchant;
  } catch {
    // Reported below without the text: it holds secrets.
  }
  throw new CliError(`${file} is not a JSON object like { "merchantId", "secret", "webhookSecret" }`);
}

/** Resolves named values from flags, then the environment, then the dev merchant file. */
function resolver(env: Env) {
  const file = devMerchantFile(resolveDataDir(env));
  let loaded: { contents: DevMerchant | undefined } | undefined;
  const fromFile = (field: keyof DevMerchant): string | undefined => {
    loaded ??= { contents: readDevMerchant(file) };
    const value = loaded.contents?.[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') throw new CliError(`${file}: "${field}" must be a non-empty string`);
    return value;
  };
  // Empty flags and variables count as unset (shells and compose files often pass NAME=).
  const pick = (flag: string | undefined, variable: string, field: keyof DevMerchant) =>
    flag || env[variable] || fromFile(field);
  return { file, pick };
}

export interface MerchantCredentials {
  merchantId: string;
  secret: string;
}

export function merchantCredentials(flags: { merchant?: string; secret?: string }, env: Env = process.env): MerchantCredentials {
  const { file, pick } = resolver(env);
  const merchantId = pick(flags.merchant, 'DURAPAY_MERCHANT_ID', 'merchantId');
  const secret = pick(flags.secret, 'DURAPAY_MERCHANT_SECRET', 'secret');
  if (!merchantId || !secret) {
    const missing = [!merchantId && 'id', !secret && 'secret'].filter(Boolean).join(' and ');
    throw new CliError(
      `no merchant ${missing}: pass --merchant and --secret, set DURAPAY_MERCHANT_ID and DURAPAY_MERCHANT_SECRET, ` +
        `or run npm start, which writes ${file}`,
    );
  }
  return { merchantId, secret };
}

/** The operators' bearer token: --token, OPS_TOKEN, or the one npm start keeps in its data folder. */
export function opsToken(flag: string | undefined, env: Env = process.env): string {
  if (flag) return flag;
  if (env.OPS_TOKEN) return env.OPS_TOKEN;
  const file = opsTokenFile(resolveDataDir(env));
  let kept = '';
  try {
    kept = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!kept) throw new CliError(`no ops token: pass --token, set OPS_TOKEN, or run npm start, which writes ${file}`);
  return kept;
}

export function webhookSecret(flag: string | undefined, env: Env = process.env): string {
  const { file, pick } = resolver(env);
  const secret = pick(flag, 'DURAPAY_WEBHOOK_SECRET', 'webhookSecret');
  if (!secret) throw new CliError(`no webhook secret: pass --secret, set DURAPAY_WEBHOOK_SECRET, or run npm start, which writes ${file}`);
  return secret;
}
