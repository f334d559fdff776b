// The engine under test, in a process of its own so the bench never measures itself: whatever
// scripts/local-stack.ts starts (the Temporal dev server on its SQLite file, PostgreSQL, the
// simulator, the worker and the API), on a fresh data folder, with the settings the bench gives.
// Talks to the bench over IPC: 'ready' with what a client needs, 'stop' to stop, 'stopped' at the end.
// Run: node --import tsx bench/stack-process.ts, with BENCH_STACK_OPTIONS (JSON, see StackOptions).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { databaseUrlFile } from '../lib/platform/data-dir.js';
import { createLogger } from '../lib/platform/logger.js';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../scripts/local-stack.js';

export interface StackOptions {
  dataDir: string;
  /** The engine's environment: timings and rate limits (nothing from the bench's own shell). */
  env: Record<string, string>;
  /** The engine's log level; its log goes to this process's stdout, which the bench reads. */
  logLevel: string;
  /** The worker and the API in processes of their own, or in this one; unset: startLocalStack's default. */
  layout?: LocalStackOptions['layout'];
}

/** What the bench needs to drive and measure the stack. Secrets stay on this machine, in memory. */
export interface StackInfo {
  pid: number;
  apiUrl: string;
  simulatorUrl: string;
  temporalAddress: string;
  namespace: string;
  merchantId: string;
  secret: string;
  /** The simulator's registered app and its keys (for the bare precreate), and its "Alipay"
   *  keys (to sign notifies as the simulator signs them). */
  appId: string;
  appPrivateKey: string;
  alipayPublicKey: string;
  alipayPrivateKey: string;
  databaseUrl: string;
  dataDir: string;
}

export type StackMessage =
  | { type: 'ready'; info: StackInfo }
  | { type: 'failed'; message: string }
  | { type: 'log'; message: string }
  | { type: 'stopped' };

const send = (message: StackMessage) => process.send?.(message);
const options = JSON.parse(process.env.BENCH_STACK_OPTIONS ?? '{}') as StackOptions;

// The SDK's own chatter only from warnings up; signals are ours to handle (as in scripts/start.ts).
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

let stack: LocalStack | undefined;
let starting: Promise<unknown> = Promise.resolve();
let stopping: Promise<void> | undefined;

/** orphaned: the bench is gone (killed) and will not remove the data folder, so this does. */
function stopAll(code: number, { orphaned = false } = {}): Promise<void> {
  stopping ??= (async () => {
    await starting.catch(() => {}); // a stop during the start waits for it, then stops what started
    await stack?.stop();
    if (orphaned) rmSync(options.dataDir, { recursive: true, force: true });
    send({ type: 'stopped' });
    process.disconnect?.();
    process.exit(code);
  })();
  return stopping;
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void stopAll(0);
});
// The bench went away without asking: leave nothing behind.
process.on('disconnect', () => void stopAll(0, { orphaned: true }));

async function main(): Promise<void> {
  const start = startLocalStack({
    dataDir: options.dataDir,
    persistent: true,
    env: options.env,
    logger: createLogger('engine', options.logLevel),
    say: (message) => send({ type: 'log', message }),
    ...(options.layout ? { layout: options.layout } : {}),
  });
  starting = start;
  stack = await start;
  const keys = JSON.parse(readFileSync(join(options.dataDir, 'simulator-keys.json'), 'utf8')) as {
    appId: string;
    appPrivateKey: string;
    alipayPublicKey: string;
    alipayPrivateKey: string;
  };
  const temporalAddress = stack.urls.find(([name]) => name === 'Temporal gRPC')?.[1];
  if (!stack.simulatorUrl || !temporalAddress) throw new Error('the stack runs without its simulator or its Temporal address');
  send({
    type: 'ready',
    info: {
      pid: process.pid,
      apiUrl: stack.apiUrl,
      simulatorUrl: stack.simulatorUrl,
      temporalAddress,
      namespace: stack.engineEnv.TEMPORAL_NAMESPACE ?? 'default',
      merchantId: stack.devMerchant.merchantId,
      secret: stack.devMerchant.secret,
      appId: keys.appId,
      appPrivateKey: keys.appPrivateKey,
      alipayPublicKey: keys.alipayPublicKey,
      alipayPrivateKey: keys.alipayPrivateKey,
      databaseUrl: readFileSync(databaseUrlFile(options.dataDir), 'utf8').trim(),
      dataDir: options.dataDir,
    },
  });
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  void stopAll(1);
});
