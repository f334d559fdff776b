// Property-based fuzzing of the real API on a real stack: random bodies, headers, paths and query
// strings never get a 5xx, every 4xx is the documented JSON error object, and a refused request
// writes nothing (no payment, refund or event row, no call to the Alipay gateway).
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../api/openapi.js';
import { createPaymentBody } from '../api/payments.js';
import { createRefundBody } from '../api/refunds.js';
import { SIGNATURE_HEADERS, signRequest } from '../lib/merchants/signing.js';
import { startStack, type Stack } from './support/stack.js';

let stack: Stack;
let paidOrder: string;
let isErrorObject: (body: unknown) => boolean;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '120s', pollLadder: '1s' });
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allowUnionTypes: true });
  isErrorObject = ajv.compile(buildOpenApiDocument().components!.schemas!.Error as object);
  // One paid order, so refund bodies and paths reach the code behind the order lookup.
  paidOrder = stack.newOrderNo('fuzz-paid');
  expect((await stack.createPayment({ outTradeNo: paidOrder, amount: '10.00', subject: 'fuzz' })).status).toBe(201);
  await stack.simCall('POST', `/sim/trades/${paidOrder}/pay`);
  await stack.waitForStatus(paidOrder, 'PAID');
});
afterAll(async () => {
  await stack?.stop();
});

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

interface Answer {
  status: number;
  contentType: string;
  text: string;
  body: unknown;
}

/**
 * Sends as the stack's merchant. The path is signed as fetch will send it (WHATWG URL
 * normalisation), which is what the server sees; `headers` replace or (as null) drop signed ones.
 */
async function send(method: string, path: string, body?: string, headers: Record<string, string | null> = {}, sign = true): Promise<Answer> {
  const url = new URL(path, stack.api.url);
  const signed = sign ? signRequest(stack.merchant.id, stack.merchant.secret, { method, pathWithQuery: url.pathname + url.search, body }) : {};
  const all: Record<string, string | null> = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...signed, ...headers };
  const res = await fetch(url, {
    method,
    body,
    headers: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // judged below: a 4xx that is not JSON fails
  }
  return { status: res.status, contentType, text, body: parsed };
}

/** Never a 5xx; a 4xx is { error: { code, message, details } } as documented. */
function expectHandled(answer: Answer, what: string): void {
  expect(answer.status, `${what} → ${answer.status} ${answer.text.slice(0, 300)}`).toBeLessThan(500);
  if (answer.status >= 400) {
    expect(answer.contentType, what).toMatch(/^application\/json/);
    expect(isErrorObject(answer.body), `${what} → ${answer.text.slice(0, 300)}`).toBe(true);
  }
}

/** Everything a request could have written or sent. */
async function footprint() {
  const { rows } = await stack.pool.query(
    `SELECT (SELECT count(*) FROM payments)::int AS payments, (SELECT count(*) FROM refunds)::int AS refunds,
            (SELECT count(*) FROM payment_events)::int AS events`,
  );
  const calls = (await stack.simCall('GET', '/sim/calls')).body as unknown[];
  return { ...rows[0], paymentCount: await stack.paymentCount(), gatewayCalls: calls.length };
}

/** Runs the property, then checks that nothing was written and Alipay heard nothing. */
async function writesNothing(run: () => Promise<void>): Promise<void> {
  const before = await footprint();
  await run();
  expect(await footprint()).toEqual(before);
}

// --- arbitraries ---------------------------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: fc.oneof(fc.constantFrom('\u0000', '\u001f', '\u007f', '\u2028', '\ufeff', '🍵', 'é', '%', '"', '\\'), loneSurrogate), maxLength: 20 }),
  fc.string({ unit: 'grapheme', minLength: 250, maxLength: 300 }),
  fc.integer({ min: 1_000, max: 6_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', '12.50', '0.00', '-1.00', '1e3', 'NaN', 'order-1', 'https://example.com/h', 'javascript:alert(1)', 'http://\u0000/'),
);
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1, 120, 121, 1.5, Number.MAX_SAFE_INTEGER + 2, true, false, null),
  fc.jsonValue({ maxDepth: 3 }),
);
const pollutingKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', 'valueOf');

