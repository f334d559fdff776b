// Alipay's trade bill (对账单), built from the simulator's own ledger.
//
// alipay.data.dataservice.bill.downloadurl.query (bill_type=trade, bill_date yyyy-MM-dd or yyyy-MM)
// answers a short-lived bill_download_url for a day (or month) that is over in Beijing time, and
// isp.bill_not_exist for today and later. The URL serves a zip of two GBK-encoded CSV files, their
// names GBK too (no UTF-8 flag): the detail (…_业务明细.csv) and the summary (…_业务明细(汇总).csv).
// The detail file has `#` comment lines before its header row and after its data; every value is
// followed by tab padding; a payment is a 交易 row, a refund a 退款 row with negative amounts and
// the refund's out_request_no in 退款批次号/请求号. A trade is listed on the day of its payment, a
// refund on the day it was made, both read on Alipay's clock for that trade (the clockSkewMs fault).
import { randomBytes } from 'node:crypto';
import AdmZip from 'adm-zip';
import { stringify } from 'csv-stringify/sync';
import { Router } from 'express';
import iconv from 'iconv-lite';
import { type AlipayPayload, businessFailed, success } from './answers.js';
import type { FaultBoard } from './faults.js';
import { formatBeijing } from './time.js';
import { formatCents, type Trade, type TradeBook } from './trades.js';

const BEIJING_OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;

export const DETAIL_COLUMNS = [
  '支付宝交易号', '商户订单号', '业务类型', '商品名称', '创建时间', '完成时间', '门店编号', '门店名称', '操作员', '终端号', '对方账户',
  '订单金额（元）', '商家实收（元）', '支付宝红包（元）', '集分宝（元）', '支付宝优惠（元）', '商家优惠（元）', '券核销金额（元）', '券名称',
  '商家红包消费金额（元）', '卡消费金额（元）', '退款批次号/请求号', '服务费（元）', '分润（元）', '备注',
] as const;

/** Alipay charges 0.6 % on face-to-face payments, rounded to the fen, and gives it back on refunds. */
const feeCents = (cents: number) => Math.round(cents * 0.006);

/** A bill period: a Beijing day (yyyy-MM-dd) or month (yyyy-MM), as [start, end) instants. */
export function billPeriod(text: string): { start: number; end: number; compact: string } | null {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const month = /^(\d{4})-(\d{2})$/.exec(text);
  if (day) {
    const [, y, m, d] = day.map(Number) as number[];
    const start = Date.UTC(y!, m! - 1, d!) - BEIJING_OFFSET_MS;
    if (new Date(start + BEIJING_OFFSET_MS).toISOString().slice(0, 10) !== text) return null;
    return { start, end: start + DAY_MS, compact: text.replaceAll('-', '') };
  }
  if (month) {
    const [, y, m] = month.map(Number) as number[];
    if (m! < 1 || m! > 12) return null;
    return { start: Date.UTC(y!, m! - 1, 1) - BEIJING_OFFSET_MS, end: Date.UTC(y!, m!, 1) - BEIJING_OFFSET_MS, compact: text.replace('-', '') };
  }
  return null;
}

/** `2024年01月02日 00:00:00`, as the bill's comment lines write instants. */
function chineseTime(ms: number): string {
  const [date, time] = formatBeijing(ms).split(' ') as [string, string];
  const [y, m, d] = date.split('-');
  return `${y}年${m}月${d}日 ${time}`;
}

interface BillRow {
  at: number;
  cells: string[];
  kind: 'payment' | 'refund';
  cents: number;
  fee: number;
}

export interface TradeBillOptions {
  trades: Iterable<Trade>;
  period: string;
  /** The seller's account as the bill names it. */
  account: string;
  /** The amount the bill shows for a trade's payment, when a test asked for another one. */
  shownAmountCents?: (trade: Trade) => number | undefined;
  /** Rows of a trade the bill leaves out, when a test asked for that. */
  leftOut?: (trade: Trade) => readonly ('payment' | 'refunds')[];
  /** The export time written in the bill. */
  exportedAt: number;
}

