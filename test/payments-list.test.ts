// GET /v1/payments on the real stack: the merchant's orders newest first, each filter (status,
// creation time, amount, method, and together), the limit's
// bounds, keyset pages that an order created between them neither shifts nor repeats, and a 400
// naming the field for any bad parameter or cursor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type HttpAnswer, type Stack } from './support/stack.js';

let stack: Stack;
/** Order numbers this merchant created, oldest first. */
const created: string[] = [];
let paidNo: string;
let closedNo: string;

/** A create or cancel whose workflow did not answer in time (503 TRY_AGAIN, likelier on a loaded
 *  machine) is safe to repeat, as the API promises. */
async function untilAnswered(send: () => Promise<HttpAnswer>): Promise<HttpAnswer> {
  for (let attempt = 1; ; attempt++) {
    const answer = await send();
    if (answer.status !== 503 || answer.body?.error?.code !== 'TRY_AGAIN' || attempt === 5) return answer;
  }
}

async function createOrder(label: string): Promise<string> {
  const outTradeNo = stack.newOrderNo(label);
  const body = { outTradeNo, amount: '1.00', subject: `list ${label}` };
  const answer = await untilAnswered(() => stack.apiCall('POST', '/v1/payments', body));
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  created.push(outTradeNo);
  return outTradeNo;
}

