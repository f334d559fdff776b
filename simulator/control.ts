import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { type FaultBoard, type Faults, faultsSchema } from './faults.js';
import type { Notifier } from './notifier.js';
import { buyerPage } from './buyer-page.js';
import { ledgerTrade, syntheticTrades } from './synthetic.js';
import {
  type CallRecord,
  formatCents,
  refundedCents,
  type Trade,
  type TradeBook,
  TradeConflict,
  UnknownTrade,
} from './trades.js';

export interface ControlDeps {
  book: TradeBook;
  faults: FaultBoard;
  notifier: Notifier;
  calls: CallRecord[];
  /** The app an unseen payment of an unknown trade belongs to. */
  defaultAppId: string;
  /** Whether Alipay signs for this app (null: for any app) with its certificate (公钥证书): only
   *  then can Alipay's certificate be rotated. */
  isCertificateApp: (appId: string | null) => boolean;
}

class InvalidRequest extends Error {
  readonly status = 400;
}

const syntheticDaySchema = z.strictObject({
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  appId: z.string().min(1),
  prefix: z.string().regex(/^[A-Za-z0-9_]{1,40}$/),
  payments: z.number().int().min(0).max(2_000_000),
  refundEvery: z.number().int().min(0),
});

const unseenPaymentSchema = z.strictObject({
  /** Needed only for a trade the simulator has never seen. */
  amount: z.string().regex(/^(0|[1-9]\d{0,8})\.\d{2}$/, 'yuan with two decimals, e.g. "12.50"').optional(),
  subject: z.string().min(1).max(256).optional(),
  appId: z.string().min(1).optional(),
});

const buyerBehaviourSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('pays') }),
  z.strictObject({ kind: z.literal('confirms'), afterMs: z.number().int().min(0).max(600_000) }),
  z.strictObject({ kind: z.literal('never_confirms') }),
  z.strictObject({ kind: z.literal('balance_not_enough') }),
  z.strictObject({ kind: z.literal('invalid_code') }),
]);

const notifyRequestSchema = z.strictObject({
  variant: z.enum(['valid', 'wrong-key', 'tampered-amount']).default('valid'),
  overrides: z.record(z.string(), z.string()).default({}),
});

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The ledger view of one trade, as tests and the buyer page see it. */
export function tradeView(t: Trade, faults: FaultBoard) {
  return {
    outTradeNo: t.outTradeNo,
    appId: t.appId,
    tradeNo: t.tradeNo,
    status: t.status ?? 'NOT_SCANNED',
    voided: t.voided,
    scene: t.scene,
    totalAmount: formatCents(t.totalCents),
    subject: t.subject,
    qrCode: t.qrCode,
    notifyUrl: t.notifyUrl,
    buyerUserId: t.buyer?.userId ?? null,
    buyerLogonId: t.buyer?.logonId ?? null,
    createdAt: iso(t.precreatedAt),
    expiresAt: iso(t.expiresAt),
    scannedAt: iso(t.scannedAt),
    paidAt: iso(t.paidAt),
    closedAt: iso(t.closedAt),
    refundedAmount: formatCents(refundedCents(t)),
    refunds: t.refunds.map((r) => ({
      outRequestNo: r.outRequestNo,
      amount: formatCents(r.amountCents),
      at: iso(r.at),
      reason: r.reason,
      via: r.via,
    })),
    cancelAction: t.cancelAction,
    faults: faults.forTrade(t.outTradeNo),
    calls: t.calls,
    notifies: t.notifies,
  };
}

