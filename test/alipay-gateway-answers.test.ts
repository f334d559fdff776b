// Gateway answers crafted byte by byte, served over loopback HTTP to the real alipay-sdk client that
// createAlipayClient configures, and read through the query activity the workflow calls. alipay-sdk
// verifies the signature over text it finds by searching the raw body, but reads the answer with
// JSON.parse: any body where the two can differ must fail like an unverifiable answer.
import { createSign, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlipayActivities } from '../activities/alipay.js';
import { createAlipayClient } from '../lib/alipay/client.js';

const pem = (key: { export(options: { type: 'pkcs8' | 'spki'; format: 'pem' }): string | Buffer }, type: 'pkcs8' | 'spki') =>
  key.export({ type, format: 'pem' }).toString();
const alipay = generateKeyPairSync('rsa', { modulusLength: 2048 });
const app = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** What Alipay does: RSA2 over the exact bytes of the response object. */
const alipaySign = (text: string) => createSign('RSA-SHA256').update(text, 'utf8').sign(alipay.privateKey, 'base64');

const KEY = 'alipay_trade_query_response';
const genuine =
  '{"code":"10000","msg":"Success","out_trade_no":"T-1","trade_no":"2024010122001400000000000001",' +
  '"trade_status":"WAIT_BUYER_PAY","total_amount":"10.00"}';
const forged =
  '{"code":"10000","msg":"Success","out_trade_no":"T-1","trade_no":"2024010122001400000000000001",' +
  '"trade_status":"TRADE_SUCCESS","total_amount":"10.00","send_pay_date":"2024-01-01 12:00:00"}';

let server: Server;
let body = '';
let served = 0;
let activities: ReturnType<typeof createAlipayActivities>;

beforeAll(async () => {
  server = createServer((_req, res) => {
    served += 1;
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = createAlipayClient({
    appId: '2021000000000000',
    privateKey: pem(app.privateKey, 'pkcs8'),
    credentials: { mode: 'key', alipayPublicKey: pem(alipay.publicKey, 'spki') },
    gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway.do`,
  });
  activities = createAlipayActivities({ client: async () => client }, { unplaceableRetryMs: 60_000 });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Serves `text` as the gateway's next answer and asks for it through the activity. */
async function query(text: string, firstScheduledAt = Date.now()) {
  body = text;
  const before = served;
  const env = new MockActivityEnvironment({ scheduledTimestampMs: firstScheduledAt });
  const outcome = env.run(activities.queryTrade, { outTradeNo: 'T-1' });
  // Whatever the outcome, it must come from the crafted body, not from a connection error.
  await outcome.catch(() => undefined);
  expect(served).toBe(before + 1);
  return outcome;
}

/** An unverifiable answer: a retryable failure, never an outcome. */
// Retried (in case it was transient) until the worker's bound, never taken as an outcome.
const unverifiable = { type: 'AlipayUnexpectedAnswer', nonRetryable: false };

describe('gateway answers through createAlipayClient and queryTrade', () => {
  it('returns the outcome of a normal signed answer', async () => {
    await expect(query(`{"${KEY}":${genuine},"sign":"${alipaySign(genuine)}"}`)).resolves.toMatchObject({
      source: 'query',
      outTradeNo: 'T-1',
      tradeStatus: 'WAIT_BUYER_PAY',
      totalAmount: '10.00',
    });
  });

  it('returns the outcome of a signed answer that carries alipay_cert_sn, as in certificate mode', async () => {
    const text = `{"${KEY}":${genuine},"alipay_cert_sn":"4f1f4b5e0e4a6b0c","sign":"${alipaySign(genuine)}"}`;
    await expect(query(text)).resolves.toMatchObject({ tradeStatus: 'WAIT_BUYER_PAY' });
  });

  it('refuses a second response object after the signed one (JSON.parse would keep the forged one)', async () => {
    const text = `{"${KEY}":${genuine},"${KEY}":${forged},"sign":"${alipaySign(genuine)}"}`;
    await expect(query(text)).rejects.toMatchObject({ ...unverifiable, message: expect.stringMatching(/repeats the key "alipay_trade_query_response"/) });
    // The same key spelled with an escape is the same key to JSON.parse.
    const escaped = `{"${KEY}":${genuine},"${KEY.replace(/e$/, '\\u0065')}":${forged},"sign":"${alipaySign(genuine)}"}`;
    expect(escaped).toContain('respons\\u0065"');
    await expect(query(escaped)).rejects.toMatchObject({ ...unverifiable, message: expect.stringMatching(/repeats the key "alipay_trade_query_response"/) });
  });

  it('refuses a forged response object after the sign, behind a look-alike key that draws the SDK to the genuine one', async () => {
    // No key repeats here: the SDK finds `…alipay_trade_query_response"` inside the look-alike key,
    // verifies the genuine object after it, and JSON.parse hands back the forged one.
    const text = `{"x${KEY}":${genuine},"sign":"${alipaySign(genuine)}","${KEY}":${forged}}`;
    await expect(query(text)).rejects.toMatchObject({ ...unverifiable, message: expect.stringMatching(/not the text the signature covers/) });
  });

  it('refuses a repeated key inside the signed response object, even with a good signature', async () => {
    // Signed over the exact bytes, yet two readers may disagree on which trade_status it says.
    const ambiguous = genuine.replace('"trade_status":"WAIT_BUYER_PAY"', '"trade_status":"WAIT_BUYER_PAY","trade_status":"TRADE_SUCCESS"');
    const text = `{"${KEY}":${ambiguous},"sign":"${alipaySign(ambiguous)}"}`;
    await expect(query(text)).rejects.toMatchObject({ ...unverifiable, message: expect.stringMatching(/repeats the key "trade_status"/) });
  });

  it('refuses a repeated sign key, whichever of the two is good', async () => {
    const good = alipaySign(genuine);
    const bad = alipaySign(forged);
    for (const signs of [`"sign":"${bad}","sign":"${good}"`, `"sign":"${good}","sign":"${bad}"`]) {
      await expect(query(`{"${KEY}":${genuine},${signs}}`)).rejects.toMatchObject({
        ...unverifiable,
        message: expect.stringMatching(/repeats the key "sign"/),
      });
    }
  });

  it('still refuses a plainly forged answer and a bad signature', async () => {
    await expect(query(`{"${KEY}":${forged},"sign":"${alipaySign(genuine)}"}`)).rejects.toMatchObject(unverifiable);
    await expect(query(`{"${KEY}":${genuine}}`)).rejects.toMatchObject(unverifiable);
  });

  it('stops retrying an answer it cannot place once the bound has passed, and says it is unplaceable', async () => {
    const text = `{"${KEY}":${genuine},"${KEY}":${forged},"sign":"${alipaySign(genuine)}"}`;
    await expect(query(text, Date.now() - 61_000)).rejects.toMatchObject({ type: 'AlipayUnplaceableAnswer', nonRetryable: true });
  });
});
