// Configuration is validated at start, and a bad value names its variable and what is wrong.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadApiConfig, loadConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { deriveApiKeys, formatApiKeys } from '../lib/platform/master-key.js';
import { describeTemporalConnection, temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { npmStartWebhookTargets } from '../scripts/local-stack.js';
import { createAlipayPki, issueCertificate } from '../simulator/certificates.js';
import { issue, issueTestPki } from './support/pki.js';

function rsaPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    pkcs1: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    spki: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
const app = rsaPair();
const alipay = rsaPair();
const bare = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s+/g, '');
const pkcs8Body = bare(app.pkcs8);
const pkcs1Body = bare(app.pkcs1);

const base = {
  ALIPAY_GATEWAY_URL: 'https://openapi.alipay.com/gateway.do',
  ALIPAY_APP_ID: '2021000000000001',
  ALIPAY_PRIVATE_KEY: app.pkcs8,
  ALIPAY_PUBLIC_KEY: bare(alipay.spki),
  ALIPAY_NOTIFY_URL: 'https://pay.example.com/alipay/notify',
  ALIPAY_SELLER_ID: '2088102177846880',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/durapay',
  DURAPAY_MASTER_KEY: '5a'.repeat(32),
};

describe('loadConfig', () => {
  it('accepts the app key as PKCS8 or PKCS1, PEM or bare base64, and normalises it to PKCS8', () => {
    for (const key of [app.pkcs8, app.pkcs1, bare(app.pkcs8), bare(app.pkcs1), app.pkcs1.replace(/\n/g, '\\n')]) {
      const config = loadConfig({ ...base, ALIPAY_PRIVATE_KEY: key });
      expect(config.alipay.privateKey).toBe(app.pkcs8);
    }
  });

  it('accepts a PKCS8 body under a PKCS1 header: the key itself decides', () => {
    const key = `-----BEGIN RSA PRIVATE KEY-----\n${pkcs8Body}\n-----END RSA PRIVATE KEY-----`;
    expect(loadConfig({ ...base, ALIPAY_PRIVATE_KEY: key }).alipay.privateKey).toBe(app.pkcs8);
  });

  it('applies the defaults: 15 minute orders, a 15s/30s/60s/120s poll ladder, port 3000', () => {
    const config = loadConfig(base);
    expect(config.timings).toEqual({ orderTimeoutMs: 900_000, pollLadderMs: [60_000, 120_000, 300_000, 600_000], historyLimit: 2_000 });
    expect(config.port).toBe(3000);
    expect(config.temporal).toEqual({ address: 'localhost:7233', namespace: 'default', taskQueue: 'payments' });
  });

  it('retries webhooks for over a day by default, within 10 s each, and takes a compressed schedule', () => {
    const { webhooks } = loadConfig(base);
    expect(webhooks).toEqual({ timeoutMs: 10_000, retryScheduleMs: [10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000, 57_600_000] });
    expect(webhooks.retryScheduleMs.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(24 * 3_600_000);
    const compressed = loadApiConfig({ ...base, WEBHOOK_RETRY_SCHEDULE: '200ms,1s', WEBHOOK_TIMEOUT: '2s' }).webhooks;
    expect(compressed).toEqual({ timeoutMs: 2_000, retryScheduleMs: [200, 1_000] });
  });

  it('refuses private webhook targets, bounds webhook POSTs apart from the 100 activity slots, and takes other values', () => {
    expect(loadConfig(base)).toMatchObject({ webhookPrivateTargets: 'deny', webhookConcurrency: 50, workerActivityConcurrency: 100 });
    const tuned = loadConfig({ ...base, WEBHOOK_PRIVATE_TARGETS: 'allow', WEBHOOK_CONCURRENCY: '5', WORKER_ACTIVITY_CONCURRENCY: '20' });
    expect(tuned).toMatchObject({ webhookPrivateTargets: 'allow', webhookConcurrency: 5, workerActivityConcurrency: 20 });
    expect(loadApiConfig({ ...base, WEBHOOK_PRIVATE_TARGETS: 'allow' }).webhookPrivateTargets).toBe('allow');
  });

  it("npm start lets webhooks reach local receivers unless told otherwise, and its banner says which", () => {
    expect(npmStartWebhookTargets({})).toEqual({ value: 'allow', banner: expect.stringMatching(/^WEBHOOK_PRIVATE_TARGETS=allow \(npm start's default/) });
    expect(npmStartWebhookTargets({ WEBHOOK_PRIVATE_TARGETS: 'deny' })).toEqual({ value: 'deny', banner: 'WEBHOOK_PRIVATE_TARGETS=deny (as given)' });
    expect(npmStartWebhookTargets({ WEBHOOK_PRIVATE_TARGETS: '' }).value).toBe('allow');
  });

  it('reconciles daily at 10:00 Beijing time by default, asking 8 times 30 min apart for a bill not ready, and takes other values', () => {
    expect(loadConfig(base).reconciliation).toEqual({ timeOfDay: { hour: 10, minute: 0 }, billNotReadyWaitMs: 1_800_000, billNotReadyTries: 8 });
    const tuned = loadApiConfig({ ...base, RECONCILIATION_TIME: '9:45', RECONCILIATION_BILL_WAIT: '200ms', RECONCILIATION_BILL_TRIES: '3' });
    expect(tuned.reconciliation).toEqual({ timeOfDay: { hour: 9, minute: 45 }, billNotReadyWaitMs: 200, billNotReadyTries: 3 });
  });

  it('takes PUBLIC_BASE_URL and SIMULATOR_URL as bases for links, without a trailing slash; unset, neither', () => {
    const config = loadApiConfig({ ...base, PUBLIC_BASE_URL: 'https://pay.example.com/shop/', SIMULATOR_URL: 'http://127.0.0.1:8090' });
    expect(config).toMatchObject({ publicBaseUrl: 'https://pay.example.com/shop', simulatorUrl: 'http://127.0.0.1:8090' });
    expect(loadApiConfig(base).publicBaseUrl).toBeUndefined();
    expect(loadApiConfig(base).simulatorUrl).toBeUndefined();
    expect(() => loadApiConfig({ ...base, PUBLIC_BASE_URL: 'pay.example.com' })).toThrow(/PUBLIC_BASE_URL: must be an http or https URL/);
    expect(() => loadApiConfig({ ...base, PUBLIC_BASE_URL: 'https://pay.example.com/?shop=1' })).toThrow(/PUBLIC_BASE_URL: must not have a query or fragment/);
  });

  it('takes OPS_TOKEN, or OPS_TOKEN_FILE, for the /ops endpoints; unset, /ops is closed', () => {
    const token = 'a'.repeat(31) + 'Z';
    expect(loadApiConfig({ ...base, OPS_TOKEN: token }).opsToken).toBe(token);
    expect(loadApiConfig(base).opsToken).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'durapay-config-'));
    try {
      writeFileSync(join(dir, 'ops-token'), `${token}\n`);
      expect(loadApiConfig({ ...base, OPS_TOKEN_FILE: join(dir, 'ops-token') }).opsToken).toBe(token);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['a token shorter than 32 characters', 'short-secret-token', /^OPS_TOKEN: must be at least 32 characters \(it has 18\)/],
    ['a token with a space', `${'x'.repeat(20)} ${'y'.repeat(20)}`, /^OPS_TOKEN: must be one token of printable ASCII characters, without spaces/],
    ['a token with its "Bearer " prefix', `Bearer ${'z'.repeat(40)}`, /^OPS_TOKEN: give the token alone/],
  ])('refuses %s as OPS_TOKEN, naming it and never echoing it', (_name, token, message) => {
    let error: Error | undefined;
    try {
      loadApiConfig({ ...base, OPS_TOKEN: token });
    } catch (err) {
      error = err as Error;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toContain(token.replace(/^Bearer /, ''));
  });

  it('takes ALIPAY_ENV as a preset for the gateway, and refuses a gateway that disagrees with it', () => {
    const { ALIPAY_GATEWAY_URL: _, ...withoutGateway } = base;
    expect(loadConfig({ ...withoutGateway, ALIPAY_ENV: 'sandbox' }).alipay.gatewayUrl).toBe('https://openapi-sandbox.dl.alipaydev.com/gateway.do');
    expect(loadConfig({ ...withoutGateway, ALIPAY_ENV: 'production' }).alipay.gatewayUrl).toBe('https://openapi.alipay.com/gateway.do');
    expect(loadConfig({ ...base, ALIPAY_ENV: 'production' }).alipay.gatewayUrl).toBe('https://openapi.alipay.com/gateway.do');
    expect(() => loadConfig({ ...base, ALIPAY_ENV: 'sandbox' })).toThrow(/^ALIPAY_GATEWAY_URL: https:\/\/openapi.alipay.com\/gateway.do is not the sandbox gateway ALIPAY_ENV names/);
    expect(() => loadConfig({ ...withoutGateway, ALIPAY_ENV: 'staging' })).toThrow(/ALIPAY_ENV: must be production or sandbox/);
  });

  it('takes DURAPAY_MASTER_KEY as 32 bytes of hex or base64, and refuses anything else without echoing it', () => {
    const hex = 'ab'.repeat(32);
    expect(loadConfig({ ...base, DURAPAY_MASTER_KEY: hex }).masterKey).toEqual(Buffer.from(hex, 'hex'));
    expect(loadApiConfig({ ...base, DURAPAY_MASTER_KEY: Buffer.from(hex, 'hex').toString('base64') }).apiKeys).toEqual(deriveApiKeys(Buffer.from(hex, 'hex')));
    expect(() => loadConfig({ ...base, DURAPAY_MASTER_KEY: undefined })).toThrow(/^DURAPAY_MASTER_KEY: required/);
    for (const bad of ['ab'.repeat(16), 'not a key at all, not even close to 32 bytes', 'zz'.repeat(32)]) {
      expect(() => loadConfig({ ...base, DURAPAY_MASTER_KEY: bad })).toThrow(/^DURAPAY_MASTER_KEY: must be 32 random bytes, as 64 hex characters or base64/);
      try {
        loadConfig({ ...base, DURAPAY_MASTER_KEY: bad });
      } catch (err) {
        expect((err as Error).message).not.toContain(bad);
      }
    }
  });

  it('gives the API DURAPAY_API_KEYS, or derives them from DURAPAY_MASTER_KEY; both must agree, and neither is refused', () => {
    const master = Buffer.from('ab'.repeat(32), 'hex');
    const text = formatApiKeys(deriveApiKeys(master));
    expect(loadApiConfig({ ...base, DURAPAY_MASTER_KEY: undefined, DURAPAY_API_KEYS: text }).apiKeys).toEqual(deriveApiKeys(master));
    expect(loadApiConfig({ ...base, DURAPAY_MASTER_KEY: 'ab'.repeat(32), DURAPAY_API_KEYS: text }).apiKeys).toEqual(deriveApiKeys(master));
    expect(() => loadApiConfig({ ...base, DURAPAY_API_KEYS: text })).toThrow(/^DURAPAY_API_KEYS: not the keys DURAPAY_MASTER_KEY derives/);
    expect(() => loadApiConfig({ ...base, DURAPAY_MASTER_KEY: undefined })).toThrow(/^DURAPAY_API_KEYS: required .*DURAPAY_MASTER_KEY/);
    const broken = `${text.slice(0, -4)}!!!!`;
    expect(() => loadApiConfig({ ...base, DURAPAY_MASTER_KEY: undefined, DURAPAY_API_KEYS: broken })).toThrow(/^DURAPAY_API_KEYS: must be the line/);
    try {
      loadApiConfig({ ...base, DURAPAY_MASTER_KEY: undefined, DURAPAY_API_KEYS: broken });
    } catch (err) {
      expect((err as Error).message).not.toContain(broken.split('.')[1]);
    }
  });

  it('waits for a barcode payment 10 s, querying every 3 s for 30 s, by default, and takes other durations', () => {
    expect(loadConfig(base).barcode).toEqual({ answerWithinMs: 10_000, queryEveryMs: 3_000, confirmWindowMs: 30_000 });
    const tuned = loadApiConfig({ ...base, BARCODE_ANSWER_TIMEOUT: '5s', BARCODE_QUERY_INTERVAL: '2s', BARCODE_CONFIRM_WINDOW: '1m' });
    expect(tuned.barcode).toEqual({ answerWithinMs: 5_000, queryEveryMs: 2_000, confirmWindowMs: 60_000 });
    expect(() => loadConfig({ ...base, BARCODE_QUERY_INTERVAL: '100ms' })).toThrow(/BARCODE_QUERY_INTERVAL: must be at least 1s/);
  });

  it('bounds every PostgreSQL call by default: 3 s to connect, 5 s per statement, and takes other durations', () => {
    expect(loadConfig(base).databaseTimeouts).toEqual({ connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 });
    expect(loadApiConfig(base).databaseTimeouts).toEqual({ connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 });
    const tuned = loadConfig({ ...base, DATABASE_CONNECT_TIMEOUT: '500ms', DATABASE_STATEMENT_TIMEOUT: '30s' });
    expect(tuned.databaseTimeouts).toEqual({ connectTimeoutMs: 500, statementTimeoutMs: 30_000 });
  });

  it('serves the worker\'s metrics on port 9464 by default; takes a port, a host and port, 0, or off', () => {
    expect(loadConfig(base).workerMetrics).toEqual({ host: '0.0.0.0', port: 9464 });
    const metricsAt = (value: string) => loadConfig({ ...base, WORKER_METRICS_PORT: value }).workerMetrics;
    expect(metricsAt('9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(metricsAt('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(metricsAt('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(metricsAt('off')).toBeUndefined();
    for (const bad of ['70000', 'metrics', '127.0.0.1:', '[zz]:9464']) {
      expect(() => metricsAt(bad), bad).toThrow(/WORKER_METRICS_PORT: .* is not a port \(9464\), a host and port/);
    }
  });

  it('reads keys from *_FILE variables', () => {
    const dir = mkdtempSync(join(tmpdir(), 'durapay-config-'));
    writeFileSync(join(dir, 'app.pem'), app.pkcs1);
    writeFileSync(join(dir, 'alipay.pem'), alipay.spki);
    const { ALIPAY_PRIVATE_KEY: _p, ALIPAY_PUBLIC_KEY: _a, ...rest } = base;
    const config = loadConfig({ ...rest, ALIPAY_PRIVATE_KEY_FILE: join(dir, 'app.pem'), ALIPAY_PUBLIC_KEY_FILE: join(dir, 'alipay.pem') });
    expect(config.alipay.privateKey).toBe(app.pkcs8);
    expect(() => loadConfig({ ...rest, ALIPAY_PRIVATE_KEY_FILE: join(dir, 'missing.pem') })).toThrow(/ALIPAY_PRIVATE_KEY_FILE: cannot read/);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['no private key', { ALIPAY_PRIVATE_KEY: undefined }, /ALIPAY_PRIVATE_KEY: required/],
    ['a PKCS1 key under a PKCS8 header', { ALIPAY_PRIVATE_KEY: `-----BEGIN PRIVATE KEY-----\n${pkcs1Body}\n-----END PRIVATE KEY-----` }, /ALIPAY_PRIVATE_KEY: the PEM header says PKCS8 .* but the key is PKCS1/],
    ['garbage as the private key', { ALIPAY_PRIVATE_KEY: 'not-a-key' }, /ALIPAY_PRIVATE_KEY: not an RSA private key/],
    ['a public key as the private key', { ALIPAY_PRIVATE_KEY: app.spki }, /ALIPAY_PRIVATE_KEY: this is a public key/],
    ['a private key as Alipay public key', { ALIPAY_PUBLIC_KEY: alipay.pkcs8 }, /ALIPAY_PUBLIC_KEY: this is a private key/],
    ["the app's own public key as Alipay's", { ALIPAY_PUBLIC_KEY: app.spki }, /ALIPAY_PUBLIC_KEY: this is the app's own public key/],
    ['a notify URL not ending in /alipay/notify', { ALIPAY_NOTIFY_URL: 'https://pay.example.com/notify' }, /ALIPAY_NOTIFY_URL: must end with \/alipay\/notify/],
    ['an app id with letters', { ALIPAY_APP_ID: 'abc' }, /ALIPAY_APP_ID: an Alipay app id is digits only/],
    ['a malformed seller id', { ALIPAY_SELLER_ID: '1234' }, /ALIPAY_SELLER_ID: a seller id is 16 digits starting with 2088/],
    ['a database URL that is not postgres', { DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres:\/\/ connection URL/],
    ['a bad timeout', { PAYMENT_TIMEOUT: '15 minutes' }, /PAYMENT_TIMEOUT: "15 minutes" is not a duration/],
    ['a timeout beyond the QR code lifetime', { PAYMENT_TIMEOUT: '3h' }, /PAYMENT_TIMEOUT: must be at most 2h/],
    ['a database connect timeout without a unit', { DATABASE_CONNECT_TIMEOUT: '3' }, /DATABASE_CONNECT_TIMEOUT: "3" is not a duration/],
    ['a zero statement timeout (no bound at all)', { DATABASE_STATEMENT_TIMEOUT: '0s' }, /DATABASE_STATEMENT_TIMEOUT: "0s" is not a duration/],
    ['a bad poll ladder', { PAYMENT_POLL_LADDER: '15s,soon' }, /PAYMENT_POLL_LADDER: "15s,soon" is not a comma-separated list/],
    ['an unknown late-payment policy', { LATE_PAYMENT_POLICY: 'keep' }, /LATE_PAYMENT_POLICY: must be refund or review/],
    ['a poll step under a second', { PAYMENT_POLL_LADDER: '15s,500ms' }, /PAYMENT_POLL_LADDER: "15s,500ms": every step must be at least 1s/],
    ['a history limit too small to wait in', { PAYMENT_HISTORY_LIMIT: '10' }, /PAYMENT_HISTORY_LIMIT: must be at least 50 events/],
    ['a webhook retry schedule with a word in it', { WEBHOOK_RETRY_SCHEDULE: '10s,later' }, /WEBHOOK_RETRY_SCHEDULE: "10s,later" is not a comma-separated list of durations/],
    ['a webhook retry schedule of more than 50 steps', { WEBHOOK_RETRY_SCHEDULE: Array(51).fill('1s').join(',') }, /WEBHOOK_RETRY_SCHEDULE: .*at most 50 steps/],
    ['a webhook timeout over a minute', { WEBHOOK_TIMEOUT: '2m' }, /WEBHOOK_TIMEOUT: must be at most 60s/],
    ['webhook private targets neither deny nor allow', { WEBHOOK_PRIVATE_TARGETS: 'off' }, /WEBHOOK_PRIVATE_TARGETS: must be deny or allow/],
    ['no webhook slots', { WEBHOOK_CONCURRENCY: '0' }, /WEBHOOK_CONCURRENCY: must be a whole number of requests from 1 to 1000/],
    ['fractional activity slots', { WORKER_ACTIVITY_CONCURRENCY: '2.5' }, /WORKER_ACTIVITY_CONCURRENCY: must be a whole number of activities from 1 to 10000/],
    ['a reconciliation time that is not a time of day', { RECONCILIATION_TIME: '25:00' }, /RECONCILIATION_TIME: "25:00" is not a time of day like 10:00 \(24-hour, Beijing time\)/],
    ['a reconciliation time with seconds', { RECONCILIATION_TIME: '10:00:00' }, /RECONCILIATION_TIME: "10:00:00" is not a time of day/],
    ['a bill wait that is not a duration', { RECONCILIATION_BILL_WAIT: 'half an hour' }, /RECONCILIATION_BILL_WAIT: "half an hour" is not a duration/],
    ['no tries at all for the bill', { RECONCILIATION_BILL_TRIES: '0' }, /RECONCILIATION_BILL_TRIES: must be a whole number of tries from 1 to 100/],
    ['fractional tries for the bill', { RECONCILIATION_BILL_TRIES: '2.5' }, /RECONCILIATION_BILL_TRIES: must be a whole number of tries from 1 to 100/],
    ['an unplaceable-answer retry that is not a duration', { ALIPAY_UNPLACEABLE_ANSWER_RETRY: 'forever' }, /ALIPAY_UNPLACEABLE_ANSWER_RETRY: "forever" is not a duration/],
    ['no gateway', { ALIPAY_GATEWAY_URL: undefined }, /ALIPAY_GATEWAY_URL: required/],
    ['a plain http gateway', { ALIPAY_GATEWAY_URL: 'http://openapi.alipay.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL \(plain http only on loopback/],
    ['a plain http gateway on a private address', { ALIPAY_GATEWAY_URL: 'http://10.0.0.5:8090/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
    ['a plain http gateway on a host named like loopback', { ALIPAY_GATEWAY_URL: 'http://localhost.example.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
    ['a plain http gateway on a host starting 127.', { ALIPAY_GATEWAY_URL: 'http://127.0.0.1.example.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
    ['a gateway URL that does not parse', { ALIPAY_GATEWAY_URL: 'http://[::1].evil.com/gateway.do' }, /ALIPAY_GATEWAY_URL: Invalid URL/],
    ['a gateway that is not http at all', { ALIPAY_GATEWAY_URL: 'ftp://openapi.alipay.com/gateway.do' }, /ALIPAY_GATEWAY_URL: /],
  ])('rejects %s, naming the variable', (_name, patch, message) => {
    expect(() => loadConfig({ ...base, ...patch })).toThrow(message);
  });

  it.each([
    'https://openapi.alipay.com/gateway.do',
    'https://openapi-sandbox.dl.alipaydev.com/gateway.do',
    'http://127.0.0.1:8090/gateway.do',
    'http://127.45.6.7/gateway.do',
    'http://localhost:8090/gateway.do',
    'http://LOCALHOST:8090/gateway.do',
    'http://[::1]:8090/gateway.do',
  ])('accepts the gateway %s (plain http only on loopback, for the simulator and tests)', (url) => {
    expect(loadConfig({ ...base, ALIPAY_GATEWAY_URL: url }).alipay.gatewayUrl).toBe(url);
  });

  it('requires ALIPAY_SELLER_ID, in the worker and the API, unless the gateway is the simulator or the sandbox', () => {
    const { ALIPAY_SELLER_ID: _s, ...noSeller } = base;
    const { ALIPAY_GATEWAY_URL: _g, ...noSellerNoGateway } = noSeller;
    for (const env of [noSeller, { ...noSeller, ALIPAY_GATEWAY_URL: 'https://alipay-gateway.example.com/gateway.do' }, { ...noSellerNoGateway, ALIPAY_ENV: 'production' }]) {
      expect(() => loadConfig(env)).toThrow(/ALIPAY_SELLER_ID: required with the gateway https:\/\/.* only the simulator and the sandbox go without/);
      expect(() => loadApiConfig(env)).toThrow(/ALIPAY_SELLER_ID: required/);
    }
    // The API names no gateway of its own: it cannot tell it is the simulator's or the sandbox's.
    const { ALIPAY_PRIVATE_KEY: _p, ...apiNoSellerNoGateway } = noSellerNoGateway;
    expect(() => loadApiConfig(apiNoSellerNoGateway)).toThrow(/ALIPAY_SELLER_ID: required with no ALIPAY_GATEWAY_URL or ALIPAY_ENV/);
    for (const env of [
      { ...noSeller, ALIPAY_GATEWAY_URL: 'http://127.0.0.1:8090/gateway.do' },
      { ...noSeller, ALIPAY_GATEWAY_URL: 'http://localhost:8090/gateway.do' },
      { ...noSeller, ALIPAY_GATEWAY_URL: 'https://openapi-sandbox.dl.alipaydev.com/gateway.do' },
      { ...noSellerNoGateway, ALIPAY_ENV: 'sandbox' },
    ]) {
      expect(loadConfig(env).alipay.sellerId).toBeUndefined();
      expect(loadApiConfig(env).alipay.sellerId).toBeUndefined();
    }
    expect(loadConfig(base).alipay.sellerId).toBe('2088102177846880');
  });

  it('lets the API start without the private key or the gateway, which only the worker needs', () => {
    const { ALIPAY_PRIVATE_KEY: _p, ALIPAY_GATEWAY_URL: _g, ...apiEnv } = base;
    const config = loadApiConfig(apiEnv);
    expect(config.alipay).not.toHaveProperty('privateKey');
    expect(config.alipay.appId).toBe('2021000000000001');
  });
});

describe('Temporal connection security', () => {
  const pki = issueTestPki();
  const other = issue({ usage: 'client', commonName: 'another client', issuer: pki.ca.signer });
  const expired = issue({
    usage: 'client',
    commonName: 'expired client',
    issuer: pki.ca.signer,
    notBefore: new Date(Date.now() - 2 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  const encryptedKey = createPrivateKey(pki.client.key)
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
    .toString();
  const brokenCert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  const apiKey = 'tmprl-test-key.abcdef0123456789';
  const temporalOf = (env: Record<string, string | undefined>) => loadConfig({ ...base, TEMPORAL_NAMESPACE: 'payments.a1b2c', ...env }).temporal;
  const optionsOf = (env: Record<string, string | undefined>) => temporalConnectionOptions(temporalOf(env));

  it('connects in plain gRPC when nothing asks for TLS', () => {
    expect(optionsOf({})).toEqual({ address: 'localhost:7233' });
    expect(optionsOf({ TEMPORAL_TLS: 'off' })).toEqual({ address: 'localhost:7233' });
  });

  it('TEMPORAL_TLS=on alone: TLS verified against the system roots, no client certificate, no key', () => {
    expect(optionsOf({ TEMPORAL_TLS: 'on', TEMPORAL_ADDRESS: 'temporal.internal:7233' })).toEqual({
      address: 'temporal.internal:7233',
      tls: {},
    });
  });

  it('mTLS from *_FILE variables: the pair, the CA and the server name reach the SDK options, and imply TLS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'durapay-tls-'));
    try {
      const file = (name: string, text: string) => {
        writeFileSync(join(dir, name), text);
        return join(dir, name);
      };
      const options = optionsOf({
        TEMPORAL_TLS_CERT_FILE: file('client.pem', pki.client.cert),
        TEMPORAL_TLS_KEY_FILE: file('client.key', pki.client.key),
        TEMPORAL_TLS_CA_FILE: file('ca.pem', pki.ca.cert),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      });
      expect(options).toEqual({
        address: 'localhost:7233',
        tls: {
          clientCertPair: { crt: Buffer.from(pki.client.cert), key: Buffer.from(pki.client.key) },
          serverRootCACertificate: Buffer.from(pki.ca.cert),
          serverNameOverride: 'temporal.internal',
        },
      });
      expect(options).not.toHaveProperty('apiKey');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TLS with only a CA (server verified, no client certificate)', () => {
    expect(optionsOf({ TEMPORAL_TLS_CA: pki.ca.cert })).toEqual({
      address: 'localhost:7233',
      tls: { serverRootCACertificate: Buffer.from(pki.ca.cert) },
    });
  });

  it('takes a client certificate followed by its chain, PEM with literal \\n, and a PKCS1/SEC1 key normalised to PKCS8', () => {
    const sec1 = createPrivateKey(pki.client.key).export({ type: 'sec1', format: 'pem' }).toString();
    const chain = pki.client.cert + pki.ca.cert;
    const temporal = temporalOf({ TEMPORAL_TLS_CERT: chain.replace(/\n/g, '\\n'), TEMPORAL_TLS_KEY: sec1 });
    expect(temporal.tls?.clientCertPair).toEqual({ crt: chain, key: pki.client.key });
  });

  it('an API key: TLS on, the key, and the namespace header Temporal Cloud routes by', () => {
    const dir = mkdtempSync(join(tmpdir(), 'durapay-tls-'));
    try {
      writeFileSync(join(dir, 'api-key'), `${apiKey}\n`); // files usually end in a newline
      for (const env of [{ TEMPORAL_API_KEY: apiKey }, { TEMPORAL_API_KEY_FILE: join(dir, 'api-key') }]) {
        expect(optionsOf({ TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233', ...env })).toEqual({
          address: 'eu-west-1.aws.api.temporal.io:7233',
          tls: {},
          apiKey,
          metadata: { 'temporal-namespace': 'payments.a1b2c' },
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives the API the same Temporal settings as the worker', () => {
    const env = { ...base, TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: pki.client.key, TEMPORAL_API_KEY: apiKey };
    expect(loadApiConfig(env).temporal).toEqual(loadConfig(env).temporal);
  });

  it('describes the connection for logs without any secret', () => {
    const temporal = temporalOf({ TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: pki.client.key, TEMPORAL_API_KEY: apiKey });
    const description = describeTemporalConnection(temporal);
    expect(description).toEqual({ address: 'localhost:7233', namespace: 'payments.a1b2c', tls: 'on', auth: 'client certificate + API key' });
    expect(JSON.stringify(description)).not.toMatch(/PRIVATE KEY|tmprl-test-key/);
  });

  const keyBody = bare(pki.client.key);
  it.each([
    ['a certificate without its key', { TEMPORAL_TLS_CERT: pki.client.cert }, /^TEMPORAL_TLS_KEY: required with TEMPORAL_TLS_CERT/],
    ['a key without its certificate', { TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS_CERT: required with TEMPORAL_TLS_KEY/],
    ['an unreadable certificate file', { TEMPORAL_TLS_CERT_FILE: '/nonexistent/client.pem', TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS_CERT_FILE: cannot read \/nonexistent\/client.pem/],
    ['an unreadable key file', { TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY_FILE: '/nonexistent/client.key' }, /^TEMPORAL_TLS_KEY_FILE: cannot read/],
    ['an unreadable CA file', { TEMPORAL_TLS_CA_FILE: '/nonexistent/ca.pem' }, /^TEMPORAL_TLS_CA_FILE: cannot read/],
    ['an unreadable API key file', { TEMPORAL_API_KEY_FILE: '/nonexistent/api-key' }, /^TEMPORAL_API_KEY_FILE: cannot read/],
    ['a certificate that is not PEM', { TEMPORAL_TLS_CERT: 'not-a-certificate', TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS_CERT: not a PEM certificate/],
    ['a PEM certificate that does not parse', { TEMPORAL_TLS_CERT: brokenCert, TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS_CERT: certificate 1 does not parse/],
    ['the key where the certificate belongs', { TEMPORAL_TLS_CERT: pki.client.key, TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS_CERT: block 1 is a PRIVATE KEY/],
    ['a key that is not PEM', { TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: keyBody }, /^TEMPORAL_TLS_KEY: not a PEM private key/],
    ['the certificate where the key belongs', { TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: pki.client.cert }, /^TEMPORAL_TLS_KEY: this is a CERTIFICATE/],
    ['a passphrase-protected key', { TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: encryptedKey }, /^TEMPORAL_TLS_KEY: the key is encrypted/],
    ["another certificate's key", { TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: other.key }, /^TEMPORAL_TLS_KEY: does not belong to TEMPORAL_TLS_CERT/],
    ['an expired client certificate', { TEMPORAL_TLS_CERT: expired.cert, TEMPORAL_TLS_KEY: expired.key }, /^TEMPORAL_TLS_CERT: expired on/],
    ['a server certificate as the client certificate', { TEMPORAL_TLS_CERT: pki.server.cert, TEMPORAL_TLS_KEY: pki.server.key }, /^TEMPORAL_TLS_CERT: not a client certificate/],
    ['a CA that is not PEM', { TEMPORAL_TLS_CA: 'not-a-certificate' }, /^TEMPORAL_TLS_CA: not a PEM certificate/],
    ['a CA bundle with a broken certificate', { TEMPORAL_TLS_CA: pki.ca.cert + brokenCert }, /^TEMPORAL_TLS_CA: certificate 2 does not parse/],
    ['TEMPORAL_TLS neither on nor off', { TEMPORAL_TLS: 'maybe' }, /TEMPORAL_TLS: "maybe" is neither on nor off/],
    ['TLS off with an API key', { TEMPORAL_TLS: 'off', TEMPORAL_API_KEY: apiKey }, /^TEMPORAL_TLS: off, but TEMPORAL_API_KEY needs TLS \(an API key must never cross the network in clear\)/],
    ['TLS off with a client certificate', { TEMPORAL_TLS: 'off', TEMPORAL_TLS_CERT: pki.client.cert, TEMPORAL_TLS_KEY: pki.client.key }, /^TEMPORAL_TLS: off, but TEMPORAL_TLS_CERT needs TLS/],
    ['an API key with its "Bearer " prefix', { TEMPORAL_API_KEY: `Bearer ${apiKey}` }, /^TEMPORAL_API_KEY: give the key alone/],
    ['an API key with a space in it', { TEMPORAL_API_KEY: `${apiKey} extra` }, /^TEMPORAL_API_KEY: must be one token/],
    ['a server name that is not a host name', { TEMPORAL_TLS_SERVER_NAME: 'temporal internal' }, /TEMPORAL_TLS_SERVER_NAME: must be a host name/],
  ])('rejects %s, naming the variable and never echoing a secret', (_name, env, message) => {
    let error: Error | undefined;
    try {
      temporalOf(env);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error).toBeInstanceOf(ConfigError);
    for (const secret of [keyBody.slice(40, 80), bare(other.key).slice(40, 80), 'abcdef0123456789', 'secret']) {
      expect(error!.message).not.toContain(secret);
    }
  });
});

describe('certificate mode (公钥证书)', async () => {
  // Alipay's side, as the simulator makes it, and a second Alipay environment (say, the sandbox).
  const pki = await createAlipayPki(alipay.pkcs8);
  const sandbox = await createAlipayPki(rsaPair().pkcs8);
  const appCert = pki.issueAppCert('2021000000000001', app.spki);
  const { ALIPAY_PUBLIC_KEY: _key, ...keyless } = base;
  const certificates = {
    ALIPAY_APP_CERT: appCert,
    ALIPAY_PUBLIC_CERT: pki.alipayCert.certificate,
    ALIPAY_ROOT_CERT: pki.rootChain,
  };
  const certMode = { ...keyless, ...certificates };
  const DAY_MS = 86_400_000;
  const expiredValidity = { notBefore: new Date(Date.now() - 30 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) };

  it('takes the three certificates instead of ALIPAY_PUBLIC_KEY, as PEM with real or literal \\n line breaks', () => {
    const config = loadConfig({ ...certMode, ALIPAY_APP_CERT: appCert.replace(/\n/g, '\\n') });
    expect(config.alipay.credentials).toEqual({
      mode: 'cert',
      appCert,
      alipayPublicCert: pki.alipayCert.certificate,
      alipayRootCert: pki.rootChain,
    });
    expect(loadConfig(base).alipay.credentials).toMatchObject({ mode: 'key' });
  });

  it("gives the API Alipay's certificate and root chain only: it needs no app certificate", () => {
    const { ALIPAY_APP_CERT: _app, ...apiEnv } = certMode;
    expect(loadApiConfig(apiEnv).alipay.credentials).toEqual({
      mode: 'cert',
      alipayPublicCert: pki.alipayCert.certificate,
      alipayRootCert: pki.rootChain,
    });
  });

  it('reads the certificates from *_FILE variables', () => {
    const dir = mkdtempSync(join(tmpdir(), 'durapay-config-'));
    try {
      const files = Object.fromEntries(
        Object.entries(certificates).map(([name, pem]) => {
          writeFileSync(join(dir, name), pem);
          return [`${name}_FILE`, join(dir, name)];
        }),
      );
      expect(loadConfig({ ...keyless, ...files }).alipay.credentials).toMatchObject({ mode: 'cert', appCert });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /**
   * A self-signed SM2 root whose signature node cannot check, like the first certificate of
   * Alipay's published alipayRootCert.crt (node reads that one, but its SM2 signature does not
   * verify there). OpenSSL makes the SM2 root; a flipped last byte spoils its signature.
   */
  function unverifiableSm2Root(): string {
    const dir = mkdtempSync(join(tmpdir(), 'durapay-sm2-'));
    try {
      const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
      execFileSync('openssl', ['genpkey', '-algorithm', 'SM2', '-out', key]);
      execFileSync('openssl', ['req', '-x509', '-key', key, '-sm3', '-subj', '/C=CN/O=Test/CN=SM2 Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', cert]);
      const der = Buffer.from(bare(readFileSync(cert, 'utf8')), 'base64');
      der[der.length - 1]! ^= 0x01;
      return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('takes a root chain holding an SM2 root, as Alipay\'s does, though node cannot check its signature', () => {
    const chain = unverifiableSm2Root() + pki.rootChain;
    expect(loadConfig({ ...certMode, ALIPAY_ROOT_CERT: chain }).alipay.credentials).toMatchObject({ mode: 'cert', alipayRootCert: chain });
  });

  const expiredAppCert = issueCertificate({ subject: [['CN', '2021000000000001']], publicKey: app.spki, issuer: pki.ca, ...expiredValidity });
  const expiredAlipayCert = issueCertificate({ subject: [['CN', 'Alipay']], publicKey: alipay.spki, issuer: pki.ca, ...expiredValidity });
  // Self-signed, but no CA: what a hand-made "root" often is.
  const selfSignedLeaf = issueCertificate({ subject: [['CN', 'not a CA']], publicKey: alipay.spki, selfSigningKey: alipay.pkcs8 });

  it.each([
    ['ALIPAY_PUBLIC_KEY with a certificate', { ...certMode, ALIPAY_PUBLIC_KEY: bare(alipay.spki) }, /^ALIPAY_PUBLIC_KEY: given together with ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT, ALIPAY_ROOT_CERT; use either key mode/],
    ['ALIPAY_PUBLIC_KEY with a certificate file', { ...base, ALIPAY_ROOT_CERT_FILE: '/run/secrets/alipay_root_cert' }, /^ALIPAY_PUBLIC_KEY: given together with ALIPAY_ROOT_CERT; use either key mode/],
    ['a certificate mode without the root chain', { ...certMode, ALIPAY_ROOT_CERT: undefined }, /^ALIPAY_ROOT_CERT: required/],
    ['an app certificate that is not PEM', { ...certMode, ALIPAY_APP_CERT: 'MIIBIjANBgkq' }, /^ALIPAY_APP_CERT: not a PEM certificate/],
    ['an app certificate for another key', { ...certMode, ALIPAY_APP_CERT: pki.issueAppCert('2021000000000001', rsaPair().spki) }, /^ALIPAY_APP_CERT: does not match ALIPAY_PRIVATE_KEY/],
    ['an expired app certificate', { ...certMode, ALIPAY_APP_CERT: expiredAppCert }, /^ALIPAY_APP_CERT: expired on /],
    ["an expired Alipay certificate", { ...certMode, ALIPAY_PUBLIC_CERT: expiredAlipayCert }, /^ALIPAY_PUBLIC_CERT: expired on /],
    ["Alipay's public certificate as the root chain", { ...certMode, ALIPAY_ROOT_CERT: pki.alipayCert.certificate }, /^ALIPAY_ROOT_CERT: certificate 1 \(C=CN, O=durapay Alipay simulator, CN=Simulated Alipay\) is not a self-signed root CA certificate/],
    ['a self-signed certificate that is no CA as the root chain', { ...certMode, ALIPAY_ROOT_CERT: pki.rootChain + selfSignedLeaf }, /^ALIPAY_ROOT_CERT: certificate 3 \(CN=not a CA\) is not a self-signed root CA certificate/],
    ['a root chain without an RSA root', { ...certMode, ALIPAY_ROOT_CERT: issue({ usage: 'ca', commonName: 'ECC root' }).cert }, /^ALIPAY_ROOT_CERT: holds no RSA root certificate/],
    ['the root chain as the public certificate', { ...certMode, ALIPAY_PUBLIC_CERT: pki.rootChain }, /^ALIPAY_PUBLIC_CERT: a self-signed root CA certificate/],
    ["another Alipay environment's public certificate", { ...certMode, ALIPAY_PUBLIC_CERT: sandbox.alipayCert.certificate }, /^ALIPAY_PUBLIC_CERT: not issued under ALIPAY_ROOT_CERT \(no root there signed C=CN, O=durapay Alipay simulator, OU=Certification Authority, CN=Simulated Alipay Class 2 CA/],
    ["the app's own certificate as Alipay's", { ...certMode, ALIPAY_PUBLIC_CERT: appCert + pki.ca.certificate }, /^ALIPAY_PUBLIC_CERT: holds the app's own public key/],
  ])('refuses %s, naming the variable', (_name, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('checks what the API reads the same way', () => {
    expect(() => loadApiConfig({ ...certMode, ALIPAY_PUBLIC_KEY: bare(alipay.spki) })).toThrow(/^ALIPAY_PUBLIC_KEY: given together with/);
    expect(() => loadApiConfig({ ...certMode, ALIPAY_ROOT_CERT: pki.alipayCert.certificate })).toThrow(/^ALIPAY_ROOT_CERT: certificate 1 .* is not a self-signed root CA certificate/);
    expect(() => loadApiConfig({ ...certMode, ALIPAY_PUBLIC_CERT: expiredAlipayCert })).toThrow(/^ALIPAY_PUBLIC_CERT: expired on /);
  });
});
