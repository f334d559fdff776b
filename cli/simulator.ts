// Paying an order as its buyer, through the Alipay simulator the engine talks to: `pay` and
// `trigger`. A real Alipay QR code (https://qr.alipay.com/…) has no such route, and an engine
// that talks to the real Alipay is refused before anything is paid.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiAnswer } from './api-client.js';
import { CliError, EXIT } from './exit.js';
import { call, orderPath, refusedBy, type Env, type Values } from './kit.js';

const PROBE_TIMEOUT_MS = 5_000;

export type SimulatorCheck = { ok: true; simulatorUrl: string } | { ok: false; reason: string };

/**
 * Whether a qrCode is the simulator's (`<simulatorUrl>/qr/<token>`, and that simulator answers
 * `GET <simulatorUrl>/sim/health` with {"ok":true}). Alipay's own QR codes are refused without
 * asking anyone.
 */
export async function simulatorQrCode(qrCode: unknown, fetchImpl: typeof fetch = fetch): Promise<SimulatorCheck> {
  if (typeof qrCode !== 'string' || qrCode === '') return { ok: false, reason: 'the order has no QR code' };
  let url: URL;
  try {
    url = new URL(qrCode);
  } catch {
    return { ok: false, reason: `its QR code ${qrCode} is not a URL` };
  }
  if (url.hostname === 'alipay.com' || url.hostname.endsWith('.alipay.com')) {
    return { ok: false, reason: `its QR code ${url.origin}/… is the real Alipay's: the engine talks to Alipay, not to a simulator` };
  }
  const at = /^(.*)\/qr\/[^/]+$/.exec(url.pathname);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !at || url.search || url.hash) {
    return { ok: false, reason: `its QR code ${qrCode} is not a simulator's (<simulatorUrl>/qr/<token>)` };
  }
  const simulatorUrl = `${url.origin}${at[1]}`;
  let healthy = false;
  try {
    const answer = await fetchImpl(`${simulatorUrl}/sim/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' });
    const body = (await answer.json().catch(() => undefined)) as { ok?: unknown } | undefined;
    healthy = answer.status === 200 && body?.ok === true;
  } catch {
    healthy = false;
  }
  if (!healthy) {
    return { ok: false, reason: `${simulatorUrl}, where its QR code points, is not an Alipay simulator (GET /sim/health does not answer {"ok":true})` };
  }
  return { ok: true, simulatorUrl };
}


/** The buyer scans the simulator's QR code and pays (POST <qrCode>/pay). */
export async function payQrCode(qrCode: string): Promise<void> {
  let answer: Response;
  try {
    answer = await fetch(`${qrCode}/pay`, { method: 'POST', signal: AbortSignal.timeout(15_000), redirect: 'manual' });
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message ?? (error as Error).message;
    throw new CliError(`cannot reach the simulator at ${qrCode}/pay: ${cause}`, EXIT.unreachable);
  }
  if (!answer.ok) {
    const text = await answer.text().catch(() => '');
    throw new CliError(`the simulator refused to pay ${qrCode}: HTTP ${answer.status} ${text.slice(0, 300)}`, EXIT.refused);
  }
}

export async function readOrder(values: Values, env: Env, outTradeNo: string): Promise<Record<string, unknown>> {
  const answer = await call(values, env, 'GET', orderPath(outTradeNo));
  if (!answer.ok) throw refusedBy(answer, 'GET', `cannot read order ${outTradeNo}`);
  return answer.json as Record<string, unknown>;
}

/**
 * Polls the order until `until` says it is done (its answer), or until the deadline. A status in
 * `givesUp` ends the wait at once: the order will not get there.
 */
export async function waitForOrder(
  values: Values,
  env: Env,
  outTradeNo: string,
  wanted: string,
  { timeoutMs = 30_000, givesUp = ['CLOSED', 'REVIEW', 'PRECREATE_FAILED', 'FAILED'] }: { timeoutMs?: number; givesUp?: string[] } = {},
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  for (;;) {
    const order = await readOrder(values, env, outTradeNo);
    if (order.status === wanted) return order;
    if (typeof order.status === 'string' && givesUp.includes(order.status) && order.status !== wanted) {
      throw new CliError(`order ${outTradeNo} is ${order.status}, and will not be ${wanted}`, EXIT.refused);
    }
    if (Date.now() >= deadline) {
      throw new CliError(`order ${outTradeNo} is still ${String(order.status)} after ${Math.round(timeoutMs / 1000)} s, not ${wanted}`, EXIT.refused);
    }
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(delay * 2, 1_000);
  }
}

/** A refund until it settles (SUCCEEDED or FAILED), or the deadline. */
export async function waitForRefund(
  values: Values,
  env: Env,
  outTradeNo: string,
  outRequestNo: string,
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  for (;;) {
    const answer: ApiAnswer = await call(values, env, 'GET', `${orderPath(outTradeNo)}/refunds/${encodeURIComponent(outRequestNo)}`);
    if (!answer.ok) throw refusedBy(answer, 'GET', `cannot read refund ${outRequestNo} of ${outTradeNo}`);
    const refund = answer.json as Record<string, unknown>;
    if (refund.status === 'SUCCEEDED') return refund;
    if (refund.status === 'FAILED') throw new CliError(`refund ${outRequestNo} of ${outTradeNo} FAILED`, EXIT.refused);
    if (Date.now() >= deadline) {
      throw new CliError(`refund ${outRequestNo} of ${outTradeNo} is still ${String(refund.status)} after ${Math.round(timeoutMs / 1000)} s`, EXIT.refused);
    }
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(delay * 2, 1_000);
  }
}
