// The web console's logins, in PostgreSQL (console_users): an operator, who sees every merchant, or
// one merchant's staff (role merchant:<id>). Used by the API (logins), the console-user CLI, npm
// start (the dev logins) and tests. A password is kept only as a scrypt hash that names its own
// parameters (scrypt$N$r$p$<salt>$<hash>), checked in constant time; it is never logged or stored.
import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type pg from 'pg';

export const OPERATOR_ROLE = 'operator';
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;
export const PASSWORD_RULE = `must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`;
export const ROLE_RULE = 'must be operator or merchant:<merchant id>';
export const EMAIL_RULE = 'must be an e-mail address (at most 254 characters)';
const EMAIL_PATTERN = /^[^@\s]+@[^@\s]+$/;
const ROLE_PATTERN = /^(operator|merchant:m[a-z0-9]{9})$/;

/** N = 2^15, r = 8, p = 1: 32 MiB and about 100 ms a hash. */
const SCRYPT = { N: 32_768, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
/** scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is just short of it. */
const maxmemFor = (N: number, r: number) => 256 * N * r;

export type ConsoleRole = 'operator' | `merchant:${string}`;

export interface ConsoleUser {
  id: string;
  email: string;
  role: ConsoleRole;
  /** The merchant of a merchant:<id> role; null for an operator. */
  merchantId: string | null;
  disabled: boolean;
  createdAt: string;
}

export class ConsoleUserError extends Error {
  override name = 'ConsoleUserError';
}

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export const isValidEmail = (email: string) => email.length <= 254 && EMAIL_PATTERN.test(email);
export const isValidRole = (role: string): role is ConsoleRole => ROLE_PATTERN.test(role);
export const passwordProblem = (password: string) =>
  password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH ? PASSWORD_RULE : undefined;

/** scrypt$32768$8$1$<salt base64>$<hash base64>. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const { N, r, p } = SCRYPT;
  const hash = await scryptAsync(password, salt, KEY_BYTES, { N, r, p, maxmem: maxmemFor(N, r) });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether `password` is the one `stored` was made from; false for a stored value it cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  // Parameters within reason, so a tampered row cannot make a login cost minutes or gigabytes.
  if (![N, r, p].every(Number.isInteger) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: maxmemFor(N, r) });
  return timingSafeEqual(actual, expected);
}

/** A hash no password matches, checked when the e-mail address is unknown so that costs the same time. */
let dummyHash: Promise<string> | undefined;
export function unknownUserHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummyHash;
}

/** 24 characters of base64url: 144 random bits. */
export const generatePassword = () => randomBytes(18).toString('base64url');

const toUser = (row: Record<string, any>): ConsoleUser => ({
  id: row.id,
  email: row.email,
  role: row.role,
  merchantId: row.merchant_id ?? null,
  disabled: row.disabled,
  createdAt: row.created_at.toISOString(),
});

export async function createConsoleUser(pool: pg.Pool, input: { email: string; role: string; password: string }): Promise<ConsoleUser> {
  const email = input.email.trim();
  if (!isValidEmail(email)) throw new ConsoleUserError(`email: ${EMAIL_RULE}`);
  if (!isValidRole(input.role)) throw new ConsoleUserError(`role: ${ROLE_RULE}`);
  const problem = passwordProblem(input.password);
  if (problem) throw new ConsoleUserError(`password: ${problem}`);
  const id = `cu_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
  try {
    const { rows } = await pool.query(
      'INSERT INTO console_users (id, email, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING *',
      [id, email, await hashPassword(input.password), input.role],
    );
    return toUser(rows[0]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '23505') throw new ConsoleUserError(`a console user ${email} exists already`);
    if (code === '23503') throw new ConsoleUserError(`role: no merchant ${input.role.slice('merchant:'.length)}`);
    throw err;
  }
}

export async function listConsoleUsers(pool: pg.Pool): Promise<ConsoleUser[]> {
  const { rows } = await pool.query('SELECT * FROM console_users ORDER BY created_at, id');
  return rows.map(toUser);
}

export async function findConsoleUserByEmail(pool: pg.Pool, email: string): Promise<(ConsoleUser & { passwordHash: string }) | undefined> {
  const { rows } = await pool.query('SELECT * FROM console_users WHERE lower(email) = lower($1)', [email.trim()]);
  return rows[0] && { ...toUser(rows[0]), passwordHash: rows[0].password_hash };
}

/** Disabled: its sessions end at once, and it cannot log in. */
export async function setConsoleUserDisabled(pool: pg.Pool, email: string, disabled: boolean): Promise<ConsoleUser | undefined> {
  const { rows } = await pool.query('UPDATE console_users SET disabled = $2 WHERE lower(email) = lower($1) RETURNING *', [email.trim(), disabled]);
  if (rows[0] && disabled) await pool.query('DELETE FROM console_sessions WHERE user_id = $1', [rows[0].id]);
  return rows[0] && toUser(rows[0]);
}

/** A new password; the user's sessions end. */
export async function resetConsoleUserPassword(pool: pg.Pool, email: string, password: string): Promise<ConsoleUser | undefined> {
  const problem = passwordProblem(password);
  if (problem) throw new ConsoleUserError(`password: ${problem}`);
  const { rows } = await pool.query('UPDATE console_users SET password_hash = $2 WHERE lower(email) = lower($1) RETURNING *', [
    email.trim(),
    await hashPassword(password),
  ]);
  if (rows[0]) await pool.query('DELETE FROM console_sessions WHERE user_id = $1', [rows[0].id]);
  return rows[0] && toUser(rows[0]);
}
