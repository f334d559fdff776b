// Alipay's trade bill at the simulated gateway, through the engine's own alipay-sdk client, read
// byte by byte as Alipay documents it (GBK entry names without the UTF-8 flag, GBK CSV, # comment
// lines, tab padding, 交易 and 退款 rows); then the engine's streaming reader against that bill and
// against the variants real bills come in.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AdmZip from 'adm-zip';
import type { AlipaySdk } from 'alipay-sdk';
import { stringify } from 'csv-stringify/sync';
import iconv from 'iconv-lite';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillFormatError, readTradeBill, type BillRow } from '../activities/reconciliation/bill-file.js';
import { createAlipayClient } from '../lib/alipay/client.js';
import { beijingDay, beijingDayStart } from '../lib/payments/reconciliation.js';
import { generateRsaKeyPair, type RunningSimulator, startSimulator } from '../simulator/index.js';

const APP_ID = '9021000000000003';
const DAY_MS = 86_400_000;
const appKeys = generateRsaKeyPair();
const alipayKeys = generateRsaKeyPair();
const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';

let sim: RunningSimulator;
let client: AlipaySdk;
let dir: string;
let seq = 0;

const exec = (method: string, bizContent: Record<string, unknown>) => client.exec(method, { bizContent }, { validateSign: true }) as Promise<Record<string, any>>;
const control = () => request(sim.url);
const billUrl = (date: string) => exec(BILL_METHOD, { bill_type: 'trade', bill_date: date });

