// The Go SDK (sdk/go): its own `go test` run as a merchant's program, against a whole engine of this
// file's own: the unit tests (every shared signing vector through the signer and the verifier) and
// the integration tests (a QR payment paid through the simulator, a partial refund, the payment.paid
// webhook verified, typed errors, a webhook endpoint's events verified with its own secret, the
// events feed), which run only when DURAPAY_API_URL is set and must not be
// skipped here. And the generated client must be what sdk/openapi.json generates today.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findOnPath } from '../scripts/go-binaries.js';
import { generateGoClient, GO_GENERATED_FILE, GO_SDK_DIR, OPENAPI_FILE, resolveOapiCodegen, schemaTo30, toOpenApi30 } from '../scripts/sdk-go.js';
import { startStack, type Stack } from './support/stack.js';

let stack: Stack | undefined;
let go: string;

beforeAll(async () => {
  const found = await findOnPath('go');
  if (!found) throw new Error('the Go SDK tests need `go` on PATH (Go 1.25 or later, https://go.dev/dl/)');
  go = found;
  // oapi-codegen for the staleness check: built into the per-user cache on the first run (~1 min).
  await resolveOapiCodegen((msg) => console.error(`[sdk-go] ${msg}`));
  // Orders wait a minute for their payment: the Go tests pay at once, but their process may be slow to start.
  stack = await startStack({ orderTimeout: '60s' });
});

afterAll(async () => {
  await stack?.stop();
});

interface Run {
  code: number | null;
  output: string;
}

/** `go test` in sdk/go, with this process's environment (GOFLAGS, GOMODCACHE, GOPROXY, …) and `env`. */
function goTest(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(go, ['test', '-count=1', '-v', './...'], {
      cwd: GO_SDK_DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

it('go test passes in sdk/go, its integration tests run against the engine, none skipped', async () => {
  const { api, merchant } = stack!;
  const started = Date.now();
  const run = await goTest({
    DURAPAY_API_URL: api.url,
    DURAPAY_MERCHANT_ID: merchant.id,
    DURAPAY_MERCHANT_SECRET: merchant.secret,
    DURAPAY_WEBHOOK_SECRET: merchant.webhookSecret,
  });
  const summary = run.output.split('\n').filter((line) => /^(--- |ok |FAIL|\s+\S+_test\.go:\d+:)/.test(line));
  console.error(`[sdk-go] go test ran in ${Math.round((Date.now() - started) / 1000)} s:\n${summary.join('\n')}`);
  expect(run.code, run.output).toBe(0);
  const passed = [...run.output.matchAll(/^\s*--- PASS: (\S+)/gm)].map((m) => m[1]);
  for (const name of ['TestRequestVectors', 'TestWebhookVectors', 'TestClientSignsWhatItSends', 'TestIntegrationPayRefundAndWebhook', 'TestIntegrationTypedErrors',
    'TestIntegrationWebhookEndpoint', 'TestIntegrationEventsFeed']) {
    expect(passed, run.output).toContain(name);
  }
  // Every shared vector ran as a subtest of its own.
  const vectors = JSON.parse(readFileSync(join(GO_SDK_DIR, '../signing-vectors.json'), 'utf8')) as { requests: unknown[]; webhooks: unknown[] };
  expect(passed.filter((name) => name!.startsWith('TestRequestVectors/')), run.output).toHaveLength(vectors.requests.length);
  expect(passed.filter((name) => name!.startsWith('TestWebhookVectors/')), run.output).toHaveLength(vectors.webhooks.length);
  expect(run.output).not.toMatch(/--- SKIP/);
}, 300_000);

it('the committed Go client is what sdk/openapi.json generates (npm run sdk:generate:go)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'durapay-sdk-go-stale-'));
  try {
    const fresh = join(dir, 'client.gen.go');
    await generateGoClient({ outputFile: fresh });
    expect(readFileSync(GO_GENERATED_FILE, 'utf8') === readFileSync(fresh, 'utf8'), 'stale: run npm run sdk:generate:go').toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);

it('the generator converts the 3.1 document to a valid OpenAPI 3.0 of the /v1 routes', async () => {
  const document = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  const converted = toOpenApi30(document);
  const result = await new Validator().validate(structuredClone(converted));
  expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
  expect(result.valid).toBe(true);
  expect(converted.openapi).toBe('3.0.3');
  const routes = Object.keys(converted.paths as object);
  expect(routes).toContain('/v1/payments');
  expect(routes.every((route) => route.startsWith('/v1/'))).toBe(true);
  // The source document is left as it was.
  expect(document.openapi).toMatch(/^3\.1\./);

  expect(schemaTo30({ type: ['string', 'null'], enum: ['A', 'B', null], examples: ['A'] })).toEqual({ type: 'string', enum: ['A', 'B'], example: 'A', nullable: true });
  expect(schemaTo30({ const: 'barcode' })).toEqual({ enum: ['barcode'] });
  expect(schemaTo30({ type: 'number', exclusiveMinimum: 0 })).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true });
  expect(schemaTo30({ anyOf: [{ $ref: '#/components/schemas/Payment' }, { type: 'null' }] })).toEqual({
    allOf: [{ $ref: '#/components/schemas/Payment' }],
    nullable: true,
  });
  expect(schemaTo30({ type: 'object', properties: { a: true, b: false }, if: { required: ['a'] }, then: {}, else: {} })).toEqual({
    type: 'object',
    properties: { a: {}, b: { not: {} } },
  });
  expect(schemaTo30({ $ref: '#/components/schemas/Payment', description: 'ignored beside a $ref in 3.0' })).toEqual({ $ref: '#/components/schemas/Payment' });
});
