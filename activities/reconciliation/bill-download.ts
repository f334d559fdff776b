// Alipay's bill of a day, fetched: the download-URL query (with its own signing client per app)
// and the download streamed into a file. The URL lives only here, never in workflow history or a log.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FAILURE, type AlipayRefusal } from '../../lib/payments/activity-contracts.js';
import { describe, isTransportFailure, RETRYABLE_SUB_CODES, type AlipayClients, type GatewayAnswer } from '../alipay/gateway.js';
import { BillDownloadError, saveDownload } from './bill-file.js';

const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';
/** Alipay's "no bill for this day yet" (isp.bill_not_exist, and the older BILL_NOT_EXIST). */
const BILL_NOT_READY = /bill_not_exist/i;
/** A day's bill of a busy merchant is tens of megabytes; anything this large is not one. */
const MAX_BILL_BYTES = 1024 ** 3;

/** Alipay's answer to the download-URL query: the URL, or "not yet". */
export async function billDownloadUrl(
  alipay: AlipayClients,
  appId: string,
  date: string,
): Promise<{ url: string } | { notReady: { subCode: string; message: string } }> {
  const sdk = await alipay.client(appId);
  if (!sdk) throw ApplicationFailure.retryable(`${BILL_METHOD}: no Alipay app ${appId} is configured or registered`, 'AlipayAppUnknown');
  let answer: GatewayAnswer;
  try {
    answer = (await sdk.exec(BILL_METHOD, { bizContent: { billType: 'trade', billDate: date } }, { validateSign: true })) as unknown as GatewayAnswer;
  } catch (err) {
    if (isTransportFailure(err)) throw ApplicationFailure.retryable(`${BILL_METHOD}: ${(err as Error).message}`, 'AlipayUnavailable');
    throw ApplicationFailure.retryable(`${BILL_METHOD}: unverifiable answer: ${(err as Error).message}`, 'AlipayUnexpectedAnswer');
  }
  if (answer.code === '10000' && typeof answer.billDownloadUrl === 'string' && /^https?:\/\//.test(answer.billDownloadUrl)) {
    return { url: answer.billDownloadUrl };
  }
  if (answer.code === '20000' || (answer.subCode && RETRYABLE_SUB_CODES.has(answer.subCode))) {
    throw ApplicationFailure.retryable(describe(BILL_METHOD, answer), 'AlipaySystemError');
  }
  if (answer.code === '40004' && answer.subCode && BILL_NOT_READY.test(answer.subCode)) {
    return { notReady: { subCode: answer.subCode, message: answer.subMsg ?? answer.msg ?? '' } };
  }
  const refusal: AlipayRefusal = { code: answer.code, msg: answer.msg, subCode: answer.subCode, subMsg: answer.subMsg };
  throw ApplicationFailure.nonRetryable(describe(BILL_METHOD, answer), FAILURE.alipayRejected, refusal);
}

/** The bill into a file of its own: streamed to disk, never held in memory. */
export async function downloadBill(url: string, path: string, timeoutMs: number): Promise<void> {
  const cancelled = Context.current().cancellationSignal;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), cancelled]) });
  } catch (err) {
    // Never the URL itself in a message: it may carry a signature.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new BillDownloadError(`the bill download failed: ${cause?.code ?? cause?.message ?? (err as Error).name}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new BillDownloadError(`the bill download answered HTTP ${res.status}`);
  }
  await saveDownload(Readable.fromWeb(res.body as unknown as WebReadableStream), path, MAX_BILL_BYTES);
}

