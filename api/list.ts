// GET /v1/payments: the merchant's orders, newest first, a page at a time. Pages follow a keyset
// (created_at, id), never an offset, so orders created while a merchant pages through neither
// shift a page nor repeat one. The query is shaped for the index on payments (merchant_id,
// created_at DESC, id DESC) that comes with merchants; status, amount and method are filters on the
// rows it yields.
import { createHash } from 'node:crypto';
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { MAX_AMOUNT_FEN, MIN_AMOUNT_FEN, parseYuan, YUAN_RANGE_PATTERN } from '../lib/payments/money.js';
import { PAYMENT_STATUSES } from '../lib/payments/payment.js';
import { HttpError, invalidRequest } from './errors.js';
import { wholeNumberParam } from './schemas.js';
import type { Merchant } from './merchant.js';
import { paymentResource, type PaymentRow } from './read-model.js';

export interface ListDeps {
  pool: pg.Pool;
  /** Where buyers reach this API: the base of each order's cashierUrl. */
  publicBaseUrl: string;
}


export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;
export const CURSOR_VERSION = 1;

/** An instant to the microsecond, PostgreSQL's precision: created_at must compare exactly. */
export interface Instant {
  /** UTC, always six fractional digits: 2025-01-31T16:00:00.123456Z. Sorts as text. */
  iso: string;
}

const isoWithOffset = z.iso.datetime({ offset: true });
const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const INSTANT_RULE =
  'must be an ISO 8601 timestamp with a time zone, e.g. 2025-01-31T16:00:00Z or 2025-02-01T00:00:00+08:00 (at most 6 fractional digits, years 1970-9999)';

/** The instant `text` names, or undefined. Sub-millisecond digits are kept: Date would drop them. */
export function parseInstant(text: string): Instant | undefined {
  if (!isoWithOffset.safeParse(text).success) return undefined;
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? '';
  // PostgreSQL would round a 7th digit, and a rounded bound can take in or leave out an order.
  if (fraction.length > 6) return undefined;
  const wholeSecondsMs = Date.parse(text.replace(/\.\d+/, ''));
  if (!(wholeSecondsMs >= 0 && wholeSecondsMs <= MAX_INSTANT_MS)) return undefined;
  return { iso: new Date(wholeSecondsMs).toISOString().replace(/\.000Z$/, `.${fraction.padEnd(6, '0')}Z`) };
}

const instant = (description: string) =>
  z
    .string({ error: INSTANT_RULE })
    .transform((text, ctx) => {
      const parsed = parseInstant(text);
      if (!parsed) {
        ctx.addIssue({ code: 'custom', message: INSTANT_RULE });
        return z.NEVER;
      }
      return parsed;
    })
    .meta({
      type: 'string',
      format: 'date-time',
      pattern: '^(?:19[7-9]\\d|[2-9]\\d{3})-\\d{2}-\\d{2}T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-]\\d{2}:\\d{2})$',
      description: `${description}; ISO 8601 with a time zone, at most 6 fractional digits, in the years 1970-9999 (UTC).`,
      examples: ['2025-02-01T00:00:00+08:00'],
    });

const AMOUNT_RULE = 'must be yuan with two decimals from "0.01" to "100000000.00", e.g. "12.50"';

/** A bound on the order's amount, as the create body writes amounts; the fen it names. */
const amountBound = (description: string) =>
  z
    .string({ error: AMOUNT_RULE })
    .transform((text, ctx) => {
      const fen = parseYuan(text);
      if (fen === undefined || fen < MIN_AMOUNT_FEN || fen > MAX_AMOUNT_FEN) {
        ctx.addIssue({ code: 'custom', message: AMOUNT_RULE });
        return z.NEVER;
      }
      return fen;
    })
    .meta({
      type: 'string',
      pattern: YUAN_RANGE_PATTERN.source,
      description: `${description}; yuan with exactly two decimals, from "0.01" to "100000000.00". The order's amount, not what was paid or refunded.`,
      examples: ['12.50'],
    });

export const PAYMENT_METHODS = ['qr', 'barcode'] as const;

const LIMIT_RULE = `must be a whole number from 1 to ${MAX_LIMIT}`;
const CURSOR_RULE = 'must be a nextCursor this listing returned';

// Express's query parser gives a string, or an array when a parameter is repeated: both are refused
// by these string schemas unless the value is one plain string.
export const listQuery = z
  .strictObject(
    {
      status: z.enum(PAYMENT_STATUSES, { error: `must be one of ${PAYMENT_STATUSES.join(', ')}` }).optional(),
      createdFrom: instant('Inclusive').optional(),
      createdTo: instant('Exclusive: later than createdFrom').optional(),
      limit: wholeNumberParam(1, MAX_LIMIT, LIMIT_RULE, `At most this many (default ${DEFAULT_LIMIT}).`).optional(),
      cursor: z
        .string({ error: CURSOR_RULE })
        .regex(/^[A-Za-z0-9_-]{1,1024}$/, CURSOR_RULE)
        .meta({ description: 'The nextCursor of the previous page, as given (anything else is refused).' })
        .optional(),
      // Added later, so last: clients whose calls take the parameters in order (the Java SDK) gain
      // them at the end.
      amountMin: amountBound('Orders of at least this amount (inclusive)').optional(),
      amountMax: amountBound('Orders of at most this amount (inclusive): not less than amountMin').optional(),
      method: z
        .enum(PAYMENT_METHODS, { error: `must be one of ${PAYMENT_METHODS.join(', ')}` })
        .meta({ description: "qr: orders the buyer pays by scanning the order's QR code. barcode: orders paid by scanning the buyer's payment code." })
        .optional(),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'unknown parameter' : undefined) },
  )
  .refine((q) => !q.createdFrom || !q.createdTo || q.createdFrom.iso < q.createdTo.iso, {
    path: ['createdTo'],
    message: 'must be later than createdFrom (createdFrom is inclusive, createdTo exclusive)',
  })
  .refine((q) => q.amountMin === undefined || q.amountMax === undefined || q.amountMin <= q.amountMax, {
    path: ['amountMax'],
    message: 'must not be less than amountMin (both bounds are inclusive)',
  });

