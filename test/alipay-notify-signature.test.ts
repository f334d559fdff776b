// Notify signatures as Alipay makes them, checked by verifyNotifySignature and readNotify with the
// verifier createAlipayClient configures (the API's own). Keys are generated here; the signing
// below is written out from Alipay's Java SDK (AlipaySignature.getSignContent), not borrowed from
// the code under test.
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAlipayClient } from '../lib/alipay/client.js';
import { readNotify, verifyNotifySignature } from '../lib/alipay/notify.js';

const APP_ID = '2021000000000042';
const alipay = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const verifier = createAlipayClient({
  appId: APP_ID,
  credentials: { mode: 'key', alipayPublicKey: alipay.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
});

/** Java's StringUtils.isEmpty: "" or only whitespace (ASCII whitespace is all these tests use). */
const javaEmpty = (value: string) => /^[ \t\n\v\f\r]*$/.test(value);

/**
 * Alipay's sign content for a trade notify: every parameter but sign and sign_type whose value is
 * not empty, sorted by key, `k=v` joined by `&`, over the decoded values.
 */
function alipayContent(params: Record<string, string>, { keepEmpty = false } = {}): string {
  return Object.keys(params)
    .filter((key) => key !== 'sign' && key !== 'sign_type' && (keepEmpty || !javaEmpty(params[key]!)))
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

function signed(
  params: Record<string, string>,
  { algorithm = 'RSA-SHA256', key = alipay.privateKey, signType = 'RSA2' as string | undefined, keepEmpty = false }: {
    algorithm?: 'RSA-SHA256' | 'RSA-SHA1';
    key?: KeyObject;
    signType?: string;
    keepEmpty?: boolean;
  } = {},
): Record<string, string> {
  const sign = createSign(algorithm).update(alipayContent(params, { keepEmpty }), 'utf8').sign(key, 'base64');
  return { ...params, ...(signType === undefined ? {} : { sign_type: signType }), sign };
}

const paid: Record<string, string> = {
  notify_time: '2024-05-01 12:00:05',
  notify_type: 'trade_status_sync',
  notify_id: '2024050100222120005000000000000001',
  app_id: APP_ID,
  auth_app_id: APP_ID,
  charset: 'utf-8',
  version: '1.0',
  trade_no: '2024050122001400000000000001',
  out_trade_no: 'ORDER-1',
  buyer_id: '2088102100000001',
  seller_id: '2088102100000002',
  trade_status: 'TRADE_SUCCESS',
  total_amount: '10.00',
  receipt_amount: '10.00',
  buyer_pay_amount: '10.00',
  subject: '咖啡 x1',
  gmt_create: '2024-05-01 11:59:50',
  gmt_payment: '2024-05-01 12:00:03',
  fund_bill_list: '[{"amount":"10.00","fundChannel":"ALIPAYACCOUNT"}]',
};

describe('sign_type never moves verification away from RSA2 (SHA256withRSA)', () => {
  it('rejects a notify signed SHA1withRSA by the right Alipay key that says sign_type=RSA', () => {
    const notify = signed(paid, { algorithm: 'RSA-SHA1', signType: 'RSA' });
    expect(verifyNotifySignature(verifier, notify)).toBe(false);
    expect(readNotify(verifier, APP_ID, notify)).toEqual({ ok: false, reason: 'signature does not verify', rejection: 'bad_signature' });
  });

  it('rejects a SHA1withRSA signature whatever sign_type says', () => {
    for (const signType of ['RSA2', 'rsa', 'MD5', undefined]) {
      expect(verifyNotifySignature(verifier, signed(paid, { algorithm: 'RSA-SHA1', signType }))).toBe(false);
    }
  });

  it('verifies an RSA2 notify whether sign_type says RSA, RSA2 or nothing: it is not in the signed content', () => {
    for (const signType of ['RSA', 'RSA2', undefined]) {
      const notify = signed(paid, { signType });
      expect(verifyNotifySignature(verifier, notify)).toBe(true);
      expect(readNotify(verifier, APP_ID, notify)).toMatchObject({ ok: true, report: { outTradeNo: 'ORDER-1', tradeStatus: 'TRADE_SUCCESS' } });
    }
  });

  it('rejects an RSA2 notify signed by another key, or with a changed amount', () => {
    expect(verifyNotifySignature(verifier, signed(paid, { key: stranger.privateKey }))).toBe(false);
    expect(verifyNotifySignature(verifier, { ...signed(paid), total_amount: '0.01' })).toBe(false);
  });
});

describe('empty values: left out of the signed content, as Alipay signs', () => {
  const withEmpty = { ...paid, body: '', passback_params: '' };

  it('verifies a notify with empty parameters signed the way Alipay signs it', () => {
    const notify = signed(withEmpty);
    expect(alipayContent(withEmpty)).not.toMatch(/(^|&)(body|passback_params)=/);
    expect(verifyNotifySignature(verifier, notify)).toBe(true);
    expect(readNotify(verifier, APP_ID, notify)).toMatchObject({ ok: true, report: { outTradeNo: 'ORDER-1', totalAmount: '10.00' } });
  });

  it('treats a value of only whitespace as empty, like Alipay', () => {
    expect(verifyNotifySignature(verifier, signed({ ...paid, body: '  ' }))).toBe(true);
  });

  it("rejects one signed with the empty parameters kept in (alipay-sdk's own notify convention, not Alipay's)", () => {
    expect(verifyNotifySignature(verifier, signed(withEmpty, { keepEmpty: true }))).toBe(false);
  });

  it('rejects filling in a parameter that was signed empty', () => {
    expect(verifyNotifySignature(verifier, { ...signed(withEmpty), body: 'refund me' })).toBe(false);
  });

  it('takes no data from an empty parameter, which the signature does not cover', () => {
    const { seller_id: _sellerId, ...withoutSeller } = paid;
    // Anyone can add an empty parameter to a signed notify without breaking the signature.
    const notify = { ...signed(withoutSeller), seller_id: '' };
    expect(verifyNotifySignature(verifier, notify)).toBe(true);
    const verdict = readNotify(verifier, APP_ID, notify);
    expect(verdict.ok).toBe(true);
    expect(verdict.ok && verdict.report.sellerId).toBeUndefined();
  });
});