/** The zip Alipay serves for a period, and its download name. */
export function buildTradeBill(options: TradeBillOptions): { zip: Buffer; fileName: string; rows: number } {
  const period = billPeriod(options.period);
  if (!period) throw new Error(`not a bill period: ${options.period}`);
  const inPeriod = (at: number | null): at is number => at !== null && at >= period.start && at < period.end;
  const pad = (value: string) => `${value}\t`;
  const money = (cents: number) => (cents < 0 ? `-${formatCents(-cents)}` : formatCents(cents));
  // Amount cells are right-aligned with spaces before their tab, as in Alipay's files.
  const amount = (cents: number) => money(cents).padStart(8, ' ');
  const rows: BillRow[] = [];
  for (const t of options.trades) {
    if (!t.tradeNo) continue;
    const leftOut = options.leftOut?.(t) ?? [];
    const common = (kind: string, at: number) => [
      t.tradeNo!, t.outTradeNo, kind, t.subject, formatBeijing(t.scannedAt ?? t.precreatedAt), formatBeijing(at), '', '', '', '', t.buyer?.logonId ?? '',
    ];
    if (inPeriod(t.paidAt) && !leftOut.includes('payment')) {
      const cents = options.shownAmountCents?.(t) ?? t.totalCents;
      const fee = feeCents(cents);
      rows.push({
        at: t.paidAt,
        kind: 'payment',
        cents,
        fee,
        cells: [...common('交易', t.paidAt), amount(cents), amount(cents), '0.00', '0.00', '0.00', '0.00', '0.00', '', '0.00', '0.00', '', amount(-fee), '0.00', ''],
      });
    }
    for (const refund of t.refunds) {
      if (!inPeriod(refund.at) || leftOut.includes('refunds')) continue;
      const cents = -refund.amountCents;
      const fee = -feeCents(refund.amountCents);
      rows.push({
        at: refund.at,
        kind: 'refund',
        cents,
        fee,
        cells: [...common('退款', refund.at), amount(cents), amount(cents), '0.00', '0.00', '0.00', '0.00', '0.00', '', '0.00', '0.00', refund.outRequestNo, amount(-fee), '0.00', ''],
      });
    }
  }
  rows.sort((a, b) => a.at - b.at);

  const payments = rows.filter((r) => r.kind === 'payment');
  const refunds = rows.filter((r) => r.kind === 'refund');
  const sum = (list: BillRow[], pick: (r: BillRow) => number) => list.reduce((total, r) => total + pick(r), 0);
  const prefix = `${options.account}_${period.compact}`;
  const dates = `#起始日期：[${chineseTime(period.start)}]   终止日期：[${chineseTime(period.end)}]`;
  const detail = [
    '#支付宝业务明细查询',
    `#账号：[${options.account}]`,
    dates,
    '#-----------------------------------------业务明细列表----------------------------------------',
    stringify([[...DETAIL_COLUMNS], ...rows.map((r) => r.cells.map(pad))], { record_delimiter: 'windows' }).trimEnd(),
    '#-----------------------------------------业务明细列表结束------------------------------------',
    `#交易合计：${payments.length}笔，商家实收共${money(sum(payments, (r) => r.cents))}元，商家优惠共0.00元`,
    `#退款合计：${refunds.length}笔，商家实收共${money(sum(refunds, (r) => r.cents))}元，商家优惠共0.00元`,
    `#导出时间：[${chineseTime(options.exportedAt)}]`,
    '',
  ].join('\r\n');
  const summaryColumns = ['门店编号', '门店名称', '交易订单总笔数', '退款订单总笔数', '订单金额（元）', '商家实收（元）', '支付宝优惠（元）', '商家优惠（元）', '卡消费金额（元）', '服务费（元）', '分润（元）', '实收净额（元）'];
  const net = sum(rows, (r) => r.cents) + sum(rows, (r) => -r.fee);
  const total = money(sum(rows, (r) => r.cents));
  const summary = [
    '#支付宝业务汇总查询',
    `#账号：[${options.account}]`,
    dates,
    '#-----------------------------------------业务汇总列表----------------------------------------',
    stringify(
      [
        summaryColumns,
        ['', '合计', String(payments.length), String(refunds.length), total, total, '0.00', '0.00', '0.00', money(sum(rows, (r) => -r.fee)), '0.00', money(net)].map(pad),
      ],
      { record_delimiter: 'windows' },
    ).trimEnd(),
    '#-----------------------------------------业务汇总列表结束------------------------------------',
    `#导出时间：[${chineseTime(options.exportedAt)}]`,
    '',
  ].join('\r\n');

  // Entry names in GBK without the UTF-8 flag, as Alipay's own zips have them.
  const zip = new AdmZip(undefined, {
    decoder: { efs: false, encode: (name: string) => iconv.encode(name, 'gbk'), decode: (raw: Buffer) => iconv.decode(raw, 'gbk') },
  } as unknown as AdmZip.InitOptions);
  zip.addFile(`${prefix}_业务明细.csv`, iconv.encode(detail, 'gbk'));
  zip.addFile(`${prefix}_业务明细(汇总).csv`, iconv.encode(summary, 'gbk'));
  return { zip: zip.toBuffer(), fileName: `${prefix}.csv.zip`, rows: rows.length };
}

