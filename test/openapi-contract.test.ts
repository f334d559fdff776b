// The OpenAPI document says the API's request rules, no looser and no stricter: for random request
// bodies and query values, the document's schema (read by ajv, as a generated client would) and the
// API's own validation (the zod schemas, and the merchant rule after them) give the same verdict.
// Where a rule cannot be said by a schema keyword (well-formed Unicode, what a URL parser accepts),
// the field's description says it, and only those inputs may be judged differently.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../api/openapi.js';
import { listQuery } from '../api/list.js';
import { mismatchQuery, reconciliationDate } from '../api/ops.js';
import { opsPaymentsQuery, resolveReviewBody } from '../api/ops-payments.js';
import { createPaymentBody, isWellFormedText } from '../api/payments.js';
import { createRefundBody } from '../api/refunds.js';
import { fitsAlipay } from '../lib/alipay/order-numbers.js';
import { documentAjv } from './support/openapi-ajv.js';

const doc = buildOpenApiDocument() as any;
const ajv = documentAjv(doc);
const documented = (name: string) => ajv.compile({ $ref: `openapi.json#/components/schemas/${name}` });

const MERCHANT = 'm0a1b2c3d4';
const RUNS = Number(process.env.CONTRACT_RUNS ?? 3000);

/** Strings of the characters at the edges of the rules. */
const textOf = (chars: string[], maxLength: number) => fc.array(fc.constantFrom(...chars), { maxLength }).map((a) => a.join(''));
const orderNumbers = fc.oneof(
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), weight: 6 },
  textOf(['a', 'Z', '9', '_', '-'], 70),
  fc.array(fc.constantFrom('a', '_', '-'), { minLength: 20, maxLength: 60 }).map((a) => a.join('')),
  textOf(['a', ' ', '.', '中', '_'], 8),
);
const amounts = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 10_000_000_001 }).map((fen) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`), weight: 6 },
  fc.tuple(fc.stringMatching(/^\d{1,10}$/), fc.stringMatching(/^\d{0,3}$/)).map(([y, f]) => `${y}.${f}`),
  fc.constantFrom('0.00', '0.01', '1.00', '100000000.00', '100000000.01', '99999999.99', '999999999.99', '01.00', '1', '1.5', '-1.00', ' 1.00'),
  fc.integer(),
);
const subjects = fc.oneof(
  { arbitrary: fc.constantFrom('A cup of tea', '茶', ' tea ', 'x'), weight: 6 },
  textOf(['a', ' ', '\t', '\u0000', '\u001f', '\u007f', '\u3000', '\u2028', '茶', '\u00a0', '😀'], 12),
  fc.integer({ min: 250, max: 260 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', 'A cup of tea', '\u3000', 'tea\n'),
);
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const paymentBodies = fc.record(
  {
    outTradeNo: orderNumbers,
    amount: amounts,
    subject: subjects,
    timeoutMinutes: optional(fc.oneof(fc.integer({ min: -2, max: 125 }), fc.constantFrom(1.5, '5', 0))),
    notifyUrl: optional(
      fc.constantFrom('https://shop.example.com/hook', 'HTTP://SHOP.EXAMPLE.COM/H', 'ftp://shop.example.com/h', 'https://shop.example.com/a b', `https://e.com/${'a'.repeat(500)}`),
    ),
    method: optional(fc.constantFrom('qr', 'barcode', 'barcode', 'card')),
    authCode: optional(fc.oneof(fc.stringMatching(/^\d{14,26}$/), fc.constantFrom('286288211188855245', '31628821118885524', 'x286288211188855245'))),
    extra: optional(fc.constant('field')),
  },
  { requiredKeys: ['outTradeNo', 'amount', 'subject'] },
).map(({ extra, ...body }) => Object.fromEntries(Object.entries(extra ? { ...body, extra } : body).filter(([, v]) => v !== undefined)));

/** The same verdict from the document and the API, but for inputs breaking a rule only described. */
function sameVerdict(name: string, api: (value: any) => boolean, describedOnly: (value: any) => boolean, values: fc.Arbitrary<unknown>) {
  const validate = documented(name);
  let accepted = 0;
  fc.assert(
    fc.property(values, (value) => {
      const byDocument = validate(value);
      const byApi = api(value);
      if (byApi) accepted++;
      // Whatever the API accepts, a client generated from the document can send.
      expect(byDocument, `${JSON.stringify(value)}: the API says ${byApi}, the document ${byDocument} (${ajv.errorsText(validate.errors)})`).toBe(byApi || (byDocument && describedOnly(value)));
    }),
    { numRuns: RUNS },
  );
  // The generators reach both sides of the rules.
  expect(accepted).toBeGreaterThan(RUNS / 100);
  expect(accepted).toBeLessThan(RUNS);
}

