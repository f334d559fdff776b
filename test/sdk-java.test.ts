// The Java SDK (sdk/java): its JUnit tests, run by Maven, against a whole engine (the signing vectors
// always; the integration tests because DURAPAY_API_URL is set: a QR payment paid at the simulator,
// a refund, the payment.paid webhook verified, typed errors), and its generated client kept current.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateJavaSdk, JAVA_GENERATED_DIR, JAVA_SDK_DIR, runMaven } from '../scripts/sdk-generate-java.js';
import { startStack, type Stack } from './support/stack.js';

/** Every file under dir, by its path relative to dir. */
function files(dir: string, root = dir): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files(path, root).forEach((content, name) => out.set(name, content));
    else out.set(relative(root, path), readFileSync(path));
  }
  return out;
}

/** A surefire report's counts. */
function report(className: string) {
  const xml = readFileSync(join(JAVA_SDK_DIR, 'target', 'surefire-reports', `TEST-${className}.xml`), 'utf8');
  const suite = /<testsuite\b[^>]*>/.exec(xml)?.[0] ?? '';
  const count = (name: string) => Number(new RegExp(`\\s${name}="(\\d+)"`).exec(suite)?.[1] ?? NaN);
  return { tests: count('tests'), skipped: count('skipped'), failures: count('failures'), errors: count('errors') };
}

// A cold Maven (an empty local repository) downloads the plugins and libraries first.
const MAVEN_TIMEOUT_MS = 8 * 60_000;

describe('the Java SDK', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('passes its JUnit tests against a real engine, integration tests included', { timeout: MAVEN_TIMEOUT_MS }, async () => {
    rmSync(join(JAVA_SDK_DIR, 'target', 'surefire-reports'), { recursive: true, force: true });
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DURAPAY_')));
    // Asynchronously: the engine answering the tests runs in this process.
    await runMaven(['-B', '-q', 'test'], {
      ...base,
      DURAPAY_API_URL: stack.api.url,
      DURAPAY_MERCHANT_ID: stack.merchant.id,
      DURAPAY_MERCHANT_SECRET: stack.merchant.secret,
      DURAPAY_WEBHOOK_SECRET: stack.merchant.webhookSecret,
    });
    const vectors = report('dev.durapay.SigningVectorsTest');
    expect(vectors.tests).toBeGreaterThanOrEqual(12);
    expect(vectors).toMatchObject({ skipped: 0, failures: 0, errors: 0 });
    // The integration tests ran (not skipped for want of DURAPAY_API_URL) and passed.
    expect(report('dev.durapay.IntegrationTest')).toEqual({ tests: 2, skipped: 0, failures: 0, errors: 0 });
    expect(report('dev.durapay.WebhookEndpointsIntegrationTest')).toEqual({ tests: 2, skipped: 0, failures: 0, errors: 0 });
  });

  it('has its generated client current with sdk/openapi.json', { timeout: MAVEN_TIMEOUT_MS }, async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'durapay-java-generated-'));
    try {
      await generateJavaSdk(fresh);
      const committed = files(JAVA_GENERATED_DIR);
      const regenerated = files(fresh);
      const stale = [...new Set([...committed.keys(), ...regenerated.keys()])]
        .filter((name) => !committed.get(name)?.equals(regenerated.get(name) ?? Buffer.alloc(0)) || !regenerated.has(name))
        .sort();
      if (stale.length > 0) throw new Error(`stale: run npm run sdk:generate:java (differs: ${stale.slice(0, 10).join(', ')}${stale.length > 10 ? ', …' : ''})`);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
