// The TypeScript SDK (sdk/typescript) against a whole engine: its own test suite runs in a child
// process, as a merchant's would, with the engine's URL and this stack's merchant's credentials in
// DURAPAY_* variables: a QR payment paid, refunded in part and its webhook verified, webhook
// endpoints with a secret rotation, the events feed. Its signing vectors, typed errors, the staleness
// of its generated schema and its build run in that suite too; this file checks that every one of
// them ran and passed. Then the README's loop: listen, trigger, and the example receiver verifying
// with the SDK.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findFreePort } from '../lib/platform/free-port.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const SDK = fileURLToPath(new URL('../sdk/typescript/', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

let stack: Stack;
let scratch: string;

beforeAll(async () => {
  stack = await startStack({ orderTimeout: '60s', pollLadder: '1s' });
  scratch = mkdtempSync(join(tmpdir(), 'durapay-sdk-ts-run-'));
});

afterAll(async () => {
  await stack?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface VitestJson {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { name: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

/** Runs the SDK's vitest in sdk/typescript (its own config) without blocking this process, where the API runs. */
function runSdkTests(env: Record<string, string>): Promise<{ code: number | null; output: string; report: VitestJson }> {
  const vitest = join(createRequire(import.meta.url).resolve('vitest/package.json'), '..', 'vitest.mjs');
  const reportFile = join(scratch, 'report.json');
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DURAPAY_') && !name.startsWith('VITEST')));
  const child = spawn(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`], {
    cwd: SDK,
    env: { ...base, ...env, NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, output, report: JSON.parse(readFileSync(reportFile, 'utf8')) });
      } catch (err) {
        reject(new Error(`the SDK's tests left no report (exit ${code}): ${String(err)}\n${output}`));
      }
    });
  });
}

it('the TypeScript SDK\'s own tests pass against this engine, every one of them run', { timeout: 300_000 }, async () => {
  const { code, output, report } = await runSdkTests({
    DURAPAY_API_URL: stack.api.url,
    DURAPAY_MERCHANT_ID: stack.merchant.id,
    DURAPAY_MERCHANT_SECRET: stack.merchant.secret,
    DURAPAY_WEBHOOK_SECRET: stack.merchant.webhookSecret,
  });
  expect(code, output).toBe(0);
  const tests = report.testResults.flatMap((file) => file.assertionResults.map((t) => ({ file: file.name.slice(SDK.length), name: t.fullName, status: t.status })));
  const notPassed = tests.filter((t) => t.status !== 'passed');
  expect(notPassed, output).toEqual([]);
  expect(report.numFailedTests).toBe(0);
  expect(report.numPendingTests).toBe(0);

  const vectors = JSON.parse(readFileSync(new URL('../sdk/signing-vectors.json', import.meta.url), 'utf8')) as { requests: { name: string }[]; webhooks: { name: string }[] };
  const names = tests.map((t) => t.name);
  // One test per shared signing vector, requests and webhooks.
  for (const v of vectors.requests) expect(names).toContain(`request signing vectors signs: ${v.name}`);
  for (const v of vectors.webhooks) expect(names.some((n) => n.startsWith('webhook verification vectors ') && n.endsWith(`: ${v.name}`)), v.name).toBe(true);
  // The engine tests ran (not skipped for want of credentials), and the staleness check.
  for (const name of [
    'against a running engine creates a QR payment, which the buyer pays, and it reaches PAID',
    'against a running engine receives the payment.paid webhook and verifies it with the SDK',
    'against a running engine refunds part of the payment and reads the refunds',
    'against a running engine a request signed with the wrong secret is an AuthenticationError',
    'against a running engine an unknown order is a NotFoundError; a bad field an InvalidRequestError with its details',
    'src/schema.ts is generated from sdk/openapi.json and up to date',
    'the published package builds to dist/ and works when imported by its name in plain Node',
    "webhook endpoints and the events feed a paid order's payment.paid reaches the endpoint, signed with its secret, and shows in the feed",
    'webhook endpoints and the events feed the feed as a stream from a cursor, ended by the consumer',
    'webhook endpoints and the events feed a test ping; after a rotation both the new and the previous secret verify',
    "webhook endpoints and the events feed lists the endpoint's deliveries and resends one",
  ]) {
    expect(names, output).toContain(name);
  }
  expect(tests.length).toBeGreaterThanOrEqual(40);
});

/** A command of the README's, run from the repository as a newcomer runs it; its output lines as they come. */
function runCommand(args: string[], env: Record<string, string>) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DURAPAY_') && !name.startsWith('VITEST')));
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    lines,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

it("the README's webhook loop: listen forwards what trigger makes happen to a receiver that verifies with the SDK", { timeout: 120_000 }, async () => {
  const cliEnv = {
    DURAPAY_API_URL: stack.api.url,
    DURAPAY_MERCHANT_ID: stack.merchant.id,
    DURAPAY_MERCHANT_SECRET: stack.merchant.secret,
    DURAPAY_DATA_DIR: scratch,
  };
  const port = await findFreePort();
  // Terminal 1: listen prints its secret.
  const listen = runCommand(['cli/main.ts', 'listen', '--forward-to', `http://127.0.0.1:${port}/hooks`], cliEnv);
  // Terminal 2: the example receiver, given that secret.
  let receiver: ReturnType<typeof runCommand> | undefined;
  try {
    const secret = await waitFor('listen to print its secret', async () => listen.lines.join('\n').match(/whsec_[A-Za-z0-9_-]+/)?.[0]);
    receiver = runCommand(['examples/webhook-receiver.ts'], { PORT: String(port), DURAPAY_WEBHOOK_SECRET: secret });
    await waitFor('the receiver to listen', async () => (receiver!.lines.some((line) => line.startsWith('receiving webhooks on')) ? true : undefined));
    // Terminal 3: trigger.
    const trigger = runCommand(['cli/main.ts', 'trigger', 'payment.paid'], cliEnv);
    expect(await trigger.exited, trigger.lines.join('\n')).toBe(0);
    const verified = await waitFor(
      'the receiver to verify payment.paid',
      async () => receiver!.lines.find((line) => /^verified payment\.paid evt_[0-9a-f]{24} /.test(line)),
      { timeoutMs: 30_000 },
    );
    expect(receiver.lines.filter((line) => line.startsWith('refused'))).toEqual([]);
    // The order the receiver heard of is the one trigger made, and it is PAID.
    const orderNo = verified.split(' ').at(-1)!;
    expect((await stack.getPayment(orderNo)).body.status).toBe('PAID');
  } finally {
    await Promise.all([listen.stop(), receiver?.stop()]);
  }
});
