// Configuration is validated at start, and a bad value names its variable and what is wrong.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadApiConfig, loadConfig } from '../lib/config.js';

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
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/durapay',
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
    expect(config.timings).toEqual({ orderTimeoutMs: 900_000, pollLadderMs: [15_000, 30_000, 60_000, 120_000] });
    expect(config.port).toBe(3000);
    expect(config.temporal).toEqual({ address: 'localhost:7233', namespace: 'default', taskQueue: 'payments' });
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
    ['a bad poll ladder', { PAYMENT_POLL_LADDER: '15s,soon' }, /PAYMENT_POLL_LADDER: "15s,soon" is not a comma-separated list/],
    ['no gateway', { ALIPAY_GATEWAY_URL: undefined }, /ALIPAY_GATEWAY_URL: required/],
    ['a plain http gateway', { ALIPAY_GATEWAY_URL: 'http://openapi.alipay.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL \(plain http only on loopback/],
    ['a plain http gateway on a private address', { ALIPAY_GATEWAY_URL: 'http://10.0.0.5:8090/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
    ['a plain http gateway on a host named like loopback', { ALIPAY_GATEWAY_URL: 'http://localhost.example.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
    ['a plain http gateway on a host starting 127.', { ALIPAY_GATEWAY_URL: 'http://127.0.0.1.example.com/gateway.do' }, /ALIPAY_GATEWAY_URL: must be an https:\/\/ URL/],
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

  it('lets the API start without the private key or the gateway, which only the worker needs', () => {
    const { ALIPAY_PRIVATE_KEY: _p, ALIPAY_GATEWAY_URL: _g, ...apiEnv } = base;
    const config = loadApiConfig(apiEnv);
    expect(config.alipay).not.toHaveProperty('privateKey');
    expect(config.alipay.appId).toBe('2021000000000001');
  });
});