/** An object body as JSON text, keys kept as written (so "__proto__" is an own key once parsed). */
function objectBody(knownKeys: string[]): fc.Arbitrary<string> {
  const key = fc.oneof(fc.constantFrom(...knownKeys), pollutingKey, fc.string({ maxLength: 12 }));
  return fc
    .array(fc.tuple(key, nastyValue), { maxLength: 8 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
}

/** Any body at all: objects of the route's fields and worse, other JSON, deep nesting, not JSON. */
function anyBody(knownKeys: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: objectBody(knownKeys) },
    fc.json({ maxDepth: 4 }),
    fc.integer({ min: 1, max: 7_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
    fc.integer({ min: 1, max: 2_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom('null', '[]', '""', '0', 'true', '{', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"x":1}}}'),
  );
}

/** The body the route's own schema refuses: a body it accepts may rightly write. */
const refused = (schema: { safeParse(v: unknown): { success: boolean } }) => (text: string) => {
  try {
    return !schema.safeParse(JSON.parse(text)).success;
  } catch {
    return true;
  }
};

describe('random bodies, validly signed', () => {
  it('POST /v1/payments: a body its schema refuses gets a 4xx and writes nothing', async () => {
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(anyBody(Object.keys(createPaymentBody.shape)).filter(refused(createPaymentBody)), async (body) => {
          const answer = await send('POST', '/v1/payments', body);
          expectHandled(answer, `POST /v1/payments ${body.slice(0, 200)}`);
          expect(answer.status).toBeGreaterThanOrEqual(400);
        }),
        { numRuns: RUNS },
      ),
    );
    // Nothing leaked onto Object.prototype from a "__proto__" key.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('POST /v1/payments/:outTradeNo/refunds: a body its schema refuses gets a 4xx and writes nothing', async () => {
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(
          anyBody(Object.keys(createRefundBody.shape)).filter(refused(createRefundBody)),
          fc.constantFrom(paidOrder, 'no-such-order'),
          async (body, order) => {
            const answer = await send('POST', `/v1/payments/${order}/refunds`, body);
            expectHandled(answer, `POST refunds of ${order} ${body.slice(0, 200)}`);
            expect(answer.status).toBeGreaterThanOrEqual(400);
          },
        ),
        { numRuns: RUNS },
      ),
    );
  });

});

describe('what fuzzing found', () => {
  // Each of these was accepted and then failed or changed on its way to PostgreSQL (see the commit).
  it.each([
    ['a NUL in notifyUrl', { notifyUrl: 'https://example.com/\u0000' }, 'notifyUrl'],
    ['a space in notifyUrl', { notifyUrl: 'https://example.com/a b' }, 'notifyUrl'],
    ['a lone surrogate in notifyUrl', { notifyUrl: 'https://example.com/\ud800' }, 'notifyUrl'],
    ['a lone surrogate in subject', { subject: 'tea \udc00' }, 'subject'],
  ])('%s is a 400 that writes nothing', async (_name, override, field) => {
    await writesNothing(async () => {
      const body = JSON.stringify({ outTradeNo: stack.newOrderNo('found'), amount: '1.00', subject: 'tea', ...override });
      const answer = await send('POST', '/v1/payments', body);
      expectHandled(answer, body);
      expect(answer.status, answer.text).toBe(400);
      expect((answer.body as any).error.details.map((d: { field: string }) => d.field)).toEqual([field]);
    });
  });

  it('a lone surrogate in a refund reason is a 400 that writes nothing', async () => {
    await writesNothing(async () => {
      const answer = await send('POST', `/v1/payments/${paidOrder}/refunds`, JSON.stringify({ outRequestNo: 'r', amount: '1.00', reason: '\ud800' }));
      expect(answer.status, answer.text).toBe(400);
    });
  });
});

describe('random signature headers', () => {
  // Header values a client can send: visible ASCII and Latin-1, no CR, LF or NUL.
  const headerText = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 80 });
  const now = () => Math.floor(Date.now() / 1000);
  const badTimestamp = fc.oneof(
    headerText,
    fc.integer({ min: 301, max: 10 ** 9 }).map((d) => String(now() - d)),
    fc.integer({ min: 301, max: 10 ** 9 }).map((d) => String(now() + d)),
    fc.constantFrom('-1', '0', '1e9', '0x10', `${now()}.5`, ' ', '9'.repeat(13), '9'.repeat(400), String(Number.MAX_SAFE_INTEGER)),
  );
  const badNonce = fc.oneof(
    headerText,
    fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '-'), minLength: 16, maxLength: 64 }),
    fc.constantFrom('short', 'x'.repeat(65), 'é'.repeat(20), 'a b c d e f g h i j'),
  );
  const badSignature = fc.oneof(
    headerText,
    fc.stringMatching(/^v1=[0-9a-f]{64}$/),
    fc.constantFrom('v1=', 'v2=00', 'V1=' + '0'.repeat(64)),
  );
  type Mutation = { header: string; value: string | null } | { flip: true };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.constantFrom(...Object.values(SIGNATURE_HEADERS)).map((header) => ({ header, value: null })),
    badTimestamp.map((value) => ({ header: SIGNATURE_HEADERS.timestamp, value })),
    badNonce.map((value) => ({ header: SIGNATURE_HEADERS.nonce, value })),
    badSignature.map((value) => ({ header: SIGNATURE_HEADERS.signature, value })),
    headerText.map((value) => ({ header: SIGNATURE_HEADERS.merchant, value })),
    fc.constant({ flip: true as const }),
  );

  it('a request whose signature headers are missing or wrong gets 401 AUTH_* and writes nothing', async () => {
    let n = 0;
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
          const body = JSON.stringify({ outTradeNo: `auth-${++n}`, amount: '1.00', subject: 'must not be created' });
          const url = '/v1/payments';
          const headers: Record<string, string | null> = signRequest(stack.merchant.id, stack.merchant.secret, { method: 'POST', pathWithQuery: url, body });
          const original = { ...headers };
          for (const m of mutations) {
            if ('flip' in m) {
              // One character of a valid signature changed.
              const sig = headers[SIGNATURE_HEADERS.signature] ?? original[SIGNATURE_HEADERS.signature]!;
              headers[SIGNATURE_HEADERS.signature] = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
            } else {
              headers[m.header] = m.value;
            }
          }
          // fetch trims header values; a mutation that trims back to the original changed nothing.
          fc.pre(Object.keys(original).some((h) => headers[h]?.trim() !== original[h]));
          const answer = await send('POST', url, body, headers, false);
          expectHandled(answer, `POST ${url} with ${JSON.stringify(headers)}`);
          expect(answer.status, answer.text).toBe(401);
          expect((answer.body as { error: { code: string } }).error.code).toMatch(/^AUTH_/);
        }),
        { numRuns: RUNS },
      ),
    );
  });
});

