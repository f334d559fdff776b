// `npm run cli -- <command> …`: the merchant API from a terminal, every request signed as the
// merchant. See COMMANDS for what each command does, and the README's "Merchant CLI".
import { parseArgs } from 'node:util';
import { COMMANDS, DEFAULT_API_URL, type Command, type Values } from './commands.js';
import { CliError, EXIT } from './exit.js';

const USAGE = `usage: npm run cli -- <command> [options]

${Object.values(COMMANDS)
  .map((command) => `  ${command.synopsis}\n      ${command.summary}`)
  .join('\n')}

Every command but webhook-verify calls the API and takes:
  --api <url>         the API's base URL (or DURAPAY_API_URL; default ${DEFAULT_API_URL})
  --merchant <id>     the merchant id (or DURAPAY_MERCHANT_ID)
  --secret <secret>   the merchant's signing secret (or DURAPAY_MERCHANT_SECRET)
Without them, the merchant is the dev merchant npm start writes to <data folder>/dev-merchant.json
(the data folder is DURAPAY_DATA_DIR, or .data). webhook-verify's --secret is the webhook secret
(or DURAPAY_WEBHOOK_SECRET, or the dev merchant's).

Exit codes: 0 done; 1 the API answered with an error, or the webhook does not verify;
2 the API could not be reached (or did not answer); 64 a bad command line or no credentials.
`;

function parse(name: string, command: Command, args: string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...command.options, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' messages name the option, never its value (which may be a secret).
    throw new CliError(`${name}: ${(error as Error).message.split('\n')[0]}\n  ${command.synopsis}`);
  }
  const { values, positionals } = parsed;
  if (!values.help && positionals.length !== command.positionals.length) {
    const wanted = command.positionals.map((p) => `<${p}>`).join(' ') || 'no arguments besides its options';
    throw new CliError(`${name} takes ${wanted}, got ${positionals.length}\n  ${command.synopsis}`);
  }
  return { values, positionals };
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new CliError(`unknown command "${name}"\n\n${USAGE}`);
  const { values, positionals } = parse(name, command, args);
  if (values.help) {
    process.stdout.write(`usage: npm run cli -- ${command.synopsis}\n  ${command.summary}\n`);
    return EXIT.ok;
  }
  return command.run(values, positionals, process.env);
}

// A reader that stops early (`… | head`) closes the pipe: the request has been answered, and what
// is left to print has nowhere to go.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? EXIT.ok);
});

// exitCode rather than exit(): what is still being written to a pipe gets written.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CliError) {
      process.stderr.write(`durapay: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`durapay: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 70;
    }
  },
);
