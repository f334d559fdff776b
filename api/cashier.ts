// The buyer's cashier page for one order, GET /pay/:token: the amount, the subject, the merchant,
// the QR code, a countdown to expiry, and the status live over server-sent events. The token, made
// when the order is created and stored with it, is the only key: no order number is ever taken
// here, and every unknown token gets the same 404 page.
import { createHash, randomBytes } from 'node:crypto';
import { Router, type ErrorRequestHandler, type Response } from 'express';
import escapeHtml from 'escape-html';
import type pg from 'pg';
import type { Logger } from 'pino';
import QRCode from 'qrcode';
import type { CashierStreamLimits } from '../lib/platform/config.js';
import { formatYuanForPeople } from '../lib/payments/money.js';
import { PAID_STATUSES, type PaymentStatus } from '../lib/payments/payment.js';
import { HttpError } from './errors.js';
import { cashierStatusReads, cashierStreamsOpen } from './metrics.js';
import { clientAddressKey } from './rate-limits.js';

export interface CashierDeps {
  pool: pg.Pool;
  /** The Alipay simulator: set, an open order's page links to the simulator's pay page. */
  simulatorUrl?: string;
  /** Open event streams allowed at once in this process, per order and per client address. */
  streams: CashierStreamLimits;
  logger: Logger;
}

