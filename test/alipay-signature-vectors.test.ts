// Real Alipay RSA2 vectors from public SDK test suites, run through durapay's own verification:
// notifies through verifyNotifySignature (the API's check), responses through the configured
// alipay-sdk client's exec with validateSign, served over loopback HTTP exactly as received.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlipayClient } from '../lib/alipay/client.js';
import { verifyNotifySignature } from '../lib/alipay/notify.js';

interface Vectors {
  publicKeys: Record<string, string>;
  notify: { id: string; key: string; expect: boolean; params: Record<string, string> }[];
  responses: { id: string; key: string; responseKey: string; signed: string; sign: string; expect: boolean }[];
}

const vectors: Vectors = JSON.parse(
  readFileSync(new URL('./fixtures/alipay-signatures.json', import.meta.url), 'utf8'),
);
const appPrivateKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

describe('notify vectors', () => {
  it.each(vectors.notify.map((v) => [v.id, v] as const))('%s', (_id, vector) => {
    const verifier = createAlipayClient({ appId: vector.params.app_id ?? '0', credentials: { mode: 'key', alipayPublicKey: vectors.publicKeys[vector.key]! } });
    expect(verifyNotifySignature(verifier, vector.params)).toBe(vector.expect);
  });
});

describe('gateway response vectors', () => {
  let server: Server;
  let gatewayUrl: string;
  let nextBody = '';

  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' }).end(nextBody);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway.do`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each(vectors.responses.map((v) => [v.id, v] as const))('%s', async (_id, vector) => {
    nextBody = `{"${vector.responseKey}":${vector.signed},"sign":"${vector.sign}"}`;
    const client = createAlipayClient({
      appId: '2021000000000000',
      privateKey: appPrivateKey,
      credentials: { mode: 'key', alipayPublicKey: vectors.publicKeys[vector.key]! },
      gatewayUrl,
    });
    const method = vector.responseKey.replace(/_response$/, '').replaceAll('_', '.');
    const call = client.exec(method, {}, { validateSign: true });
    if (vector.expect) {
      await expect(call).resolves.toMatchObject({ code: JSON.parse(vector.signed).code });
    } else {
      await expect(call).rejects.toThrow(/验签失败/);
    }
  });

  it('covers every vector in the file', () => {
    expect(vectors.notify.length).toBeGreaterThanOrEqual(6);
    expect(vectors.responses.length).toBeGreaterThanOrEqual(11);
    expect(vectors.notify.some((v) => !v.expect) && vectors.responses.some((v) => !v.expect)).toBe(true);
  });
});