interface DownloadLink {
  period: string;
  expiresAt: number;
  /** A bill is one app's: the trades made under it. */
  appId: string;
}

export interface BillDeskDeps {
  book: TradeBook;
  faults: FaultBoard;
  sellerId: string;
  /** The simulator's own URL, where download links point. */
  baseUrl: string;
  /** How long a bill_download_url works; Alipay's last about 30 s. */
  linkTtlMs: number;
}

/** Answers the download-URL query and serves the links it hands out. */
export class BillDesk {
  private readonly links = new Map<string, DownloadLink>();

  constructor(private readonly deps: BillDeskDeps) {}

  private get account(): string {
    return `${this.deps.sellerId}0156`;
  }

  /** alipay.data.dataservice.bill.downloadurl.query */
  downloadUrlQuery(appId: string, biz: Record<string, unknown>): AlipayPayload {
    if (biz.bill_type !== 'trade' && biz.bill_type !== 'signcustomer') {
      return businessFailed('isv.invalid-parameter', '参数无效: bill_type');
    }
    if (biz.bill_type !== 'trade') return businessFailed('isp.bill_not_exist', '账单不存在');
    const text = typeof biz.bill_date === 'string' ? biz.bill_date : '';
    const period = billPeriod(text);
    if (!period) return businessFailed('isv.invalid-parameter', '参数无效: bill_date');
    // A day's bill is published the next morning: today's and later days' do not exist yet.
    const now = Date.now();
    const todayStart = Math.floor((now + BEIJING_OFFSET_MS) / DAY_MS) * DAY_MS - BEIJING_OFFSET_MS;
    if (period.end > todayStart) return businessFailed('isp.bill_not_exist', '账单不存在');

    for (const [token, link] of this.links) if (link.expiresAt <= now) this.links.delete(token);
    const token = randomBytes(16).toString('hex');
    this.links.set(token, { period: text, expiresAt: now + this.deps.linkTtlMs, appId });
    const fileName = `${this.account}_${period.compact}.csv.zip`;
    const query = new URLSearchParams({
      bizType: 'trade',
      userId: this.account,
      fileType: 'csv.zip',
      bizDates: period.compact,
      downloadFileName: fileName,
      fileId: `/trade/${this.account}/${period.compact}.csv.zip`,
      timestamp: String(now),
      token,
    });
    return success({ bill_download_url: `${this.deps.baseUrl}/downloadBillFile.resource?${query}` });
  }

  /** Bill file downloads asked for so far (whether or not their link still worked). */
  downloadsAsked = 0;

  /** How long a download is held back (the global billDownloadDelayMs fault). */
  downloadDelayMs(): number {
    return this.deps.faults.global.billDownloadDelayMs ?? 0;
  }

  /** The zip behind a link, or undefined when the link is unknown or has expired. */
  download(token: string): { zip: Buffer; fileName: string } | undefined {
    const link = this.links.get(token);
    if (!link || link.expiresAt <= Date.now()) return undefined;
    const { faults } = this.deps;
    return buildTradeBill({
      trades: this.deps.book.list().filter((t) => t.appId === link.appId),
      period: link.period,
      account: this.account,
      shownAmountCents: (t) => {
        const shown = faults.effective(t.outTradeNo).billAmount;
        if (shown === undefined) return undefined;
        const [yuan, fen] = shown.split('.') as [string, string];
        return Number(yuan) * 100 + Number(fen);
      },
      leftOut: (t) => faults.effective(t.outTradeNo).billLeaveOut ?? [],
      exportedAt: Date.now(),
    });
  }
}

/** GET /downloadBillFile.resource?…&token=…: the bill, while its link lasts. */
export function billRouter(desk: BillDesk): Router {
  const router = Router();
  router.get('/downloadBillFile.resource', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    desk.downloadsAsked += 1;
    const delayMs = desk.downloadDelayMs();
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const bill = desk.download(token);
    if (!bill) {
      res.status(404).type('text/html;charset=utf-8').send('<html><body>下载链接已失效，请重新获取</body></html>');
      return;
    }
    res
      .status(200)
      .type('application/oct-stream')
      .set('Content-Disposition', `attachment; filename=${encodeURIComponent(bill.fileName)}`)
      .send(bill.zip);
  });
  /** Test control: how many bill downloads were asked for. */
  router.get('/sim/bills/downloads', (_req, res) => {
    res.json({ asked: desk.downloadsAsked });
  });
  return router;
}
