// A day of synthetic paid trades, for benchmarks: generated from a small spec, the same way each
// time, so a benchmark can put the same day into durapay's record without sending it over HTTP.
import type { Trade } from './trades.js';

export interface SyntheticDay {
  /** The Beijing day, YYYY-MM-DD. */
  date: string;
  appId: string;
  /** Prefix of the out_trade_no of each trade: `<prefix><index>`. */
  prefix: string;
  payments: number;
  /** Every this-many'th payment has one partial refund the same day (0: none). */
  refundEvery: number;
}

export interface SyntheticTrade {
  index: number;
  outTradeNo: string;
  tradeNo: string;
  totalCents: number;
  paidAt: number;
  refund?: { outRequestNo: string; amountCents: number; at: number };
}

const BEIJING_OFFSET_MS = 8 * 3_600_000;

/** The day's trades, spread over the day from 00:00:01 to 23:59:59 Beijing time. */
export function* syntheticTrades(spec: SyntheticDay): Generator<SyntheticTrade> {
  const [y, m, d] = spec.date.split('-').map(Number) as [number, number, number];
  const start = Date.UTC(y, m - 1, d) - BEIJING_OFFSET_MS + 1_000;
  const span = 86_400_000 - 2_000;
  const compact = spec.date.replaceAll('-', '');
  for (let index = 0; index < spec.payments; index++) {
    const paidAt = start + Math.floor((index * span) / Math.max(spec.payments, 1));
    const totalCents = 100 + ((index * 7919) % 99_900); // 1.00 to 999.99
    const trade: SyntheticTrade = {
      index,
      outTradeNo: `${spec.prefix}${index}`,
      tradeNo: `${compact}22001${String(index).padStart(15, '0')}`,
      totalCents,
      paidAt,
    };
    if (spec.refundEvery > 0 && index % spec.refundEvery === 0) {
      trade.refund = { outRequestNo: `r${index}`, amountCents: Math.max(1, Math.floor(totalCents / 3)), at: Math.min(paidAt + 60_000, start + span) };
    }
    yield trade;
  }
}

/** The ledger's record of a synthetic trade: paid (and refunded) as the spec says, no notify URL. */
export function ledgerTrade(spec: SyntheticDay, t: SyntheticTrade): Trade {
  return {
    outTradeNo: t.outTradeNo,
    appId: spec.appId,
    subject: '批量测试',
    totalCents: t.totalCents,
    notifyUrl: null,
    qrToken: `bench${t.index}`,
    qrCode: '',
    scene: 'qr_code',
    precreatedAt: t.paidAt - 30_000,
    expiresAt: t.paidAt + 3_600_000,
    status: 'TRADE_SUCCESS',
    tradeNo: t.tradeNo,
    buyer: { userId: '2088000000000000', logonId: '138****0000' },
    scannedAt: t.paidAt - 10_000,
    paidAt: t.paidAt,
    closedAt: null,
    refunds: t.refund ? [{ ...t.refund, reason: null, via: 'refund' }] : [],
    voided: false,
    cancelAction: null,
    calls: [],
    notifies: [],
  };
}
