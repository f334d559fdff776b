// `npm run cli -- <command> …` (or `npx durapay …`): the merchant API from a terminal, every request
// signed as the merchant. See COMMANDS for what each command does, and docs/reference/cli.md.
import { parseArgs } from 'node:util';
import { COMMANDS, DEFAULT_API_URL, type Command, type Values } from './commands.js';
import { CliError, EXIT } from './exit.js';
import { cliErrorCode, COMMON_OPTIONS, errJson, outJson } from './kit.js';

const USAGE = `usage: durapay <command> [options]     (in the repository: npx durapay …, or npm run cli -- …)

${Object.values(COMMANDS)
  .map((command) => `  ${command.synopsis}\n      ${command.summary}`)
  .join('\n')}

Every command but webhook-verify and completion calls the API and takes:
  --api <url>         the API's base URL (or DURAPAY_API_URL; default ${DEFAULT_API_URL})
  --merchant <id>     the merchant id (or DURAPAY_MERCHANT_ID)
  --secret <secret>   the merchant's signing secret (or DURAPAY_MERCHANT_SECRET)
Without them, the merchant is the dev merchant npm start writes to <data folder>/dev-merchant.json
(the data folder is DURAPAY_DATA_DIR, or .data). webhook-verify's --secret is the webhook secret
(or DURAPAY_WEBHOOK_SECRET, or the dev merchant's). listen signs with the listen secret
(DURAPAY_LISTEN_SECRET, or <data folder>/listen-secret, made on first use).

Every command takes --json: compact JSON on stdout only (one line per event for listen), and an
error as one {"error": {...}} line on stderr; the exit codes stay the same.

Exit codes: 0 done; 1 the API answered with an error, the webhook does not verify, or the order
cannot be paid here; 2 the API could not be reached (or did not answer); 64 a bad command line or
no credentials.
`;

function parse(name: string, command: Command, args: string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...command.options, ...COMMON_OPTIONS }, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' messages name the option, never its value (which may be a secret).
    throw new CliError(`${name}: ${(error as Error).message.split('\n')[0]}\n  ${command.synopsis}`);
  }
  const { positionals } = parsed;
  // No option is `multiple`: every value is a string or a boolean.
  const values = parsed.values as Values;
  if (!values.help && positionals.length !== command.positionals.length) {
    const wanted = command.positionals.map((p) => `<${p}>`).join(' ') || 'no arguments besides its options';
    throw new CliError(`${name} takes ${wanted}, got ${positionals.length}\n  ${command.synopsis}`);
  }
  return { values, positionals };
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h' || name === '--json') {
    if (argv.includes('--json')) {
      outJson({ commands: Object.fromEntries(Object.entries(COMMANDS).map(([key, command]) => [key, { synopsis: command.synopsis, summary: command.summary }])) });
    } else {
      process.stdout.write(USAGE);
    }
    return EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new CliError(`unknown command "${name}"${json ? '' : `\n\n${USAGE}`}`);
  const { values, positionals } = parse(name, command, args);
  if (values.help) {
    if (values.json) outJson({ command: name, synopsis: command.synopsis, summary: command.summary });
    else process.stdout.write(`usage: durapay ${command.synopsis}\n  ${command.summary}\n`);
    return EXIT.ok;
  }
  return command.run(values, positionals, process.env);
}

// --json is looked for before the command line is parsed: a bad command line is an error too.
const json = process.argv.slice(2).includes('--json');

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
      if (json) errJson({ code: cliErrorCode(error.exitCode), message: error.message });
      else process.stderr.write(`durapay: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      const stack = (error as Error)?.stack ?? String(error);
      if (json) errJson({ code: 'UNEXPECTED', message: String((error as Error)?.message ?? error), stack });
      else process.stderr.write(`durapay: unexpected error: ${stack}\n`);
      process.exitCode = 70;
    }
  },
);
