// Bad input gets a 400 that names the field and the rule, and writes nothing anywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const valid = { outTradeNo: 'order-1', amount: '10.00', subject: 'a cup of tea' };

const invalidBodies: [string, Record<string, unknown>, string, RegExp][] = [
  ['missing outTradeNo', { amount: '1.00', subject: 's' }, 'outTradeNo', /1-64 characters|expected string/],
  ['outTradeNo too long', { ...valid, outTradeNo: 'x'.repeat(65) }, 'outTradeNo', /1-64 characters/],
  ['outTradeNo with a space', { ...valid, outTradeNo: 'order 1' }, 'outTradeNo', /A-Z, a-z, 0-9, _ and -/],
  ['outTradeNo empty', { ...valid, outTradeNo: '' }, 'outTradeNo', /1-64 characters/],
  ['amount as a number', { ...valid, amount: 10 }, 'amount', /string of yuan with two decimals/],
  ['amount with one decimal', { ...valid, amount: '10.5' }, 'amount', /two decimals/],
  ['amount without decimals', { ...valid, amount: '10' }, 'amount', /two decimals/],
  ['amount zero', { ...valid, amount: '0.00' }, 'amount', /from "0.01"/],
  ['amount negative', { ...valid, amount: '-1.00' }, 'amount', /two decimals/],
  ['amount above the maximum', { ...valid, amount: '100000000.01' }, 'amount', /to "100000000.00"/],
  ['amount with a leading zero', { ...valid, amount: '01.00' }, 'amount', /two decimals/],
  ['subject missing', { outTradeNo: 'o', amount: '1.00' }, 'subject', /1-256 characters/],
  ['subject empty', { ...valid, subject: '' }, 'subject', /1-256 characters/],
  ['subject blank', { ...valid, subject: '   ' }, 'subject', /blank/],
  ['subject too long', { ...valid, subject: 's'.repeat(257) }, 'subject', /1-256 characters/],
  ['subject with a control character', { ...valid, subject: 'tea\u0000' }, 'subject', /control characters/],
  ['timeoutMinutes zero', { ...valid, timeoutMinutes: 0 }, 'timeoutMinutes', /1 to 120/],
  ['timeoutMinutes fractional', { ...valid, timeoutMinutes: 1.5 }, 'timeoutMinutes', /whole number/],
  ['timeoutMinutes beyond the QR code lifetime', { ...valid, timeoutMinutes: 121 }, 'timeoutMinutes', /1 to 120/],
  ['timeoutMinutes as text', { ...valid, timeoutMinutes: '5' }, 'timeoutMinutes', /whole number/],
  ['an unknown field', { ...valid, total_amount: '10.00' }, '(body)', /unknown field\(s\): total_amount/],
];

describe('POST /v1/payments with bad input', () => {
  it.each(invalidBodies)('%s → 400 naming %s', async (_name, body, field, rule) => {
    const answer = await stack.createPayment(body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    const detail = answer.body.error.details.find((d: { field: string }) => d.field === field);
    expect(detail, JSON.stringify(answer.body)).toBeDefined();
    expect(detail.rule).toMatch(rule);
    expect(answer.body.error.message).toContain(field);
  });

  it('answers malformed JSON with 400 INVALID_JSON', async () => {
    const answer = await stack.apiCall('POST', '/v1/payments', '{"outTradeNo": ');
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_JSON');
  });

  it('wrote nothing: no payment, no event, no call to Alipay', async () => {
    expect(await stack.paymentCount()).toBe(0);
    const { rows } = await stack.pool.query('SELECT count(*)::int AS n FROM payment_events');
    expect(rows[0].n).toBe(0);
    const trades = await stack.simCall('GET', '/sim/trades');
    expect(trades.body).toEqual([]);
  });

  it('answers 404 for an unknown order and 400 for a malformed order number', async () => {
    expect((await stack.getPayment('no-such-order')).status).toBe(404);
    const bad = await stack.apiCall('GET', `/v1/payments/${'x'.repeat(65)}`);
    expect(bad.status).toBe(400);
    expect((await stack.cancelPayment('no-such-order')).status).toBe(404);
  });

  it('reports health and readiness', async () => {
    expect((await stack.apiCall('GET', '/healthz')).status).toBe(200);
    const ready = await stack.apiCall('GET', '/readyz');
    expect(ready).toMatchObject({ status: 200, body: { postgres: 'ok', temporal: 'ok' } });
  });
});
