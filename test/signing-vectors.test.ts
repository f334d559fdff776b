// The signing vectors every SDK checks itself against (sdk/signing-vectors.json): the server's own
// signer and verifier give and accept exactly what the file says.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requestSignature, requestSignatureMatches, stringToSign, verifyWebhookSignature } from '../lib/merchants/signing.js';

interface Vectors {
  requests: { name: string; secret: string; method: string; pathWithQuery: string; timestamp: string; nonce: string; body: string; stringToSign: string; signature: string }[];
  webhooks: { name: string; body: string; header: string; secret: string; now: number; toleranceSeconds: number; valid: boolean }[];
}
const vectors = JSON.parse(readFileSync(new URL('../sdk/signing-vectors.json', import.meta.url), 'utf8')) as Vectors;

describe('the shared signing vectors, on the server', () => {
  it.each(vectors.requests)('request: $name', (v) => {
    expect(stringToSign(v)).toBe(v.stringToSign);
    expect(requestSignature(v.secret, v)).toBe(v.signature);
    expect(requestSignatureMatches(v.secret, { ...v, body: Buffer.from(v.body, 'utf8') }, v.signature)).toBe(true);
    expect(requestSignatureMatches(v.secret, { ...v, body: `${v.body} ` }, v.signature)).toBe(false);
  });

  it.each(vectors.webhooks)('webhook: $name', (v) => {
    expect(verifyWebhookSignature(v.secret, v.header, Buffer.from(v.body, 'utf8'), { toleranceSeconds: v.toleranceSeconds, now: v.now * 1000 })).toBe(v.valid);
  });

  it('holds at least one rotation header with two v1 values', () => {
    expect(vectors.webhooks.some((v) => v.valid && v.header.split(',').filter((part) => part.startsWith('v1=')).length === 2)).toBe(true);
  });
});
