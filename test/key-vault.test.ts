// Envelope encryption of secrets at rest: a data key per secret, wrapped by the master key.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyVaultError, MasterKeyProvider, openSecret, rewrapSecret, sealSecret } from '../lib/key-vault.js';
import { PaymentCodeKeys } from '../lib/payment-code.js';

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
    const keys = new PaymentCodeKeys(randomBytes(32));
    const { sealed } = keys.seal(code, orderId);
    expect(keys.open(sealed, orderId)).toBe(code);
    expect(keys.open(sealed, 'payment:2021000000000001:m1_order_2')).toBeUndefined();
    const [version, iv, body, tag] = sealed.split('.') as [string, string, string, string];
    const shortTag = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    expect(keys.open([version, iv, body, shortTag].join('.'), orderId)).toBeUndefined();
  });
});