/** JSON control API for buyers and tests, plus the buyer's QR landing page. */
export function controlRouter(deps: ControlDeps): Router {
  const { book, faults, notifier } = deps;
  const router = Router();
  router.use('/sim', express.json());
  const view = (t: Trade) => tradeView(t, faults);
  /** appId: the app of the trade the faults are for, once it exists. */
  const readFaults = (body: unknown, appId: string | null): Faults => {
    const patch = faultsSchema.parse(body ?? {});
    if (patch.rotatedAlipayCert && !deps.isCertificateApp(appId)) {
      throw new InvalidRequest(
        appId === null
          ? 'rotatedAlipayCert: the simulator is in key mode, where Alipay signs with a key, not a certificate'
          : `rotatedAlipayCert: app ${appId} is in key mode, where Alipay signs with a key, not a certificate`,
      );
    }
    return patch;
  };
  const requireTrade = (outTradeNo: string): Trade => {
    const trade = book.get(outTradeNo);
    if (!trade) throw new UnknownTrade(`no precreated trade ${outTradeNo}`);
    return trade;
  };

  router.get('/sim/health', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/sim/calls', (_req, res) => {
    res.json(deps.calls);
  });
  router.get('/sim/trades', (_req, res) => {
    res.json(book.list().map(view));
  });
  router.get('/sim/trades/:outTradeNo', (req, res) => {
    res.json(view(requireTrade(req.params.outTradeNo)));
  });
  router.post('/sim/trades/:outTradeNo/scan', (req, res) => {
    res.json(view(book.scan(req.params.outTradeNo)));
  });
  router.post('/sim/trades/:outTradeNo/pay', (req, res) => {
    res.json(view(book.pay(req.params.outTradeNo)));
  });
  // Alipay takes a payment the merchant's system never hears of: no notify (see TradeBook.payUnseen).
  router.post('/sim/trades/:outTradeNo/unseen-payment', (req, res) => {
    const body = unseenPaymentSchema.parse(req.body ?? {});
    const [yuan, fen] = body.amount?.split('.') ?? [];
    const totalCents = yuan === undefined ? undefined : Number(yuan) * 100 + Number(fen);
    res.json(view(book.payUnseen(req.params.outTradeNo, body.appId ?? deps.defaultAppId, { totalCents, subject: body.subject })));
  });
  // A benchmark's synthetic day of paid trades (simulator/synthetic.ts), straight into the ledger.
  router.post('/sim/ledger/synthetic', (req, res) => {
    const spec = syntheticDaySchema.parse(req.body ?? {});
    const added = book.seed((function* () {
      for (const t of syntheticTrades(spec)) yield ledgerTrade(spec, t);
    })());
    res.json({ added });
  });
  // The refund period ends: a paid trade becomes TRADE_FINISHED (no longer refundable).
  router.post('/sim/trades/:outTradeNo/finish', (req, res) => {
    res.json(view(book.finish(req.params.outTradeNo)));
  });
  router.post('/sim/trades/:outTradeNo/notify', async (req, res) => {
    const { variant, overrides } = notifyRequestSchema.parse(req.body ?? {});
    const trade = requireTrade(req.params.outTradeNo);
    if (trade.status === null) throw new TradeConflict('TRADE_CLOSED', 'trade not scanned yet: nothing to notify');
    if (trade.notifyUrl === null) throw new TradeConflict('TRADE_CLOSED', 'trade has no notify_url');
    res.json(await notifier.sendOnce(trade, variant, overrides));
  });

  // What the buyer behind a payment code does when a cashier scans it (alipay.trade.pay).
  router.put('/sim/payment-codes/:authCode', (req, res) => {
    const behaviour = buyerBehaviourSchema.parse(req.body ?? {});
    book.setBuyerBehaviour(req.params.authCode, behaviour);
    res.json(behaviour);
  });

  router.get('/sim/faults', (_req, res) => {
    res.json(faults.global);
  });
  router.post('/sim/faults', (req, res) => {
    res.json(faults.mergeGlobal(readFaults(req.body, null)));
  });
  router.delete('/sim/faults', (_req, res) => {
    faults.resetGlobal();
    res.json(faults.global);
  });
  router.post('/sim/trades/:outTradeNo/faults', (req, res) => {
    res.json(faults.mergeTrade(req.params.outTradeNo, readFaults(req.body, book.get(req.params.outTradeNo)?.appId ?? null)));
  });
  router.delete('/sim/trades/:outTradeNo/faults', (req, res) => {
    faults.resetTrade(req.params.outTradeNo);
    res.json({});
  });

  // The buyer scans the QR code and pays: what a client that holds only the qrCode (the merchant
  // CLI's `pay`, the SDKs' tests) does, without knowing Alipay's out_trade_no.
  for (const action of ['scan', 'pay'] as const) {
    router.post(`/qr/:token/${action}`, (req, res) => {
      const trade = book.getByQrToken(req.params.token);
      if (!trade) throw new UnknownTrade(`no trade has the QR code ${req.params.token}`);
      res.json(view(action === 'scan' ? book.scan(trade.outTradeNo) : book.pay(trade.outTradeNo)));
    });
  }

  router.get('/qr/:token', (req, res) => {
    const trade = book.getByQrToken(req.params.token);
    if (!trade) {
      res.status(404).type('text/plain').send('QR code not found');
      return;
    }
    res.type('html').send(buyerPage(trade));
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof UnknownTrade) res.status(404).json({ error: 'TRADE_NOT_FOUND', message: err.message });
    else if (err instanceof TradeConflict) res.status(409).json({ error: err.reason, message: err.message });
    else if (err instanceof z.ZodError) res.status(400).json({ error: 'INVALID_REQUEST', message: z.prettifyError(err) });
    else if (isClientHttpError(err)) res.status(err.status).json({ error: 'INVALID_REQUEST', message: err.message });
    else next(err);
  });
  return router;
}

/** body-parser's errors (malformed JSON, too large) carry their 4xx status. */
function isClientHttpError(err: unknown): err is Error & { status: number } {
  const status = (err as { status?: unknown } | null)?.status;
  return err instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}
