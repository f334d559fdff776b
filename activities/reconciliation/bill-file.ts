// Alipay's trade bill as it comes: a zip (downloaded to a file, never held in memory) of GBK CSV
// files whose entry names are GBK too. The detail file (…业务明细.csv, not the …业务明细(汇总).csv
// summary) is read as a stream: zip entry → GB18030 decoder → CSV parser, a row at a time. `#`
// comment lines before the header and after the data are skipped, every value is trimmed of the
// tabs and spaces that pad it, and columns are found by their header names, not their positions.
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import yauzl from 'yauzl';
import { parseBeijingTime } from '../../lib/alipay/time.js';
import { parseSignedYuan } from '../../lib/payments/money.js';

/** A bill the engine cannot read as Alipay's trade bill; reading it again changes nothing. */
export class BillFormatError extends Error {
  override name = 'BillFormatError';
}

/** A download that did not give a bill (an expired link, an HTTP error): a fresh link may work. */
export class BillDownloadError extends Error {
  override name = 'BillDownloadError';
}

export interface BillRow {
  /** The line in the detail file, for messages. */
  line: number;
  kind: 'payment' | 'refund';
  alipayTradeNo: string;
  /** 商户订单号: the out_trade_no the merchant gave Alipay. */
  outTradeNo: string;
  /** 退款批次号/请求号: the refund's out_request_no. */
  outRequestNo?: string;
  /** The payment's amount, or the refund's, in fen, positive. */
  amountFen: number;
  /** 服务费, signed as the bill writes it. */
  feeFen?: number;
  completedAt?: Date;
}

export interface BillReadSummary {
  /** The detail file's name, as decoded. */
  entry: string;
  payments: number;
  refunds: number;
  /** Rows of other business types (neither 交易 nor 退款), counted and left out. */
  ignored: number;
}

const COLUMNS = {
  tradeNo: '支付宝交易号',
  outTradeNo: '商户订单号',
  type: '业务类型',
  completedAt: '完成时间',
  orderAmount: '订单金额（元）',
  received: '商家实收（元）',
  requestNo: '退款批次号/请求号',
  fee: '服务费（元）',
} as const;
const REQUIRED = [COLUMNS.tradeNo, COLUMNS.outTradeNo, COLUMNS.type, COLUMNS.orderAmount, COLUMNS.requestNo];

/** Header names as the bill writes them, with ASCII brackets read as the full-width ones. */
function columnName(raw: string): string {
  return raw.trim().replace(/\(/g, '（').replace(/\)/g, '）');
}

/** Entry names are GBK unless the entry's UTF-8 flag (bit 11) says otherwise. */
function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer;
  return (entry.generalPurposeBitFlag & 0x800) !== 0 ? raw.toString('utf8') : iconv.decode(raw, 'gb18030');
}

/** Streams `body` to `path`, refusing more than `maxBytes`. */
export async function saveDownload(body: Readable, path: string, maxBytes: number): Promise<number> {
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(new BillDownloadError(`the bill is larger than ${maxBytes} bytes`));
      else done(null, chunk);
    },
  });
  await pipeline(body, limit, createWriteStream(path));
  return bytes;
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (err, zip) => {
      if (err) reject(new BillDownloadError(`the download is not a zip: ${err.message}`));
      else resolve(zip);
    });
  });
}

/** The detail file's entry: the .csv whose name ends 业务明细.csv, not the (汇总) summary. */
function findDetailEntry(zip: yauzl.ZipFile): Promise<{ entry: yauzl.Entry; name: string }> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    zip.on('error', (err) => reject(new BillDownloadError(`the zip cannot be read: ${err.message}`)));
    zip.on('entry', (entry: yauzl.Entry) => {
      const name = entryName(entry);
      seen.push(name);
      const base = name.split('/').pop() ?? name;
      if (/业务明细\.csv$/i.test(base) && !base.includes('汇总')) resolve({ entry, name });
      else zip.readEntry();
    });
    zip.on('end', () => reject(new BillFormatError(`the zip has no 业务明细.csv detail file (entries: ${seen.join(', ') || 'none'})`)));
    zip.readEntry();
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => (err ? reject(new BillDownloadError(`the detail file cannot be read: ${err.message}`)) : resolve(stream)));
  });
}

/**
 * Reads the detail file of the bill zip at `zipPath`, handing rows to `onRows` in batches of
 * `batchSize`; the next batch is read only once the handler is done with the last one, so memory
 * stays bounded whatever the bill's size.
 */
