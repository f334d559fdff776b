// `npm start`: the whole of durapay on one machine (see local-stack.ts for what is embedded when).
// State lives under DURAPAY_DATA_DIR (default .data/), so a second start sees the same orders.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ConfigError } from '../lib/platform/environment.js';
import { resolveDataDir } from '../lib/platform/data-dir.js';
import { createLogger } from '../lib/platform/logger.js';
import { npmStartWebhookTargets, startLocalStack, type LocalStack } from './local-stack.js';

const dataDir = resolveDataDir();
const lockFile = join(dataDir, 'npm-start.pid');
const logger = createLogger('durapay', process.env.LOG_LEVEL ?? 'info');
const say = (msg: string) => console.log(`[durapay] ${msg}`);
let stack: LocalStack | undefined;

function readFileIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** One `npm start` per data folder: a second would take over the first one's servers. */
function claimDataDir(): void {
  const holder = existsSync(lockFile) ? Number(readFileSync(lockFile, 'utf8')) : undefined;
  const holderCmdline = holder ? readFileIfExists(`/proc/${holder}/cmdline`) : undefined;
  if (holder && holder !== process.pid && holderCmdline?.includes('scripts/start.ts')) {
    throw new ConfigError(
      `durapay is already running from ${dataDir} (pid ${holder}); stop it first, or set DURAPAY_DATA_DIR to another folder`,
    );
  }
  writeFileSync(lockFile, String(process.pid));
}

function printBanner({ urls, simulatorUrl, devMerchant, consoleLogins, ops, postgresDataDir }: LocalStack, webhookTargets: string): void {
  const width = Math.max(...urls.map(([name]) => name.length), 'Webhook targets'.length, 'Console merchant'.length, ...(postgresDataDir ? ['PostgreSQL data'.length] : []));
  const opsToken = ops.file ? `${ops.token}  (kept in ${ops.file})` : `${ops.token.slice(0, 4)}… (OPS_TOKEN)`;
  console.log(
    [
      '',
      'durapay is running',
      ...urls.map(([name, url]) => `  ${name.padEnd(width)}  ${url}`),
      `  ${'Data'.padEnd(width)}  ${dataDir}`,
      // As root with the clone out of the postgres OS user's reach, the cluster lives elsewhere.
      ...(postgresDataDir ? [`  ${'PostgreSQL data'.padEnd(width)}  ${postgresDataDir}`] : []),
      `  ${'Dev merchant'.padEnd(width)}  ${devMerchant.merchantId} (credentials in ${devMerchant.file})`,
      // The secret is shown once, when it is made; it stays in the mode-600 file.
      ...(devMerchant.created ? [`  ${'API secret'.padEnd(width)}  ${devMerchant.secret}  (shown once)`] : []),
      `  ${'Ops token'.padEnd(width)}  ${opsToken}`,
      `  ${'Console'.padEnd(width)}  ${urls[0]![1]}/console`,
      `  ${'Console operator'.padEnd(width)}  ${consoleLogins.operator.email}  ${consoleLogins.operator.password}`,
      `  ${'Console merchant'.padEnd(width)}  ${consoleLogins.merchant.email}  ${consoleLogins.merchant.password}${consoleLogins.file ? `  (kept in ${consoleLogins.file})` : ''}`,
      `  ${'Webhook targets'.padEnd(width)}  ${webhookTargets}`,
      '',
      'Every /v1 request is signed with the merchant secret; the CLI signs as the dev merchant:',
      '  npm run cli -- create --order order-1001 --amount 12.50 --subject "A cup of tea"',
      "Its cashierUrl is the buyer's page: the QR code, a countdown, and the status as it changes.",
      ...(simulatorUrl ? ['Pay it as the buyer (scan and pay in the simulator):', '  npm run cli -- pay order-1001'] : []),
      'See it paid:',
      '  npm run cli -- show order-1001',
      "Reconcile yesterday with Alipay's bill (it also runs every day at RECONCILIATION_TIME, 10:00 Beijing):",
      `  curl -s -X POST ${urls[0]![1]}/ops/reconciliations -H "Authorization: Bearer $(cat ${ops.file ?? '<your OPS_TOKEN>'})" -H 'content-type: application/json' -d '{"date":"'$(TZ=Asia/Shanghai date -d yesterday +%F)'"}'`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

async function main() {
  mkdirSync(dataDir, { recursive: true });
  claimDataDir();
  // The SDK's own chatter (webpack stats, worker states) only from warnings up.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const webhookTargets = npmStartWebhookTargets(process.env);
  const env = { ...process.env, WEBHOOK_PRIVATE_TARGETS: webhookTargets.value };
  stack = await startLocalStack({ dataDir, persistent: true, env, logger, say });
  printBanner(stack, webhookTargets.banner);
}

let stopping = false;
async function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  await stack?.stop();
  rmSync(lockFile, { force: true });
  process.exit(code);
}

// Ctrl-C and `kill` stop everything, in order: the API first, PostgreSQL and Temporal last.
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  void stopAll(1);
});