beforeAll(async () => {
  // Orders stay as the tests leave them: no deadline, and no poll, within the file's run.
  stack = await startStack({ orderTimeout: '30m', pollLadder: '10m' });
  // One after the other: each create answers after its row is written, so creation order is known.
  for (let i = 0; i < 23; i++) await createOrder(`list${i}`);
  paidNo = created[5]!;
  closedNo = created[10]!;
  expect((await stack.simCall('POST', `/sim/trades/${paidNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(paidNo, 'PAID');
  const cancelled = await untilAnswered(() => stack.apiCall('POST', `/v1/payments/${closedNo}/cancel`));
  expect(cancelled.body.status, JSON.stringify(cancelled.body)).toBe('CLOSED');
});
afterAll(async () => {
  await stack?.stop();
});

function list(query: Record<string, string> = {}): Promise<HttpAnswer> {
  const search = new URLSearchParams(query).toString();
  return stack.apiCall('GET', `/v1/payments${search ? `?${search}` : ''}`);
}

async function listOk(query: Record<string, string> = {}): Promise<{ numbers: string[]; payments: any[]; nextCursor: string | null }> {
  const answer = await list(query);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(Object.keys(answer.body).sort()).toEqual(['nextCursor', 'payments']);
  return { ...answer.body, numbers: answer.body.payments.map((p: { outTradeNo: string }) => p.outTradeNo) };
}

/** Every page of a listing, following nextCursor to the end. */
async function allPages(query: Record<string, string>): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page = await listOk(cursor ? { ...query, cursor } : query);
    pages.push(page.numbers);
    cursor = page.nextCursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor);
  return pages;
}

const newestFirst = (numbers: string[]) => [...numbers].reverse();

/** created_at as PostgreSQL holds it, to the microsecond, in UTC. */
async function createdAtOf(outTradeNo: string): Promise<string> {
  const { rows } = await stack.pool.query(
    `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM payments WHERE merchant_id = $1 AND out_trade_no = $2`,
    [stack.merchant.id, outTradeNo],
  );
  return rows[0].t;
}

const cursorJson = (cursor: string) => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
const toCursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function expectInvalid(answer: HttpAnswer, field: string, rule: RegExp) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(400);
  expect(answer.body.error.code).toBe('INVALID_REQUEST');
  const detail = answer.body.error.details.find((d: { field: string }) => d.field === field);
  expect(detail, JSON.stringify(answer.body)).toBeDefined();
  expect(detail.rule).toMatch(rule);
  expect(answer.body.error.message).toContain(field);
}

describe('GET /v1/payments', () => {
  it('lists newest first, 20 by default, each order as GET /v1/payments/:outTradeNo shows it', async () => {
    const page = await listOk();
    expect(page.numbers).toEqual(newestFirst(created).slice(0, 20));
    expect(page.nextCursor).toEqual(expect.any(String));
    for (const payment of page.payments) {
      const one = await stack.apiCall('GET', `/v1/payments/${payment.outTradeNo}`);
      expect(payment).toEqual(one.body);
    }
    expect(page.payments.find((p) => p.outTradeNo === paidNo)).toMatchObject({ status: 'PAID', paidAmount: '1.00' });
  });

  it('pages past an order created between pages: no order twice, none missed', async () => {
    const existing = newestFirst(created);
    const first = await listOk({ limit: '10' });
    expect(first.numbers).toEqual(existing.slice(0, 10));

    // A new order is now the newest: an offset would shift it into the next page and repeat one.
    const newcomer = await createOrder('between-pages');

    const second = await listOk({ limit: '10', cursor: first.nextCursor! });
    const third = await listOk({ limit: '10', cursor: second.nextCursor! });
    expect(second.numbers).toEqual(existing.slice(10, 20));
    expect(third.numbers).toEqual(existing.slice(20));
    expect(third.nextCursor).toBeNull();
    const seen = [...first.numbers, ...second.numbers, ...third.numbers];
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(existing);
    expect(seen).not.toContain(newcomer);

    // A listing started afterwards begins with it.
    expect((await listOk({ limit: '1' })).numbers).toEqual([newcomer]);
  });

  it('filters by status, also across pages', async () => {
    expect((await listOk({ status: 'PAID' })).numbers).toEqual([paidNo]);
    expect((await listOk({ status: 'CLOSED' })).numbers).toEqual([closedNo]);
    expect(await listOk({ status: 'REFUNDED' })).toMatchObject({ payments: [], nextCursor: null });
    const waiting = newestFirst(created).filter((n) => n !== paidNo && n !== closedNo);
    const pages = await allPages({ status: 'AWAITING_PAYMENT', limit: '7' });
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 1]);
    expect(pages.flat()).toEqual(waiting);
  });

  it('filters by creation time to the microsecond: createdFrom inclusive, createdTo exclusive', async () => {
    const from = await createdAtOf(created[5]!);
    const to = await createdAtOf(created[9]!);
    expect(from).toMatch(/\.\d{6}Z$/);
    const between = newestFirst(created.slice(5, 9));
    expect((await listOk({ createdFrom: from, createdTo: to })).numbers).toEqual(between);

    // One microsecond later, the first order is out; one later for the bound, the last is in.
    const plusMicro = (iso: string) => {
      const micros = BigInt(Date.parse(iso.replace(/\.\d+Z$/, 'Z'))) * 1000n + BigInt(iso.slice(20, 26)) + 1n;
      return `${new Date(Number(micros / 1000n)).toISOString().slice(0, 19)}.${String(micros % 1_000_000n).padStart(6, '0')}Z`;
    };
    expect((await listOk({ createdFrom: plusMicro(from), createdTo: plusMicro(to) })).numbers).toEqual(newestFirst(created.slice(6, 10)));

    // The same instants with a +08:00 offset mean the same thing.
    const inBeijing = (iso: string) => {
      const local = new Date(Date.parse(iso.replace(/\.\d+Z$/, 'Z')) + 8 * 3_600_000).toISOString().slice(0, 19);
      return `${local}${iso.slice(19, 26)}+08:00`;
    };
    expect((await listOk({ createdFrom: inBeijing(from), createdTo: inBeijing(to) })).numbers).toEqual(between);

    expect((await listOk({ createdTo: await createdAtOf(created[3]!) })).numbers).toEqual(newestFirst(created.slice(0, 3)));
    const latest = created.slice(20);
    expect((await listOk({ createdFrom: await createdAtOf(created[20]!) })).numbers).toEqual(newestFirst(latest));
    const pages = await allPages({ createdFrom: from, createdTo: to, limit: '3' });
    expect(pages).toEqual([between.slice(0, 3), between.slice(3)]);
  });

  it('takes a limit from 1 to 100', async () => {
    const one = await listOk({ limit: '1' });
    expect(one.numbers).toEqual([created.at(-1)]);
    expect(one.nextCursor).toEqual(expect.any(String));
    const hundred = await listOk({ limit: '100' });
    expect(hundred.numbers).toEqual(newestFirst(created));
    expect(hundred.nextCursor).toBeNull();
    // Exactly a page's worth left: no cursor to an empty page.
    const exact = await listOk({ limit: String(created.length) });
    expect(exact.numbers).toHaveLength(created.length);
    expect(exact.nextCursor).toBeNull();
    for (const limit of ['0', '101', '-1', '1.5', 'ten', '', '1000', ' 5']) {
      expectInvalid(await list({ limit }), 'limit', /whole number from 1 to 100/);
    }
  });

  it('lists only the calling merchant orders', async () => {
    // Another merchant's order, with a number this merchant also uses, newer than everything else.
    const other = await stack.newMerchant('Listing Neighbour');
    expect((await other.createPayment({ outTradeNo: created[0], amount: '1.00', subject: 'not yours' })).status).toBe(201);
    const all = await listOk({ limit: '100' });
    expect(all.numbers).toEqual(newestFirst(created));

    // Nor can a cursor placed at the other merchant's order read from there.
    const ours = cursorJson((await listOk({ limit: '1' })).nextCursor!);
    const { rows } = await stack.pool.query(
      `SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM payments WHERE merchant_id = $1`,
      [other.merchant.id],
    );
    const foreign = toCursor({ ...ours, t: rows[0].t, i: rows[0].id });
    expectInvalid(await list({ cursor: foreign }), 'cursor', /for this merchant/);
  });

  describe('refuses a cursor it did not issue for this listing', () => {
    let real: string;
    let position: { v: number; t: string; i: string; f: string };
    beforeAll(async () => {
      real = (await listOk({ limit: '2' })).nextCursor!;
      position = cursorJson(real);
      // It works as issued, so each refusal below is about what was changed.
      expect((await listOk({ limit: '2', cursor: real })).numbers).toEqual(newestFirst(created).slice(2, 4));
    });

    it.each([
      ['not base64url', () => 'abc!', /nextCursor this listing returned/],
      ['empty', () => '', /nextCursor this listing returned/],
      ['not JSON', () => Buffer.from('hello').toString('base64url'), /malformed or altered/],
      ['JSON of another shape', () => toCursor({ v: 1 }), /malformed or altered/],
      ['a character appended', () => `${real}A`, /malformed or altered/],
      ['another version', () => toCursor({ ...position, v: 2 }), /another version/],
      ['its time altered in the last digit', () => toCursor({ ...position, t: position.t.replace(/\d(?=Z$)/, (d) => String((Number(d) + 1) % 10)) }), /for this merchant/],
      ['its order swapped for another', () => toCursor({ ...position, i: position.i.replace(/\d+$/, (n) => String(Number(n) + 1)) }), /for this merchant/],
      ['a time that is no time', () => toCursor({ ...position, t: '2025-13-01T00:00:00.000000Z' }), /malformed or altered/],
    ])('%s → 400 naming cursor', async (_name, make, rule) => {
      expectInvalid(await list({ limit: '2', cursor: make() }), 'cursor', rule);
    });

    it('issued for other filters → 400 naming cursor', async () => {
      const filtered = (await listOk({ status: 'AWAITING_PAYMENT', limit: '2' })).nextCursor!;
      expectInvalid(await list({ limit: '2', cursor: filtered }), 'cursor', /other filters/);
      expectInvalid(await list({ status: 'CLOSED', limit: '2', cursor: filtered }), 'cursor', /other filters/);
      // The same filters with another limit are the same listing.
      expect((await list({ status: 'AWAITING_PAYMENT', limit: '5', cursor: filtered })).status).toBe(200);
    });
  });

  it.each([
    ['an unknown status', { status: 'PENDING' }, 'status', /must be one of AWAITING_PAYMENT, PAID/],
    ['a status in lower case', { status: 'paid' }, 'status', /must be one of/],
    ['a status given twice', 'status=PAID&status=CLOSED', 'status', /must be one of/],
    ['createdFrom not a timestamp', { createdFrom: 'yesterday' }, 'createdFrom', /ISO 8601 timestamp with a time zone/],
    ['createdFrom without a time zone', { createdFrom: '2025-01-31T16:00:00' }, 'createdFrom', /with a time zone/],
    ['createdFrom on a day that does not exist', { createdFrom: '2025-02-30T00:00:00Z' }, 'createdFrom', /ISO 8601/],
    ['createdFrom before 1970', { createdFrom: '1969-12-31T23:59:59Z' }, 'createdFrom', /years 1970-9999/],
    ['createdTo finer than a microsecond', { createdTo: '2025-01-31T16:00:00.1234567Z' }, 'createdTo', /at most 6 fractional digits/],
    ['createdTo before createdFrom', { createdFrom: '2025-02-01T00:00:00Z', createdTo: '2025-01-01T00:00:00Z' }, 'createdTo', /later than createdFrom/],
    ['createdTo equal to createdFrom', { createdFrom: '2025-02-01T08:00:00+08:00', createdTo: '2025-02-01T00:00:00Z' }, 'createdTo', /later than createdFrom/],
    ['amountMin not two decimals', { amountMin: '12.5' }, 'amountMin', /yuan with two decimals from "0.01" to "100000000.00"/],
    ['amountMin zero', { amountMin: '0.00' }, 'amountMin', /from "0.01"/],
    ['amountMax negative', { amountMax: '-1.00' }, 'amountMax', /yuan with two decimals/],
    ['amountMax above Alipay’s maximum', { amountMax: '100000000.01' }, 'amountMax', /to "100000000.00"/],
    ['amountMax a number with a comma', { amountMax: '1,000.00' }, 'amountMax', /yuan with two decimals/],
    ['amountMax less than amountMin', { amountMin: '12.50', amountMax: '12.49' }, 'amountMax', /must not be less than amountMin/],
    ['an unknown method', { method: 'card' }, 'method', /must be one of qr, barcode/],
    ['a method in upper case', { method: 'QR' }, 'method', /must be one of qr, barcode/],
    [
      'an unknown parameter',
      { page: '2' },
      'page',
      /not a parameter of this listing \(known: status, createdFrom, createdTo, limit, cursor, amountMin, amountMax, method\)/,
    ],
    ['a parameter in another case', { Status: 'PAID' }, 'Status', /not a parameter/],
    ['a bracketed parameter', 'status[]=PAID', 'status[]', /not a parameter/],
  ])('%s → 400 naming the field', async (_name, query, field, rule) => {
    const answer =
      typeof query === 'string' ? await stack.apiCall('GET', `/v1/payments?${query}`) : await list(query as Record<string, string>);
    expectInvalid(answer, field, rule);
  });

  it('names every bad parameter at once', async () => {
    const answer = await stack.apiCall('GET', '/v1/payments?status=NOPE&limit=0&offset=5&createdTo=soon');
    expect(answer.status).toBe(400);
    expect(answer.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['createdTo', 'limit', 'offset', 'status']);
  });

  it('neither skips nor repeats orders created in the same microsecond', async () => {
    // now() is the transaction's start, so concurrent creates can share a created_at: the id orders them.
    const ties = ['tie-a', 'tie-b', 'tie-c'];
    await stack.pool.query(
      `INSERT INTO payments (id, app_id, out_trade_no, alipay_out_trade_no, merchant_id, amount_fen, subject, status, expires_at, created_at)
       SELECT 'payment:' || $1 || ':' || $2 || '_' || n, $1, n, $2 || '_' || n, $2, 100, 'tie', 'CLOSED', '2001-01-01T01:00:00Z', '2001-01-01T00:00:00.123456Z'
       FROM unnest($3::text[]) AS n`,
      [stack.appId, stack.merchant.id, ties],
    );
    const pages = await allPages({ createdTo: '2002-01-01T00:00:00Z', limit: '1' });
    expect(pages).toEqual([['tie-c'], ['tie-b'], ['tie-a']]);
    expect((await listOk({ createdFrom: '2001-01-01T00:00:00.123456Z', createdTo: '2001-01-01T00:00:00.123457Z' })).numbers).toEqual([
      'tie-c',
      'tie-b',
      'tie-a',
    ]);
  });
});

describe('GET /v1/payments by amount and method', () => {
  // Orders in 2003, far from the others: [number, amount, method, status], oldest first.
  const orders: [string, string, 'qr' | 'barcode', string][] = [
    ['am-1', '0.50', 'qr', 'CLOSED'],
    ['am-2', '12.50', 'barcode', 'PAID'],
    ['am-3', '12.49', 'qr', 'PAID'],
    ['am-4', '12.50', 'qr', 'CLOSED'],
    ['am-5', '99.99', 'barcode', 'CLOSED'],
    ['am-6', '100.00', 'qr', 'PAID'],
    ['am-7', '12.51', 'barcode', 'PAID'],
    ['am-8', '250.00', 'barcode', 'CLOSED'],
    ['am-9', '50.00', 'barcode', 'PAID'],
  ];
  const inRange = { createdFrom: '2003-01-01T00:00:00Z', createdTo: '2004-01-01T00:00:00Z' };
  const numbers = (pick: (o: (typeof orders)[number]) => boolean) => newestFirst(orders.filter(pick).map((o) => o[0]));
  const fen = (yuan: string) => Math.round(Number(yuan) * 100);

  beforeAll(async () => {
    await stack.pool.query(
      `INSERT INTO payments (id, app_id, out_trade_no, alipay_out_trade_no, merchant_id, amount_fen, subject, status, expires_at, created_at,
                             method, auth_code_fingerprint, paid_amount_fen)
       SELECT 'payment:' || $1 || ':' || $2 || '_' || o.no, $1, o.no, $2 || '_' || o.no, $2, o.fen, 'filter', o.status, '2003-06-01T01:00:00Z',
              '2003-06-01T00:00:00Z'::timestamptz + o.n * interval '1 minute', o.method,
              CASE WHEN o.method = 'barcode' THEN 'fp-' || o.no END, CASE WHEN o.status = 'PAID' THEN o.fen END
       FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY AS o(no, fen, method, status, n)`,
      [stack.appId, stack.merchant.id, orders.map((o) => o[0]), orders.map((o) => fen(o[1])), orders.map((o) => o[2]), orders.map((o) => o[3])],
    );
  });

  it('amountMin and amountMax are inclusive bounds on the order amount', async () => {
    expect((await listOk({ ...inRange, amountMin: '12.50' })).numbers).toEqual(numbers((o) => fen(o[1]) >= 1250));
    expect((await listOk({ ...inRange, amountMax: '12.50' })).numbers).toEqual(numbers((o) => fen(o[1]) <= 1250));
    expect((await listOk({ ...inRange, amountMin: '12.50', amountMax: '12.50' })).numbers).toEqual(['am-4', 'am-2']);
    expect((await listOk({ ...inRange, amountMin: '12.50', amountMax: '100.00' })).numbers).toEqual(
      numbers((o) => fen(o[1]) >= 1250 && fen(o[1]) <= 10000),
    );
    expect(await listOk({ ...inRange, amountMin: '250.01' })).toMatchObject({ payments: [], nextCursor: null });
    // Every order of the merchant at 1.00 (the created ones, and the 2001 ties), and only those.
    const ones = await listOk({ amountMin: '1.00', amountMax: '1.00', limit: '100' });
    expect(ones.numbers).toEqual([...newestFirst(created), 'tie-c', 'tie-b', 'tie-a']);
  });

  it('method picks qr or barcode orders', async () => {
    const barcode = await listOk({ method: 'barcode', limit: '100' });
    expect(barcode.numbers).toEqual(numbers((o) => o[2] === 'barcode'));
    expect(barcode.payments.every((p: { method: string }) => p.method === 'barcode')).toBe(true);
    expect((await listOk({ ...inRange, method: 'qr' })).numbers).toEqual(numbers((o) => o[2] === 'qr'));
  });

  it('composes with status and creation time, and pages under them', async () => {
    const want = numbers((o) => o[2] === 'barcode' && o[3] === 'PAID' && fen(o[1]) >= 1250 && fen(o[1]) <= 10000);
    expect(want).toEqual(['am-9', 'am-7', 'am-2']);
    const query = { ...inRange, status: 'PAID', method: 'barcode', amountMin: '12.50', amountMax: '100.00' };
    expect((await listOk(query)).numbers).toEqual(want);
    expect(await allPages({ ...query, limit: '1' })).toEqual(want.map((n) => [n]));
    const wide = numbers((o) => fen(o[1]) >= 1250);
    expect(wide).toHaveLength(7);
    expect(await allPages({ ...inRange, amountMin: '12.50', limit: '2' })).toEqual([wide.slice(0, 2), wide.slice(2, 4), wide.slice(4, 6), wide.slice(6)]);
  });

  it('refuses a cursor issued for another amount or method', async () => {
    const page = await listOk({ ...inRange, method: 'barcode', limit: '1' });
    expectInvalid(await list({ ...inRange, method: 'qr', limit: '1', cursor: page.nextCursor! }), 'cursor', /other filters/);
    expectInvalid(await list({ ...inRange, limit: '1', cursor: page.nextCursor! }), 'cursor', /other filters/);
    const amount = await listOk({ ...inRange, amountMin: '12.50', limit: '1' });
    expectInvalid(await list({ ...inRange, amountMin: '12.51', limit: '1', cursor: amount.nextCursor! }), 'cursor', /other filters/);
    expectInvalid(await list({ ...inRange, amountMin: '12.50', amountMax: '99.99', limit: '1', cursor: amount.nextCursor! }), 'cursor', /other filters/);
    // The same bounds written the same way are the same listing.
    expect((await list({ ...inRange, amountMin: '12.50', limit: '3', cursor: amount.nextCursor! })).status).toBe(200);
  });
});