export async function readTradeBill(
  zipPath: string,
  onRows: (rows: BillRow[]) => Promise<void>,
  batchSize = 5_000,
): Promise<BillReadSummary> {
  const zip = await openZip(zipPath);
  try {
    const { entry, name } = await findDetailEntry(zip);
    const content = await openEntry(zip, entry);
    const decoder = iconv.decodeStream('gb18030');
    const parser = parse({
      columns: (header: string[]) => {
        const names = header.map(columnName);
        const missing = REQUIRED.filter((column) => !names.includes(column));
        if (missing.length > 0) throw new BillFormatError(`the detail file's header has no ${missing.join(', ')} (it has ${names.join(', ')})`);
        return names;
      },
      comment: '#',
      // Only a # at the start of a line begins a comment: product names may contain one.
      comment_no_infix: true,
      relax_column_count: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
    });
    const flowing = pipeline(content, decoder, parser).catch((err: unknown) => {
      throw err instanceof BillFormatError ? err : new BillDownloadError(`the detail file cannot be read: ${(err as Error).message}`);
    });
    const summary: BillReadSummary = { entry: name, payments: 0, refunds: 0, ignored: 0 };
    let batch: BillRow[] = [];
    try {
      for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string | undefined>; info: { lines: number } }>) {
        const row = toRow(record, info.lines);
        if (!row) {
          summary.ignored += 1;
          continue;
        }
        summary[row.kind === 'payment' ? 'payments' : 'refunds'] += 1;
        batch.push(row);
        if (batch.length >= batchSize) {
          await onRows(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await onRows(batch);
    } catch (err) {
      parser.destroy();
      await flowing.catch(() => {});
      if (err instanceof BillFormatError || err instanceof BillDownloadError) throw err;
      throw err instanceof Error && (err as { code?: string }).code?.startsWith('CSV_') ? new BillFormatError(`the detail file is not CSV: ${err.message}`) : err;
    }
    await flowing;
    return summary;
  } finally {
    zip.close();
  }
}

/** One data row as a payment or a refund; undefined for other business types. */
function toRow(record: Record<string, string | undefined>, line: number): BillRow | undefined {
  const cell = (column: string) => (record[column] ?? '').trim();
  const type = cell(COLUMNS.type);
  if (type !== '交易' && type !== '退款') return undefined;
  const alipayTradeNo = cell(COLUMNS.tradeNo);
  if (!alipayTradeNo) throw new BillFormatError(`line ${line}: a ${type} row without 支付宝交易号`);
  const amount = (column: string) => {
    const text = cell(column);
    if (text === '') return undefined;
    const fen = parseSignedYuan(text);
    if (fen === undefined) throw new BillFormatError(`line ${line}: ${column} "${text}" is not an amount`);
    return fen;
  };
  const orderFen = amount(COLUMNS.orderAmount);
  const receivedFen = amount(COLUMNS.received);
  const completedText = cell(COLUMNS.completedAt);
  const completedMs = completedText ? parseBeijingTime(completedText) : undefined;
  if (completedText && completedMs === undefined) throw new BillFormatError(`line ${line}: 完成时间 "${completedText}" is not a time`);
  const feeFen = amount(COLUMNS.fee);
  const base = {
    line,
    alipayTradeNo,
    outTradeNo: cell(COLUMNS.outTradeNo),
    ...(feeFen === undefined ? {} : { feeFen }),
    ...(completedMs === undefined ? {} : { completedAt: new Date(completedMs) }),
  };
  if (type === '交易') {
    if (orderFen === undefined || orderFen < 0) throw new BillFormatError(`line ${line}: a payment whose 订单金额 is ${orderFen ?? 'missing'}`);
    return { ...base, kind: 'payment', amountFen: orderFen };
  }
  // A refund's amounts are negative; which column carries the refund differs between bill versions.
  const refundFen = orderFen !== undefined && orderFen < 0 ? -orderFen : receivedFen !== undefined && receivedFen < 0 ? -receivedFen : undefined;
  if (refundFen === undefined) throw new BillFormatError(`line ${line}: a refund without a negative 订单金额 or 商家实收`);
  const outRequestNo = cell(COLUMNS.requestNo);
  return { ...base, kind: 'refund', amountFen: refundFen, ...(outRequestNo ? { outRequestNo } : {}) };
}