describe('random paths and query strings, validly signed', () => {
  const segment = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }).map(encodeURIComponent),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('%', '%E0%A4%A', '%00', '%2F', '..', '.', '%2e%2e', 'x'.repeat(65), 'x'.repeat(5_000), '__proto__', 'constructor', '%F0%9F%8D%B5'),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  );
  const query = fc.oneof(
    fc.constant(''),
    fc.string({ unit: 'binary', maxLength: 80 }).map((q) => `?${q}`),
    fc
      .dictionary(fc.oneof(pollutingKey, fc.string({ maxLength: 10 }), fc.constantFrom('status', 'limit', 'cursor', 'createdFrom', 'createdTo')), fc.string({ unit: 'binary', maxLength: 30 }), { maxKeys: 5 })
      .map((d) => `?${new URLSearchParams(d)}`),
    fc.constantFrom('?limit=0', '?limit=101', '?limit=-1&limit=2', '?status[]=PAID', '?a[b][c]=1', '?__proto__[x]=1', '?cursor=%ZZ'),
  );
  const request = fc.oneof(
    fc.tuple(fc.constant('GET'), segment.map((s) => `/v1/payments/${s}`)),
    fc.tuple(fc.constant('GET'), segment.map((s) => `/v1/payments/${s}/refunds`)),
    fc.tuple(fc.constant('GET'), segment.map((s) => `/v1/payments/${paidOrder}/refunds/${s}`)),
    fc.tuple(fc.constant('GET'), segment.map((s) => `/v1/payments/${s}/events`)),
    fc.tuple(fc.constant('POST'), segment.map((s) => `/v1/payments/${s}/cancel`)),
    fc.tuple(fc.constant('POST'), segment.map((s) => `/v1/events/${s}/resend`)),
    fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), segment.map((s) => `/v1/${s}`)),
    fc.tuple(fc.constantFrom('GET', 'POST'), fc.constant('/v1/payments')),
  );

  it('never a 5xx, every 4xx the error object, and nothing written', async () => {
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(request, query, async ([method, path], q) => {
          // A POST to create carries no body here, so it is refused before anything is written.
          const answer = await send(method, path + q);
          expectHandled(answer, `${method} ${path}${q}`.slice(0, 400));
          if (method !== 'GET') expect(answer.status, `${method} ${path}${q}`).toBeGreaterThanOrEqual(400);
        }),
        { numRuns: RUNS * 2 },
      ),
    );
  });
});

// Last: these requests rightly write, so they run after every property that counts writes.
describe('odd but valid bodies', () => {
  it('POST /v1/payments: a body its schema accepts, however odd its text, is created and reads back as sent', async () => {
    let n = 0;
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
      fc.string({ unit: fc.oneof(fc.constantFrom('a', '茶', '🍵', '\u2028', '\ufeff', 'é'), loneSurrogate), minLength: 1, maxLength: 30 }),
    );
    const url = fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `https://example.com/${s}`));
    await fc.assert(
      fc.asyncProperty(text, fc.option(url, { nil: undefined }), async (subject, notifyUrl) => {
        const candidate = { outTradeNo: `fz-${Date.now().toString(36)}-${++n}`, amount: '0.01', subject, notifyUrl };
        fc.pre(createPaymentBody.safeParse(candidate).success);
        const answer = await send('POST', '/v1/payments', JSON.stringify(candidate));
        expectHandled(answer, `POST /v1/payments ${JSON.stringify(candidate)}`);
        expect(answer.status, answer.text).toBe(201);
        expect((answer.body as { subject: string }).subject).toBe(subject);
        const read = await send('GET', `/v1/payments/${candidate.outTradeNo}`);
        expect((read.body as { subject: string }).subject).toBe(subject);
        // Closed at once, so no order keeps polling the gateway behind the other properties.
        expect((await send('POST', `/v1/payments/${candidate.outTradeNo}/cancel`)).status).toBe(200);
      }),
      { numRuns: Math.ceil(RUNS / 5) },
    );
  }, 120_000);
});
