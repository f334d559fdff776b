// Envelope encryption of secrets at rest: a data key per secret, wrapped by the master key.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyVaultError, MasterKeyProvider, openSecret, rewrapSecret, sealSecret } from '../lib/key-vault.js';

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
