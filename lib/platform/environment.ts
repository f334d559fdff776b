// Reading the environment: a variable, or a secret from NAME or from the file NAME_FILE names, and
// the error a bad value stops a process with. Shared by the configuration (lib/platform/config.ts)
// and the parsers of what some of its variables hold (lib/alipay/credentials.ts,
// lib/platform/temporal-connection.ts), which import nothing of the configuration itself.
import { readFileSync } from 'node:fs';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Env = Record<string, string | undefined>;

/** The secrets: each is read from NAME, or from the file NAME_FILE names. */
export const SECRET_VARIABLES = [
  'ALIPAY_PRIVATE_KEY',
  'ALIPAY_PUBLIC_KEY',
  'ALIPAY_APP_CERT',
  'ALIPAY_PUBLIC_CERT',
  'ALIPAY_ROOT_CERT',
  'OPS_TOKEN',
  'DURAPAY_MASTER_KEY',
  'DURAPAY_API_KEYS',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_CA',
  'TEMPORAL_API_KEY',
] as const;
export type SecretVariable = (typeof SECRET_VARIABLES)[number];

/** Reads NAME, or the file named by NAME_FILE (the usual way to hand secrets to containers). */
export function readSecret(env: Env, name: SecretVariable): string | undefined {
  const fileName = env[`${name}_FILE`];
  if (fileName) {
    try {
      return readFileSync(fileName, 'utf8');
    } catch (err) {
      throw new ConfigError(`${name}_FILE: cannot read ${fileName}: ${(err as Error).message}`);
    }
  }
  return env[name];
}

/** Whether NAME or NAME_FILE is set, without reading the file. */
export function isGiven(env: Env, name: SecretVariable): boolean {
  return Boolean(env[name]?.trim() || env[`${name}_FILE`]?.trim());
}

export function requireSecret(env: Env, name: SecretVariable): string {
  const value = readSecret(env, name);
  if (!value?.trim()) throw new ConfigError(`${name}: required (or ${name}_FILE naming a file that holds it)`);
  return value;
}
