// Envelope encryption of secrets at rest: a data key per secret, wrapped by the master key; and the
// keys derived from the master key for the API, which open no Alipay key and no payment code.
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyVaultError, MasterKeyProvider, merchantSecretsVault, openSecret, rewrapSecret, sealSecret } from '../lib/platform/key-vault.js';
import { deriveApiKeys, deriveKey, formatApiKeys, parseApiKeys } from '../lib/platform/master-key.js';
import { PaymentCodeOpener, PaymentCodeSealer } from '../lib/alipay/payment-code.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';

describe('key vault', () => {
  it('seals a secret so that neither it nor its data key shows, and opens it again', async () => {
    const provider = new MasterKeyProvider(randomBytes(32));
    const sealed = await sealSecret(provider, PEM, 'alipay_apps:2021000000000001:private_key');
    const stored = JSON.stringify(sealed);
    expect(stored).not.toContain('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC');
    expect(stored).not.toContain('PRIVATE KEY');
    expect(sealed.key.keyId).toBe(provider.keyId);
    expect(await openSecret(provider, sealed, 'alipay_apps:2021000000000001:private_key')).toBe(PEM);
    // Two seals of one secret share nothing.
    expect((await sealSecret(provider, PEM, 'x')).ciphertext).not.toBe((await sealSecret(provider, PEM, 'x')).ciphertext);
  });

  it('refuses another row, another master key, and any altered byte', async () => {
    const provider = new MasterKeyProvider(randomBytes(32));
    const sealed = await sealSecret(provider, PEM, 'alipay_apps:A:private_key');
    await expect(openSecret(provider, sealed, 'alipay_apps:B:private_key')).rejects.toThrow(KeyVaultError);
    await expect(openSecret(new MasterKeyProvider(randomBytes(32)), sealed, 'alipay_apps:A:private_key')).rejects.toThrow(/wrapped by local:/);
    const flipped = Buffer.from(sealed.ciphertext, 'base64url');
    flipped[0]! ^= 1;
    await expect(openSecret(provider, { ...sealed, ciphertext: flipped.toString('base64url') }, 'alipay_apps:A:private_key')).rejects.toThrow(KeyVaultError);
  });

  it('refuses a tag cut short, on the secret and on its wrapped data key: GCM would check the first bytes only', async () => {
    const provider = new MasterKeyProvider(randomBytes(32));
    const sealed = await sealSecret(provider, PEM, 'ctx');
    const cut = (tag: string) => Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    await expect(openSecret(provider, { ...sealed, tag: cut(sealed.tag) }, 'ctx')).rejects.toThrow(KeyVaultError);
    const [iv, body, tag] = sealed.key.wrapped.split('.') as [string, string, string];
    const shortWrapped = { ...sealed, key: { ...sealed.key, wrapped: `${iv}.${body}.${cut(tag)}` } };
    await expect(openSecret(provider, shortWrapped, 'ctx')).rejects.toThrow(/does not open: it was altered/);
    expect(await openSecret(provider, sealed, 'ctx')).toBe(PEM);
  });

  it('rotates the master key by re-wrapping the data key: the ciphertext stays, the old key no longer opens it', async () => {
    const [oldKey, newKey] = [new MasterKeyProvider(randomBytes(32)), new MasterKeyProvider(randomBytes(32))];
    const sealed = await sealSecret(oldKey, PEM, 'ctx');
    const rotated = await rewrapSecret(oldKey, newKey, sealed);
    expect(rotated.ciphertext).toBe(sealed.ciphertext);
    expect(rotated.key.keyId).toBe(newKey.keyId);
    expect(await openSecret(newKey, rotated, 'ctx')).toBe(PEM);
    await expect(openSecret(oldKey, rotated, 'ctx')).rejects.toThrow(KeyVaultError);
  });
});

describe('payment code seal', () => {
  const orderId = 'payment:2021000000000001:m1_order_1';
  const code = '284123456789012345';

  it('opens for its own order only, and not with a tag cut short', () => {
    const master = randomBytes(32);
    const { sealed } = new PaymentCodeSealer(deriveApiKeys(master)).seal(code, orderId);
    const keys = new PaymentCodeOpener(master);
    expect(keys.open(sealed, orderId)).toBe(code);
    expect(keys.open(sealed, 'payment:2021000000000001:m1_order_2')).toBeUndefined();
    const parts = sealed.split('.');
    const shortTag = Buffer.from(parts.at(-1)!, 'base64url').subarray(0, 4).toString('base64url');
    expect(keys.open([...parts.slice(0, -1), shortTag].join('.'), orderId)).toBeUndefined();
  });
});

describe('the keys the API holds (DURAPAY_API_KEYS)', () => {
  const master = randomBytes(32);
  const orderId = 'payment:2021000000000001:mabc123456-order-1';
  const code = '286000111122223333';

  it('seal payment codes that only the master key opens: the API cannot open what it sealed', () => {
    const apiKeys = parseApiKeys(formatApiKeys(deriveApiKeys(master)))!;
    const sealer = new PaymentCodeSealer(apiKeys);
    const sealed = sealer.seal(code, orderId);
    expect(sealed.sealed).not.toContain(code);
    expect(sealed.masked).toBe('28************3333');
    expect('open' in sealer).toBe(false);
    // Nothing in what the API holds is a key that opens the seal: not the text, not any part of it.
    const opener = new PaymentCodeOpener(master);
    expect(opener.open(sealed.sealed, orderId)).toBe(code);
    expect(opener.open(sealed.sealed, `${orderId}-other`)).toBeUndefined();
    expect(new PaymentCodeOpener(randomBytes(32)).open(sealed.sealed, orderId)).toBeUndefined();
    // The same code fingerprints the same under the master key and under the API's keys.
    expect(sealer.fingerprint(code)).toBe(new PaymentCodeSealer(deriveApiKeys(master)).fingerprint(code));
  });

  it('still open a payment code sealed before the upgrade, under the key the API and the worker shared', () => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', deriveKey(master, 'payment-code seal v1'), iv);
    cipher.setAAD(Buffer.from(orderId));
    const body = Buffer.concat([cipher.update(code, 'utf8'), cipher.final()]);
    const v1 = ['v1', iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    expect(new PaymentCodeOpener(master).open(v1, orderId)).toBe(code);
  });

  it('hold neither the master key nor the key that wraps the Alipay private keys', async () => {
    const text = formatApiKeys(deriveApiKeys(master));
    const forbidden = [master, deriveKey(master, 'data-key wrapping v1'), deriveKey(master, 'payment-code seal v1')];
    for (const key of forbidden) for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(text).not.toContain(key.toString(encoding));
    expect(parseApiKeys('not keys')).toBeUndefined();
    // Merchant secrets sealed through the worker's view of the master key open with the API's keys.
    const sealed = await sealSecret(merchantSecretsVault(deriveApiKeys(master).merchantSecrets), 'sk_x', 'merchants:m1:api_secret');
    expect(await openSecret(merchantSecretsVault(parseApiKeys(text)!.merchantSecrets), sealed, 'merchants:m1:api_secret')).toBe('sk_x');
    await expect(openSecret(new MasterKeyProvider(master), sealed, 'merchants:m1:api_secret')).rejects.toThrow(KeyVaultError);
  });
});