describe('the document says the rules the API enforces', () => {
  it('POST /v1/payments: order number (with the merchant in front), amount, subject, timeout, URL, method and payment code', () => {
    sameVerdict(
      'CreatePaymentRequest',
      (body) => createPaymentBody.safeParse(body).success && fitsAlipay(MERCHANT, body.outTradeNo),
      (body) => typeof body.subject === 'string' && !isWellFormedText(body.subject),
      paymentBodies,
    );
  });

  it('POST /v1/payments: text that is not well-formed Unicode is the one rule only its description says', () => {
    const validate = documented('CreatePaymentRequest');
    const body = { outTradeNo: 'a-1', amount: '1.00', subject: 'tea \uD800' };
    expect(validate(body)).toBe(true);
    expect(createPaymentBody.safeParse(body).success).toBe(false);
    expect(doc.components.schemas.CreatePaymentRequest.properties.subject.description).toContain('well-formed Unicode');
  });

  it('POST /v1/payments/{outTradeNo}/refunds', () => {
    sameVerdict(
      'CreateRefundRequest',
      (body) => createRefundBody.safeParse(body).success,
      (body) => typeof body.reason === 'string' && !isWellFormedText(body.reason),
      fc.record(
        { outRequestNo: orderNumbers, amount: amounts, reason: optional(fc.oneof(subjects, textOf(['\uD800', 'a'], 3))) },
        { requiredKeys: ['outRequestNo', 'amount'] },
      ),
    );
  });

  it('POST /ops/payments/{paymentId}/resolve-review', () => {
    sameVerdict(
      'ResolveReviewRequest',
      (body) => resolveReviewBody.safeParse(body).success,
      () => false,
      fc.record(
        {
          outcome: fc.constantFrom('PAID', 'CLOSED', 'OPEN'),
          note: fc.oneof(textOf(['a', ' ', '\t', '\n', '\r', '\u0000', '\u000b', '\u007f', '\u3000'], 8), fc.integer({ min: 998, max: 1002 }).map((n) => 'n'.repeat(n))),
          operator: optional(textOf(['a', '@', ' ', '\u0000'], 66)),
        },
        { requiredKeys: ['outcome', 'note'] },
      ),
    );
  });

  it('a reconciliation day: a calendar day, from year 0100', () => {
    const schema = { $ref: 'openapi.json#/paths/~1ops~1reconciliations~1{date}/get/parameters/0/schema' };
    const validate = ajv.compile(schema);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 })).map(
            ([y, m, d]) => `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`,
          ),
          fc.constantFrom('2024-02-29', '2025-02-29', '0099-12-31', '0100-01-01', '2025-1-31', '20250131'),
        ),
        (date) => {
          expect(validate(date), date).toBe(reconciliationDate.safeParse(date).success);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('query parameters: whole numbers in range, instants, merchant ids', () => {
    const parameter = (path: string, name: string) => {
      const p = doc.paths[path].get.parameters.find((x: any) => x.name === name);
      const validate = ajv.compile(p.schema);
      // A query string is text: the document's integers are written in decimal digits.
      return (text: string) => validate(p.schema.type === 'integer' ? (/^\d+$/.test(text) ? Number(text) : text) : text);
    };
    const checks: [string, string, (text: string) => boolean][] = [
      ['/v1/payments', 'limit', (t) => listQuery.safeParse({ limit: t }).success],
      ['/v1/payments', 'createdFrom', (t) => listQuery.safeParse({ createdFrom: t }).success],
      ['/v1/payments', 'amountMin', (t) => listQuery.safeParse({ amountMin: t }).success],
      ['/v1/payments', 'amountMax', (t) => listQuery.safeParse({ amountMax: t }).success],
      ['/v1/payments', 'method', (t) => listQuery.safeParse({ method: t }).success],
      ['/ops/reconciliations/{date}', 'limit', (t) => mismatchQuery.safeParse({ limit: t }).success],
      ['/ops/reconciliations/{date}', 'offset', (t) => mismatchQuery.safeParse({ offset: t }).success],
      ['/ops/payments', 'limit', (t) => opsPaymentsQuery.safeParse({ status: 'REVIEW', limit: t }).success],
      ['/ops/payments', 'olderThanMinutes', (t) => opsPaymentsQuery.safeParse({ status: 'REVIEW', olderThanMinutes: t }).success],
    ];
    const texts = fc.oneof(
      fc.integer({ min: 0, max: 2_000 }).map(String),
      fc.integer({ min: 0, max: 2_000_000_000 }).map(String),
      fc.constantFrom('', '-1', '1.5', '1e2', ' 1', '0', '100', '101', '1000', '1001', '525600', '525601', '999999999', '1000000000'),
      fc.constantFrom('qr', 'barcode', 'QR', 'card', '0.00', '0.01', '01.00', '12.50', '12.5', '99999999.99', '100000000.00', '100000000.01', '-1.00'),
      fc.tuple(fc.integer({ min: 0, max: 1_000_000_000 }), fc.integer({ min: 0, max: 120 })).map(([y, f]) => `${y}.${String(f).padStart(2, '0')}`),
      fc
        .tuple(fc.integer({ min: 1960, max: 9998 }), fc.constantFrom('Z', '+08:00', '-05:00', '', 'z'), fc.stringMatching(/^(\.\d{1,8})?$/), fc.integer({ min: 0, max: 25 }))
        .map(([y, zone, fraction, h]) => `${y}-01-31T${String(h).padStart(2, '0')}:00:00${fraction}${zone}`),
    );
    for (const [path, name, api] of checks) {
      const byDocument = parameter(path, name);
      fc.assert(
        fc.property(texts, (text) => {
          expect(byDocument(text), `${path} ${name}=${text}`).toBe(api(text));
        }),
        { numRuns: RUNS / 3 },
      );
    }
  });
});
