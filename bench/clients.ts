// How the bench reaches the stack: durapay's public HTTP API (signed as the dev merchant), the
// simulator's control API, and Alipay's notify to durapay signed as the simulator signs it.
import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { signRequest } from '../lib/merchants/signing.js';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import type { tradeView } from '../simulator/control.js';
import type { Faults } from '../simulator/faults.js';
import { rsa2Sign, signContent } from '../simulator/signing.js';
import { formatBeijing } from '../simulator/time.js';
import type { CallRecord } from '../simulator/trades.js';
import type { StackInfo } from './stack-process.js';

/** The fields of GET /v1/payments/:no the bench reads. */
export interface Payment {
  outTradeNo: string;
  status: string;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
}

export type TradeView = ReturnType<typeof tradeView>;

async function expectJson<T>(res: Response, what: string, ok: (status: number) => boolean = (s) => s >= 200 && s < 300): Promise<T> {
  const text = await res.text();
  if (!ok(res.status)) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export class DurapayApi {
  constructor(private readonly stack: StackInfo) {}

  alipayOutTradeNo(orderNo: string): string {
    return toAlipayOutTradeNo(this.stack.merchantId, orderNo);
  }

  /** Signed as the dev merchant, as every /v1 request must be. */
  private fetch(pathWithQuery: string, method: string, body?: string): Promise<Response> {
    const headers = {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...signRequest(this.stack.merchantId, this.stack.secret, { method, pathWithQuery, body }),
    };
    return fetch(`${this.stack.apiUrl}${pathWithQuery}`, { method, headers, body });
  }

  /** 503 TRY_AGAIN answers to creates that were retried, as the API invites ("retry is safe"). */
  createRetries = 0;

  /** POST /v1/payments; a new order answers 201. A 503 TRY_AGAIN (the workflow did not answer in
   *  time) is retried with the same body, as a merchant would, up to twice. */
  async create(orderNo: string): Promise<Payment> {
    const body = JSON.stringify({ outTradeNo: orderNo, amount: '1.00', subject: 'bench' });
    for (let attempt = 1; ; attempt++) {
      const res = await this.fetch('/v1/payments', 'POST', body);
      if (res.status === 503 && attempt < 3) {
        await res.arrayBuffer();
        this.createRetries++;
        continue;
      }
      return expectJson<Payment>(res, `create ${orderNo}`, (s) => s === 201);
    }
  }

  async get(orderNo: string): Promise<Payment> {
    return expectJson<Payment>(await this.fetch(`/v1/payments/${encodeURIComponent(orderNo)}`, 'GET'), `get ${orderNo}`);
  }

  /** Every order of the merchant (newest first), page by page; optionally only one status. */
  async listAll(status?: string): Promise<Payment[]> {
    const all: Payment[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ limit: '100', ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
      const page: { payments: Payment[]; nextCursor: string | null } = await expectJson(
        await this.fetch(`/v1/payments?${query}`, 'GET'),
        'list payments',
      );
      all.push(...page.payments);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }

  /** Alipay's notify, as the simulator posts it; answers the body durapay gives Alipay. */
  async notify(formBody: string): Promise<string> {
    const res = await fetch(`${this.stack.apiUrl}/alipay/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: formBody,
    });
    return (await res.text()).trim();
  }
}

export class SimulatorControl {
  constructor(private readonly url: string) {}

  /** The buyer scans and pays; answers the trade as the simulator now holds it. */
  async pay(alipayOutTradeNo: string): Promise<TradeView> {
    return expectJson<TradeView>(await fetch(`${this.url}/sim/trades/${alipayOutTradeNo}/pay`, { method: 'POST' }), `pay ${alipayOutTradeNo}`);
  }

  /** Faults for one trade, armed before or after its precreate. */
  async armTradeFaults(alipayOutTradeNo: string, faults: Faults): Promise<void> {
    await expectJson(
      await fetch(`${this.url}/sim/trades/${alipayOutTradeNo}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(faults),
      }),
      `faults for ${alipayOutTradeNo}`,
    );
  }

  /** Every gateway call the simulator has answered, in order. */
  async calls(): Promise<CallRecord[]> {
    return expectJson<CallRecord[]>(await fetch(`${this.url}/sim/calls`), 'gateway calls');
  }
}

/** Gateway calls per out_trade_no. */
export function countCalls(calls: CallRecord[]): Map<string, CallRecord[]> {
  const byTrade = new Map<string, CallRecord[]>();
  for (const call of calls) {
    if (call.outTradeNo === null) continue;
    byTrade.set(call.outTradeNo, [...(byTrade.get(call.outTradeNo) ?? []), call]);
  }
  return byTrade;
}

/** The simulator's seller id when the stack gives it none (simulator/index.ts). */
const SIMULATOR_SELLER_ID = '2088102177846880';

/**
 * The payment notify of a paid trade, form-encoded and RSA2-signed with the simulator's "Alipay"
 * key: the fields simulator/notifier.ts sends (paymentNotifyFields). Built by the bench ahead of
 * time, so what is timed is only durapay's round trip. A field durapay cannot read makes it answer
 * "failure" or leave the order unpaid, and the bench reports that.
 */
export function signedPaymentNotify(trade: TradeView, alipayKey: KeyObject): string {
  const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
  const paid = trade.totalAmount;
  const params: Record<string, string> = {
    notify_time: formatBeijing(Date.now()),
    notify_id: randomBytes(16).toString('hex'),
    notify_type: 'trade_status_sync',
    app_id: trade.appId,
    auth_app_id: trade.appId,
    charset: 'utf-8',
    version: '1.0',
    trade_no: trade.tradeNo ?? '',
    out_trade_no: trade.outTradeNo,
    buyer_id: trade.buyerUserId ?? '',
    buyer_logon_id: trade.buyerLogonId ?? '',
    seller_id: SIMULATOR_SELLER_ID,
    seller_email: 'merchant@durapay-sim.test',
    trade_status: trade.status,
    total_amount: trade.totalAmount,
    subject: trade.subject,
    gmt_create: formatBeijing(ms(trade.scannedAt) ?? ms(trade.createdAt)!),
    ...(trade.paidAt === null ? {} : { gmt_payment: formatBeijing(ms(trade.paidAt)!) }),
    receipt_amount: paid,
    invoice_amount: paid,
    buyer_pay_amount: paid,
    point_amount: '0.00',
    fund_bill_list: JSON.stringify([{ amount: paid, fundChannel: 'ALIPAYACCOUNT' }]),
  };
  const sign = rsa2Sign(signContent(params, ['sign', 'sign_type'], { skipEmpty: true }), alipayKey);
  return new URLSearchParams({ ...params, sign_type: 'RSA2', sign }).toString();
}