/** 128 random bits, base64url: 22 characters nobody can guess or count through. */
export function newCashierToken(): string {
  return randomBytes(16).toString('base64url');
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function cashierUrl(publicBaseUrl: string, token: string): string {
  return `${publicBaseUrl}/pay/${token}`;
}

/** What the buyer is told; the merchant's statuses stay the merchant's. */
type BuyerState = 'preparing' | 'awaiting' | 'paid' | 'closed' | 'review';
const FINAL_STATES: readonly BuyerState[] = ['paid', 'closed', 'review'];

/** How often the open events streams' orders are read again, all of them in one query. */
const STATUS_POLL_MS = 1_000;
/** A stream ends this long after its order's deadline, final or not. */
const STREAM_AFTER_DEADLINE_MS = 60_000;
/** Tokens per query of a round. */
const READ_BATCH = 500;

const CASHIER_COLUMNS = `p.status, p.amount_fen, p.subject, p.qr_code, p.expires_at, m.name AS merchant_name, p.id, p.out_trade_no, p.cashier_token`;

interface CashierRow {
  status: PaymentStatus;
  amount_fen: number;
  subject: string;
  qr_code: string | null;
  expires_at: Date;
  merchant_name: string;
  /** The order's workflow id, and the merchant's order number: for log lines. */
  id: string;
  out_trade_no: string;
  cashier_token: string;
}

function buyerState(row: CashierRow): BuyerState {
  if (PAID_STATUSES.includes(row.status)) return 'paid';
  if (row.status === 'AWAITING_PAYMENT') return row.qr_code ? 'awaiting' : 'preparing';
  if (row.status === 'REVIEW') return 'review';
  return 'closed'; // CLOSED, PRECREATE_FAILED
}

/** Markup made by `html`: interpolated into another `html` as it is. */
class Markup {
  constructor(readonly text: string) {}
}

/** A template whose every interpolated value is escaped (escape-html), but for Markup. */
function html(strings: TemplateStringsArray, ...values: (string | number | Markup)[]): Markup {
  const escaped = values.map((value) => (value instanceof Markup ? value.text : escapeHtml(String(value))));
  return new Markup(strings.reduce((out, text, i) => out + escaped[i - 1]! + text));
}

// The page's only script and style are these constants, allowed by their hashes: they take no data
// but what the page's own attributes and the events stream carry.
const SCRIPT = `(() => {
  const main = document.getElementById('cashier');
  if (main.dataset.state !== 'awaiting' && main.dataset.state !== 'preparing') return;
  const deadline = Date.now() + Number(main.dataset.secondsLeft) * 1000;
  const show = (state) => {
    main.dataset.state = state === 'awaiting' && Date.now() >= deadline ? 'expired' : state;
  };
  const countdown = document.getElementById('countdown');
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    countdown.textContent = Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0');
    if (main.dataset.state === 'awaiting') show('awaiting');
  };
  tick();
  setInterval(tick, 1000);
  const events = new EventSource(location.pathname.replace(/\\/$/, '') + '/events');
  events.addEventListener('status', (event) => {
    const { state } = JSON.parse(event.data);
    if (main.dataset.state === 'preparing' && state === 'awaiting') return location.reload();
    show(state);
    if (state === 'paid' || state === 'closed' || state === 'review') events.close();
  });
})();`;

const STYLE = `
body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 0; background: #f4f6f8; color: #1f2933; }
main { max-width: 24rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 12px; text-align: center; }
.merchant { color: #52606d; margin: 0; }
.amount { font-size: 2.25rem; font-weight: 600; margin: .5rem 0; }
.subject { margin: 0 0 1rem; overflow-wrap: anywhere; }
.qr { width: 240px; height: 240px; image-rendering: pixelated; }
.status { font-size: 1.25rem; font-weight: 600; }
[data-show] { display: none; }
main[data-state="preparing"] [data-show="preparing"], main[data-state="awaiting"] [data-show="awaiting"],
main[data-state="expired"] [data-show="expired"], main[data-state="paid"] [data-show="paid"],
main[data-state="closed"] [data-show="closed"], main[data-state="review"] [data-show="review"],
main[data-state="unknown"] [data-show="unknown"] { display: block; }
main[data-state="paid"] [data-show="paid"] { color: #0f7b3f; }
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

// Nothing from elsewhere: the QR code is a data: image, the status comes from this origin.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  'img-src data:',
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function page(title: string, main: Markup): string {
  return html`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title>
<style>${new Markup(STYLE)}</style>
</head>
<body>
${main}
<script>${new Markup(SCRIPT)}</script>
</body>
</html>
`.text;
}

const UNKNOWN_PAGE = page(
  '未找到 Not found',
  html`<main id="cashier" data-state="unknown">
<p class="status" data-show="unknown">未找到该订单 No such order</p>
</main>`,
);

async function orderPage(row: CashierRow, simulatorUrl: string | undefined): Promise<string> {
  const state = buyerState(row);
  const secondsLeft = Math.max(0, Math.ceil((row.expires_at.getTime() - Date.now()) / 1000));
  const qrImage = row.qr_code && state === 'awaiting' ? await QRCode.toDataURL(row.qr_code, { margin: 2, width: 240 }) : undefined;
  // The simulator's QR codes are its own buyer pages: opening one is scanning it.
  const simulatorLink =
    simulatorUrl && row.qr_code?.startsWith(`${simulatorUrl}/`)
      ? html`<p><a href="${row.qr_code}" target="_blank" rel="noopener noreferrer">在模拟器中扫码支付 Scan and pay in the simulator</a></p>`
      : html``;
  return page(
    `支付 Pay ¥${formatYuanForPeople(row.amount_fen)} · ${row.merchant_name}`,
    html`<main id="cashier" data-state="${state}" data-seconds-left="${secondsLeft}">
<p class="merchant">${row.merchant_name}</p>
<p class="amount">¥${formatYuanForPeople(row.amount_fen)}</p>
<p class="subject">${row.subject}</p>
<section data-show="awaiting">
${qrImage ? html`<img class="qr" src="${qrImage}" alt="支付宝扫码支付二维码 Alipay QR code to scan" width="240" height="240">` : html``}
<p>请用支付宝扫码付款 Scan with Alipay to pay</p>
<p>剩余时间 Time left <span id="countdown"></span></p>
${simulatorLink}
</section>
<p class="status" data-show="preparing">二维码生成中 The QR code is on its way</p>
<p class="status" data-show="expired">已过期 Expired</p>
<p class="status" data-show="paid">支付成功 Paid</p>
<p class="status" data-show="closed">订单已关闭 Closed</p>
<p class="status" data-show="review">处理中，请联系商家 Being checked: please ask the merchant</p>
</main>`,
  );
}

/** A buyer's page and its stream: never cached, never framed, never told where the buyer came from. */
function pageHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  });
}

function answerUnknown(res: Response): void {
  pageHeaders(res);
  res.status(404).type('html').send(UNKNOWN_PAGE);
}

/**
 * The one reader behind every open events stream of this process: once a round it reads the
 * orders of all open streams in one query (a batch per READ_BATCH tokens) and hands each stream
 * its order's row, so a thousand streams cost what one does.
 */
class OrderWatch {
  readonly #listeners = new Map<string, Set<(row: CashierRow) => void>>();
  #timer: NodeJS.Timeout | undefined;
  #reading = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  /** `listener` gets the order's row every round until the returned function is called. */
  watch(token: string, listener: (row: CashierRow) => void): () => void {
    const listeners = this.#listeners.get(token) ?? new Set();
    listeners.add(listener);
    this.#listeners.set(token, listeners);
    this.#timer ??= setInterval(() => void this.#round(), STATUS_POLL_MS).unref();
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#listeners.delete(token);
      if (this.#listeners.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  async #round(): Promise<void> {
    if (this.#reading) return; // a slow round is not overtaken by the next
    this.#reading = true;
    try {
      const tokens = [...this.#listeners.keys()];
      for (let i = 0; i < tokens.length; i += READ_BATCH) {
        cashierStatusReads.inc();
        const { rows } = await this.pool.query<CashierRow>(
          `SELECT ${CASHIER_COLUMNS} FROM payments p JOIN merchants m ON m.id = p.merchant_id WHERE p.cashier_token = ANY($1)`,
          [tokens.slice(i, i + READ_BATCH)],
        );
        for (const row of rows) {
          for (const listener of [...(this.#listeners.get(row.cashier_token) ?? [])]) listener(row);
        }
      }
    } catch (err) {
      // PostgreSQL did not answer: the streams stay open, and the next round asks again.
      this.logger.warn({ err }, 'cashier status streams: could not read their orders');
    } finally {
      this.#reading = false;
    }
  }
}

/** Open streams by key (an order's token, a client address), within a limit each. */
class StreamCounts {
  readonly #open = new Map<string, number>();
  constructor(readonly limit: number) {}
  full(key: string): boolean {
    return (this.#open.get(key) ?? 0) >= this.limit;
  }
  add(key: string): void {
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
  }
  remove(key: string): void {
    const left = (this.#open.get(key) ?? 0) - 1;
    if (left > 0) this.#open.set(key, left);
    else this.#open.delete(key);
  }
}

function tooManyStreams(limit: number, per: 'order' | 'address'): HttpError {
  const variable = per === 'order' ? 'CASHIER_STREAMS_PER_TOKEN' : 'CASHIER_STREAMS_PER_ADDRESS';
  return new HttpError('TOO_MANY_STREAMS',
    `at most ${limit} open event streams per ${per === 'order' ? 'order' : 'client address'} (${variable}); close one and try again`,
    { limit, per },
  );
}

export function cashierRouter({ pool, simulatorUrl, streams, logger }: CashierDeps): Router {
  const router = Router();
  const watch = new OrderWatch(pool, logger);
  const perToken = new StreamCounts(streams.perToken);
  const perAddress = new StreamCounts(streams.perAddress);

  /** A token that cannot exist is unknown without a query; every well-formed one costs one lookup. */
  async function findOrder(token: string): Promise<CashierRow | undefined> {
    if (!TOKEN_PATTERN.test(token)) return undefined;
    const { rows } = await pool.query<CashierRow>(
      `SELECT ${CASHIER_COLUMNS} FROM payments p JOIN merchants m ON m.id = p.merchant_id WHERE p.cashier_token = $1`,
      [token],
    );
    return rows[0];
  }

  router.get('/pay/:token', async (req, res) => {
    const row = await findOrder(req.params.token);
    if (!row) return answerUnknown(res);
    pageHeaders(res);
    res.type('html').send(await orderPage(row, simulatorUrl));
  });

  // The state now, then each change, until it is final or the order's deadline is a minute past.
  // The browser reconnects on its own when the stream breaks, and is told the state again; past
  // the end it gets a 204, which tells EventSource to stop.
  router.get('/pay/:token/events', async (req, res) => {
    const token = req.params.token;
    if (!TOKEN_PATTERN.test(token)) return answerUnknown(res);
    // Counted before the lookup, so a refused stream costs nothing.
    const address = clientAddressKey(req);
    if (perToken.full(token)) throw tooManyStreams(perToken.limit, 'order');
    if (perAddress.full(address)) throw tooManyStreams(perAddress.limit, 'address');
    perToken.add(token);
    perAddress.add(address);
    cashierStreamsOpen.inc();
    let stop = () => {};
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      stop();
      perToken.remove(token);
      perAddress.remove(address);
      cashierStreamsOpen.dec();
    };
    res.on('close', release);
    let row: CashierRow | undefined;
    try {
      row = await findOrder(token);
    } catch (err) {
      release();
      throw err;
    }
    if (!row) {
      release();
      return answerUnknown(res);
    }
    const endsAt = (order: CashierRow) => order.expires_at.getTime() + STREAM_AFTER_DEADLINE_MS;
    if (Date.now() >= endsAt(row)) {
      release();
      pageHeaders(res);
      res.status(204).end();
      return;
    }
    pageHeaders(res);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    res.write('retry: 3000\n\n');
    let sent: BuyerState | undefined;
    const send = (order: CashierRow) => {
      const state = buyerState(order);
      if (state !== sent) res.write(`event: status\ndata: ${JSON.stringify({ state })}\n\n`);
      sent = state;
      if (FINAL_STATES.includes(state) || Date.now() >= endsAt(order)) {
        release();
        res.end();
      }
    };
    send(row);
    if (!released) stop = watch.watch(token, send);
  });

  // A path that does not decode (/pay/%E0) is just another unknown token.
  const undecodable: ErrorRequestHandler = (err, _req, res, next) => {
    if ((err as { status?: number }).status === 400) answerUnknown(res);
    else next(err);
  };
  router.use('/pay', undecodable);
  return router;
}
