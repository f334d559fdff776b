// `npm run console-user -- <command>`: the web console's logins, in PostgreSQL (DATABASE_URL, or
// the embedded one of a running `npm start`), as `npm run merchant` keeps merchants. A generated
// password is printed once, when it is made; only its scrypt hash is stored.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPool } from '../lib/platform/database.js';
import { databaseUrlFile, resolveDataDir } from '../lib/platform/data-dir.js';
import {
  ConsoleUserError,
  createConsoleUser,
  generatePassword,
  listConsoleUsers,
  MIN_PASSWORD_LENGTH,
  resetConsoleUserPassword,
  setConsoleUserDisabled,
} from '../lib/console/users.js';

const USAGE = `usage: npm run console-user -- <command>
  create --email <e> --role operator|merchant:<merchantId> [--password-file <f>]
                                       a console login; without --password-file a password is generated
                                       and printed once (at least ${MIN_PASSWORD_LENGTH} characters either way)
  list                                 every console login, without passwords
  disable <email>                      refuse its logins and end its sessions
  enable <email>                       accept its logins again
  reset-password <email> [--password-file <f>]
                                       a new password (generated and printed once without --password-file);
                                       its sessions end
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

/** The file's first line, or a new password (shown once: generated). */
function passwordFrom(file: string | undefined): { password: string; generated: boolean } {
  if (file === undefined) return { password: generatePassword(), generated: true };
  const password = readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '';
  return { password, generated: false };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      role: { type: 'string' },
      'password-file': { type: 'string' },
      help: { type: 'boolean' },
    },
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
        if (!values.email) throw new Error('--email is required');
        if (!values.role) throw new Error('--role is required: operator or merchant:<merchantId>');
        const { password, generated } = passwordFrom(values['password-file']);
        const user = await createConsoleUser(pool, { email: values.email, role: values.role, password });
        console.log(JSON.stringify({ ...user, ...(generated ? { password } : {}) }, null, 2));
        if (generated) console.error('Keep the password now: it is not shown again (reset-password makes a new one).');
        return 0;
      }
      case 'list':
        console.log(JSON.stringify(await listConsoleUsers(pool), null, 2));
        return 0;
      case 'disable':
      case 'enable': {
        if (!target) throw new Error(`${command} needs an e-mail address`);
        const user = await setConsoleUserDisabled(pool, target, command === 'disable');
        if (!user) throw new Error(`no console user ${target}`);
        console.log(JSON.stringify(user, null, 2));
        return 0;
      }
      case 'reset-password': {
        if (!target) throw new Error('reset-password needs an e-mail address');
        const { password, generated } = passwordFrom(values['password-file']);
        const user = await resetConsoleUserPassword(pool, target, password);
        if (!user) throw new Error(`no console user ${target}`);
        console.log(JSON.stringify({ ...user, ...(generated ? { password } : {}) }, null, 2));
        if (generated) console.error('Keep the password now: it is not shown again.');
        return 0;
      }
      default:
        console.error(`unknown command ${command}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConsoleUserError) {
      console.error(err.message);
      return 1;
    }
    throw err;
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