export type ListQuery = z.output<typeof listQuery>;

/** A 400 that names each unknown parameter as its own field, as zod would name a bad value. */
function invalidQuery(error: z.ZodError): HttpError {
  const known = Object.keys(listQuery.shape).join(', ');
  const issues = error.issues.flatMap((issue): z.core.$ZodIssue[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ code: 'custom', path: [key], message: `is not a parameter of this listing (known: ${known})`, input: undefined }))
      : [issue],
  );
  return invalidRequest(new z.ZodError(issues));
}

/** What a cursor carries: where the last page ended, and the filters it was issued for. */
export interface CursorPosition {
  v: number;
  /** created_at of the last order of the page, to the microsecond (see Instant). */
  t: string;
  /** id of that order: breaks ties between orders created in the same microsecond. */
  i: string;
  /** Fingerprint of the filters. */
  f: string;
}

const cursorPosition = z.strictObject({
  v: z.number().int(),
  t: z.string().refine((t) => parseInstant(t)?.iso === t),
  i: z.string().min(1).max(512),
  f: z.string().regex(/^[0-9a-f]{16}$/),
});

export function filterFingerprint(
  query: Pick<ListQuery, 'status' | 'createdFrom' | 'createdTo'> & Partial<Pick<ListQuery, 'amountMin' | 'amountMax' | 'method'>>,
): string {
  const filters: unknown[] = [query.status ?? null, query.createdFrom?.iso ?? null, query.createdTo?.iso ?? null];
  // The filters added later join the fingerprint only when given, so a cursor issued before them still reads.
  if (query.amountMin !== undefined || query.amountMax !== undefined || query.method !== undefined) {
    filters.push(query.amountMin ?? null, query.amountMax ?? null, query.method ?? null);
  }
  return createHash('sha256').update(JSON.stringify(filters)).digest('hex').slice(0, 16);
}

export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** The position in a cursor, or undefined for anything this API could not have written. */
export function decodeCursor(text: string): CursorPosition | undefined {
  const bytes = Buffer.from(text, 'base64url');
  // Node skips characters it cannot decode; only the exact encoding of the bytes is ours.
  if (bytes.toString('base64url') !== text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = cursorPosition.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

function badCursor(rule: string): HttpError {
  return new HttpError('INVALID_REQUEST', `cursor: ${rule}`, [{ field: 'cursor', rule }]);
}

type ListedRow = PaymentRow & { cursor_time: string };

export function listRouter({ pool, publicBaseUrl }: ListDeps): Router {
  const router = Router();

  router.get('/payments', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const parsed = listQuery.safeParse(req.query);
    if (!parsed.success) throw invalidQuery(parsed.error);
    const query = parsed.data;
    const limit = query.limit ?? DEFAULT_LIMIT;
    const fingerprint = filterFingerprint(query);

    const where = ['merchant_id = $1'];
    const params: unknown[] = [merchant.id];
    const param = (value: unknown) => `$${params.push(value)}`;
    if (query.status) where.push(`status = ${param(query.status)}`);
    if (query.createdFrom) where.push(`created_at >= ${param(query.createdFrom.iso)}::timestamptz`);
    if (query.createdTo) where.push(`created_at < ${param(query.createdTo.iso)}::timestamptz`);
    if (query.amountMin !== undefined) where.push(`amount_fen >= ${param(query.amountMin)}`);
    if (query.amountMax !== undefined) where.push(`amount_fen <= ${param(query.amountMax)}`);
    if (query.method) where.push(`method = ${param(query.method)}`);

    if (query.cursor !== undefined) {
      const position = decodeCursor(query.cursor);
      if (!position) throw badCursor(`${CURSOR_RULE}; this one is malformed or altered`);
      if (position.v !== CURSOR_VERSION) throw badCursor('was issued by another version of this API; list again without a cursor');
      if (position.f !== fingerprint) {
        throw badCursor('was issued for other filters; repeat status, createdFrom, createdTo, amountMin, amountMax and method unchanged, or list again without a cursor');
      }
      // The position must be one of this merchant's orders, exactly: an altered or foreign cursor
      // is refused rather than silently read as some other place in the list.
      const anchor = await pool.query('SELECT 1 FROM payments WHERE id = $1 AND merchant_id = $2 AND created_at = $3::timestamptz', [
        position.i,
        merchant.id,
        position.t,
      ]);
      if (anchor.rowCount === 0) throw badCursor(`${CURSOR_RULE} for this merchant; this one is altered or another's`);
      where.push(`(created_at, id) < (${param(position.t)}::timestamptz, ${param(position.i)})`);
    }

    // One row more than the page tells whether another page follows, without a count.
    const { rows } = await pool.query<ListedRow>(
      `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time
       FROM payments
       WHERE ${where.join(' AND ')}
       ORDER BY created_at DESC, id DESC
       LIMIT ${param(limit + 1)}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor =
      rows.length > limit && last ? encodeCursor({ v: CURSOR_VERSION, t: last.cursor_time, i: last.id, f: fingerprint }) : null;
    res.json({ payments: page.map((row) => paymentResource(row, publicBaseUrl)), nextCursor });
  });

  return router;
}
