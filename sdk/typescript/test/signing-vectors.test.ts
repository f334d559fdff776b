// Every shared vector (sdk/signing-vectors.json) through the SDK's signer and verifier, and the
// client's middleware signing the bytes it actually sends.
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bodySha256,
  Durapay,
  requestSignature,
  SIGNATURE_HEADERS,
  stringToSign,
  verifyWebhook,
  WebhookSignatureError,
} from '../src/index.js';

interface RequestVector {
  name: string;
  secret: string;
  method: string;
  pathWithQuery: string;
  timestamp: string;
  nonce: string;
  body: string;
  bodySha256: string;
  stringToSign: string;
  signature: string;
}
interface WebhookVector {
  name: string;
  body: string;
  header: string;
  secret: string;
  now: number;
  toleranceSeconds: number;
  valid: boolean;
}

const vectors = JSON.parse(readFileSync(new URL('../../signing-vectors.json', import.meta.url), 'utf8')) as {
  requests: RequestVector[];
  webhooks: WebhookVector[];
};

describe('request signing vectors', () => {
  it('the vector file has request vectors', () => expect(vectors.requests.length).toBeGreaterThanOrEqual(3));

  for (const v of vectors.requests) {
    it(`signs: ${v.name}`, () => {
      const parts = { method: v.method, pathWithQuery: v.pathWithQuery, timestamp: v.timestamp, nonce: v.nonce, body: v.body };
      expect(bodySha256(v.body)).toBe(v.bodySha256);
      expect(bodySha256(Buffer.from(v.body, 'utf8'))).toBe(v.bodySha256);
      expect(stringToSign(parts)).toBe(v.stringToSign);
      expect(requestSignature(v.secret, parts)).toBe(v.signature);
      // The same bytes as a Uint8Array sign the same.
      expect(requestSignature(v.secret, { ...parts, body: new Uint8Array(Buffer.from(v.body, 'utf8')) })).toBe(v.signature);
    });
  }
});

describe('webhook verification vectors', () => {
  it('the vector file has webhook vectors, valid and not', () => {
    expect(vectors.webhooks.some((v) => v.valid)).toBe(true);
    expect(vectors.webhooks.some((v) => !v.valid)).toBe(true);
  });

  for (const v of vectors.webhooks) {
    it(`${v.valid ? 'accepts' : 'refuses'}: ${v.name}`, () => {
      const options = { toleranceSeconds: v.toleranceSeconds, now: new Date(v.now * 1000) };
      for (const body of [v.body, Buffer.from(v.body, 'utf8')]) {
        if (v.valid) {
          const event = verifyWebhook(v.secret, body, v.header, options);
          expect(event).toEqual(JSON.parse(v.body));
          // A list of secrets verifies when any one of them does; milliseconds work as now.
          expect(verifyWebhook(['whsec_not_this_one', v.secret], body, v.header, { ...options, now: v.now * 1000 }).id).toBe(event.id);
        } else {
          expect(() => verifyWebhook(v.secret, body, v.header, options)).toThrow(WebhookSignatureError);
        }
      }
    });
  }

  it('says why: malformed, stale or bad signature', () => {
    const v = vectors.webhooks.find((w) => w.valid)!;
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(WebhookSignatureError);
        return (err as WebhookSignatureError).reason;
      }
      return 'accepted';
    };
    const at = (seconds: number) => ({ now: new Date(seconds * 1000) });
    expect(reason(() => verifyWebhook(v.secret, v.body, undefined, at(v.now)))).toBe('malformed');
    expect(reason(() => verifyWebhook(v.secret, v.body, 'garbage', at(v.now)))).toBe('malformed');
    expect(reason(() => verifyWebhook(v.secret, v.body, v.header.split(',')[0]!, at(v.now)))).toBe('malformed');
    expect(reason(() => verifyWebhook(v.secret, v.body, v.header, at(v.now + 301)))).toBe('stale');
    expect(reason(() => verifyWebhook(v.secret, v.body, v.header, { ...at(v.now + 301), toleranceSeconds: 600 }))).toBe('accepted');
    expect(reason(() => verifyWebhook('whsec_wrong', v.body, v.header, at(v.now)))).toBe('bad_signature');
    expect(reason(() => verifyWebhook(v.secret, `${v.body} `, v.header, at(v.now)))).toBe('bad_signature');
    // A genuine signature over something that is not an event: still refused.
    const t = v.now;
    const notJson = 'not json';
    const header = `t=${t},v1=${createHmac('sha256', v.secret).update(`${t}.${notJson}`).digest('hex')}`;
    expect(reason(() => verifyWebhook(v.secret, notJson, header, at(t)))).toBe('malformed');
    expect(() => verifyWebhook([], v.body, v.header, at(v.now))).toThrow(TypeError);
  });
});