/** A trade paid (and perhaps refunded) on `date` by Alipay's clock for it. */
async function tradeOn(date: string, amount: string, refunds: [string, string][] = [], faults: Record<string, unknown> = {}) {
  const outTradeNo = `B${Date.now()}_${++seq}`;
  await control().post(`/sim/trades/${outTradeNo}/faults`).send({ clockSkewMs: Date.now() - (beijingDayStart(date)! + 12 * 3_600_000), ...faults }).expect(200);
  expect(await exec('alipay.trade.precreate', { out_trade_no: outTradeNo, total_amount: amount, subject: '一杯茶, #1' })).toMatchObject({ code: '10000' });
  const paid = (await control().post(`/sim/trades/${outTradeNo}/pay`).expect(200)).body;
  for (const [outRequestNo, refundAmount] of refunds) {
    expect(await exec('alipay.trade.refund', { out_trade_no: outTradeNo, out_request_no: outRequestNo, refund_amount: refundAmount })).toMatchObject({ code: '10000', fundChange: 'Y' });
  }
  return { outTradeNo, tradeNo: paid.tradeNo as string };
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function readRows(zip: Buffer): Promise<{ rows: BillRow[]; summary: Awaited<ReturnType<typeof readTradeBill>> }> {
  const path = join(dir, `bill-${++seq}.zip`);
  writeFileSync(path, zip);
  const rows: BillRow[] = [];
  const summary = await readTradeBill(path, async (batch) => void rows.push(...batch), 2);
  return { rows, summary };
}

beforeAll(async () => {
  sim = await startSimulator({ apps: [{ appId: APP_ID, publicKey: appKeys.publicKey }], alipayPrivateKey: alipayKeys.privateKey, billLinkTtlMs: 1_500 });
  client = createAlipayClient({ appId: APP_ID, privateKey: appKeys.privateKey, credentials: { mode: 'key', alipayPublicKey: alipayKeys.publicKey }, gatewayUrl: sim.gatewayUrl });
  dir = mkdtempSync(join(tmpdir(), 'durapay-bills-'));
});
afterAll(async () => {
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('alipay.data.dataservice.bill.downloadurl.query', () => {
  it('answers isp.bill_not_exist for today and later days, and refuses what is not a bill date', async () => {
    for (const date of [beijingDay(Date.now()), beijingDay(Date.now() + DAY_MS), beijingDay(Date.now()).slice(0, 7)]) {
      expect(await billUrl(date)).toMatchObject({ code: '40004', subCode: 'isp.bill_not_exist' });
    }
    for (const date of ['2025-02-30', '20250101', '']) {
      expect(await billUrl(date)).toMatchObject({ code: '40004', subCode: 'isv.invalid-parameter' });
    }
  });

  it("serves a past day's bill: a zip of two GBK CSV files with GBK names, # comments, tab padding, 交易 and 退款 rows", async () => {
    const date = beijingDay(Date.now() - 10 * DAY_MS);
    const paid = await tradeOn(date, '12.50', [['r-1', '2.50']]);
    await tradeOn(beijingDay(Date.now() - 11 * DAY_MS), '1.00'); // another day: not in this bill

    const answer = await billUrl(date);
    expect(answer).toMatchObject({ code: '10000', billDownloadUrl: expect.stringContaining('/downloadBillFile.resource?') });
    const zip = new AdmZip(await download(answer.billDownloadUrl));
    const entries = zip.getEntries();
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(entry.header.flags & 0x800).toBe(0); // names are not UTF-8...
    const names = entries.map((e) => iconv.decode(e.rawEntryName, 'gbk'));
    const compact = date.replaceAll('-', '');
    expect(names).toEqual([`20881021778468800156_${compact}_业务明细.csv`, `20881021778468800156_${compact}_业务明细(汇总).csv`]);
    expect(entries[0]!.rawEntryName.toString('utf8')).not.toContain('业务明细'); // ...but GBK

    const detail = iconv.decode(entries[0]!.getData(), 'gbk').split('\r\n');
    expect(detail[0]).toBe('#支付宝业务明细查询');
    const header = detail.findIndex((line) => line.startsWith('支付宝交易号,'));
    expect(detail.slice(0, header).every((line) => line.startsWith('#'))).toBe(true);
    const data = detail.slice(header + 1).filter((line) => line && !line.startsWith('#'));
    expect(data).toHaveLength(2);
    expect(data[0]).toMatch(new RegExp(`^${paid.tradeNo}\\t,${paid.outTradeNo}\\t,交易\\t,"一杯茶, #1\\t",`));
    expect(data[0]).toContain('   12.50\t');
    expect(data[1]).toMatch(new RegExp(`^${paid.tradeNo}\\t,${paid.outTradeNo}\\t,退款\\t,`));
    expect(data[1]).toContain('   -2.50\t');
    expect(data[1]).toContain(',r-1\t,');
    expect(detail.filter((line) => line.startsWith('#')).slice(-3)[0]).toBe('#交易合计：1笔，商家实收共12.50元，商家优惠共0.00元');
    expect(iconv.decode(entries[1]!.getData(), 'gbk')).toContain('#支付宝业务汇总查询');
  });

  it('a download link lasts a short while only', async () => {
    const answer = await billUrl(beijingDay(Date.now() - 12 * DAY_MS));
    expect((await fetch(answer.billDownloadUrl)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_600)); // the link's lifetime in this simulator
    expect((await fetch(answer.billDownloadUrl)).status).toBe(404);
  });

  it('lists an unseen payment, shows another amount when asked to, and leaves rows out when asked to', async () => {
    const date = beijingDay(Date.now() - 13 * DAY_MS);
    const tampered = await tradeOn(date, '10.00', [], { billAmount: '9.99' });
    const leftOut = await tradeOn(date, '3.00', [['r', '1.00']], { billLeaveOut: ['refunds'] });
    const unseenNo = `U${Date.now()}`;
    await control().post(`/sim/trades/${unseenNo}/faults`).send({ clockSkewMs: Date.now() - (beijingDayStart(date)! + 3_600_000) }).expect(200);
    const unseen = (await control().post(`/sim/trades/${unseenNo}/unseen-payment`).send({ amount: '7.77' }).expect(200)).body;
    expect(unseen).toMatchObject({ status: 'TRADE_SUCCESS', notifyUrl: null, notifies: [] });
    expect(await exec('alipay.trade.query', { out_trade_no: unseenNo })).toMatchObject({ tradeStatus: 'TRADE_SUCCESS', totalAmount: '7.77' });
    expect((await control().post(`/sim/trades/${unseenNo}/unseen-payment`).send({})).status).toBe(409);

    const { rows } = await readRows(await download((await billUrl(date)).billDownloadUrl));
    const amounts = Object.fromEntries(rows.map((r) => [`${r.outTradeNo} ${r.kind}`, r.amountFen]));
    expect(amounts).toEqual({ [`${tampered.outTradeNo} payment`]: 999, [`${leftOut.outTradeNo} payment`]: 300, [`${unseenNo} payment`]: 777 });
  });
});

describe("the engine's bill reader", () => {
  it('reads the simulator’s bill as a stream: payments and refunds with positive amounts, Beijing times, trimmed values', async () => {
    const date = beijingDay(Date.now() - 14 * DAY_MS);
    const a = await tradeOn(date, '20.00', [['r-a', '5.00'], ['r-b', '15.00']]);
    const { rows, summary } = await readRows(await download((await billUrl(date)).billDownloadUrl));
    expect(summary).toMatchObject({ payments: 1, refunds: 2, ignored: 0, entry: expect.stringMatching(/_业务明细\.csv$/) });
    expect(rows.map(({ kind, outTradeNo, alipayTradeNo, outRequestNo, amountFen }) => ({ kind, outTradeNo, alipayTradeNo, outRequestNo, amountFen }))).toEqual([
      { kind: 'payment', outTradeNo: a.outTradeNo, alipayTradeNo: a.tradeNo, outRequestNo: undefined, amountFen: 2000 },
      { kind: 'refund', outTradeNo: a.outTradeNo, alipayTradeNo: a.tradeNo, outRequestNo: 'r-a', amountFen: 500 },
      { kind: 'refund', outTradeNo: a.outTradeNo, alipayTradeNo: a.tradeNo, outRequestNo: 'r-b', amountFen: 1500 },
    ]);
    expect(rows.every((r) => r.completedAt && beijingDay(r.completedAt.getTime()) === date)).toBe(true);
  });

  /** A bill as some real ones come: another column order, ASCII brackets, spaces and tabs, other business types. */
  function variantBill(lines: string[][], options: { utf8Names?: boolean; header?: string[] } = {}) {
    const header = options.header ?? ['支付宝交易号', '业务类型', '商户订单号', '完成时间', '订单金额(元)', '商家实收(元)', '退款批次号/请求号', '服务费(元)', '备注'];
    const text = ['#支付宝业务明细查询', '#账号：[20880000000000000156]', stringify([header, ...lines]).trim(), '#交易合计：…', '#导出时间：[…]', ''].join('\n');
    const encoding = options.utf8Names ? 'utf8' : 'gbk';
    const zip = new AdmZip(undefined, {
      decoder: { efs: options.utf8Names ?? false, encode: (s: string) => iconv.encode(s, encoding), decode: (b: Buffer) => iconv.decode(b, encoding) },
    } as unknown as AdmZip.InitOptions);
    zip.addFile('2088_20250101_业务明细(汇总).csv', iconv.encode('#汇总\n门店编号,合计\n', 'gbk'));
    zip.addFile('2088_20250101_业务明细.csv', iconv.encode(text, 'gbk'));
    return zip.toBuffer();
  }

  it('finds columns by name, reads refunds from whichever amount is negative, and skips other business types', async () => {
    const zip = variantBill(
      [
        [' 2025010122001\t', '交易 ', '\tm1_a', '2025-01-01 10:00:00', '  8.8', '8.80', '', '-0.05', ''],
        ['2025010122001\t', '退款\t', 'm1_a', '2025-01-01 11:00:00', '8.80', '-3.30', 'req-1', '0.02', '#not a comment'],
        ['2025010122002', '冻结', 'm1_b', '2025-01-01 12:00:00', '1.00', '1.00', '', '', ''],
      ],
      { utf8Names: true },
    );
    const { rows, summary } = await readRows(zip);
    expect(summary).toMatchObject({ payments: 1, refunds: 1, ignored: 1 });
    expect(rows).toMatchObject([
      { kind: 'payment', alipayTradeNo: '2025010122001', outTradeNo: 'm1_a', amountFen: 880, feeFen: -5, completedAt: new Date('2025-01-01T02:00:00Z') },
      { kind: 'refund', outTradeNo: 'm1_a', outRequestNo: 'req-1', amountFen: 330, feeFen: 2 },
    ]);
  });

  it.each([
    ['a header without 业务类型', { header: ['支付宝交易号', '商户订单号', '订单金额（元）', '退款批次号/请求号'] }, [], /header has no 业务类型/],
    ['an amount that is not one', {}, [['1', '交易', 'm', '', '1.2.3', '', '', '', '']], /line 4: 订单金额（元） "1.2.3" is not an amount/],
    ['a refund without a negative amount', {}, [['1', '退款', 'm', '', '1.00', '1.00', 'r', '', '']], /line 4: a refund without a negative/],
    ['a time that is not one', {}, [['1', '交易', 'm', 'yesterday', '1.00', '1.00', '', '', '']], /完成时间 "yesterday" is not a time/],
  ])('refuses %s, naming the line', async (_name, options, lines, message) => {
    await expect(readRows(variantBill(lines as string[][], options as { header?: string[] }))).rejects.toThrow(BillFormatError);
    await expect(readRows(variantBill(lines as string[][], options as { header?: string[] }))).rejects.toThrow(message);
  });

  it('refuses a zip without a detail file, and a download that is no zip at all', async () => {
    const zip = new AdmZip();
    zip.addFile('readme.txt', Buffer.from('hello'));
    await expect(readRows(zip.toBuffer())).rejects.toThrow(/no 业务明细\.csv detail file/);
    await expect(readRows(Buffer.from('<html>链接已过期</html>'))).rejects.toThrow(/not a zip/);
  });
});