describe('the client signs what it sends', () => {
  const merchantId = 'mtest00001';
  const secret = 'sk_test_client_secret';

  /** A client whose fetch records each request and answers `answer`. */
  function recordingClient(answer: () => Response) {
    const sent: { method: string; pathWithQuery: string; headers: Headers; body: Buffer }[] = [];
    const durapay = new Durapay({
      apiUrl: 'http://durapay.test/',
      merchantId,
      secret,
      fetch: async (request) => {
        const url = new URL(request.url);
        sent.push({ method: request.method, pathWithQuery: url.pathname + url.search, headers: request.headers, body: Buffer.from(await request.arrayBuffer()) });
        return answer();
      },
    });
    return { durapay, sent };
  }
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

  function expectSigned(request: { method: string; pathWithQuery: string; headers: Headers; body: Buffer }) {
    const timestamp = request.headers.get(SIGNATURE_HEADERS.timestamp)!;
    const nonce = request.headers.get(SIGNATURE_HEADERS.nonce)!;
    expect(request.headers.get(SIGNATURE_HEADERS.merchant)).toBe(merchantId);
    expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    // Recomputed from the raw bytes received, independently of the SDK's signer.
    const s = [request.method, request.pathWithQuery, timestamp, nonce, bodySha256(request.body)].join('\n');
    expect(request.headers.get(SIGNATURE_HEADERS.signature)).toBe(`v1=${createHmac('sha256', secret).update(s).digest('hex')}`);
  }

  it('a JSON body with non-ASCII text: the hash is over the UTF-8 bytes sent', async () => {
    const { durapay, sent } = recordingClient(() => json(201, { outTradeNo: 'o-1', status: 'AWAITING_PAYMENT' }));
    await durapay.payments.create({ outTradeNo: 'o-1', amount: '12.50', subject: '一杯 茶 "tea" ☕' });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.pathWithQuery).toBe('/v1/payments');
    expect(sent[0]!.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(sent[0]!.body.toString('utf8')).subject).toBe('一杯 茶 "tea" ☕');
    expectSigned(sent[0]!);
  });

  it('a query and a percent-encoded path, signed exactly as sent; a fresh nonce each time', async () => {
    const { durapay, sent } = recordingClient(() => json(200, { payments: [], nextCursor: null, refunds: [] }));
    await durapay.payments.list({ status: 'PAID', limit: 5 });
    await durapay.refunds.list('order/7 x');
    expect(sent.map((r) => r.pathWithQuery)).toEqual(['/v1/payments?status=PAID&limit=5', '/v1/payments/order%2F7%20x/refunds']);
    expect(sent[1]!.body.length).toBe(0);
    sent.forEach(expectSigned);
    expect(sent[0]!.headers.get(SIGNATURE_HEADERS.nonce)).not.toBe(sent[1]!.headers.get(SIGNATURE_HEADERS.nonce));
  });

  it('an API URL with a path prefix: the prefix is part of what is signed', async () => {
    const sent: string[] = [];
    const durapay = new Durapay({
      apiUrl: 'http://durapay.test/pay-api',
      merchantId,
      secret,
      fetch: async (request) => {
        sent.push(new URL(request.url).pathname);
        expectSigned({ method: request.method, pathWithQuery: new URL(request.url).pathname, headers: request.headers, body: Buffer.alloc(0) });
        return json(200, { outTradeNo: 'a' });
      },
    });
    await durapay.payments.get('a');
    expect(sent).toEqual(['/pay-api/v1/payments/a']);
  });
});
