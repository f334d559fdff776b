// One signed call to the merchant API. The signature covers the path and query and the body bytes
// exactly as they go on the wire, so both are fixed here once and sent as signed.
import { signRequest } from '../lib/merchants/signing.js';
import type { MerchantCredentials } from './credentials.js';
import { CliError, EXIT } from './exit.js';

/** Create and refund wait for Alipay up to the API's own answer timeout (10 s by default). */
const ANSWER_TIMEOUT_MS = 60_000;

export interface ApiAnswer {
  status: number;
  ok: boolean;
  /** The parsed JSON answer, or undefined when the body is not JSON (a proxy's error page). */
  json: unknown;
  text: string;
  url: string;
}

/** Checks --api / DURAPAY_API_URL once, before anything is signed. */
export function parseApiUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`--api: "${text}" is not a URL like http://127.0.0.1:3000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--api: must be an http:// or https:// URL`);
  if (url.search || url.hash || url.username || url.password) {
    throw new CliError('--api: give the base URL alone, without a query, fragment or user name');
  }
  return url;
}

/** A merchant's signature (/v1), or the operators' bearer token (/ops). */
export type ApiAuth = MerchantCredentials | { opsToken: string };

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface CallOptions {
  /** Ends the call early (listen's Ctrl-C); the caller checks signal.aborted before reporting it. */
  signal?: AbortSignal;
  /** What to say when a change may have been applied without an answer: false when the same
   *  command again would make a second one (a webhook endpoint has no idempotency key). */
  repeatSafe?: boolean;
}

export async function callApi(
  base: URL,
  auth: ApiAuth,
  method: HttpMethod,
  pathWithQuery: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<ApiAnswer> {
  // A base with a path (behind a proxy) keeps it. The URL parser may normalise what it is given
  // (percent-encoding, dot segments): sign what it will send, not what was asked for.
  const url = new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${pathWithQuery}`);
  const sentPath = `${url.pathname}${url.search}`;
  const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...(bytes && { 'content-type': 'application/json' }),
    ...('opsToken' in auth
      ? { authorization: `Bearer ${auth.opsToken}` }
      : signRequest(auth.merchantId, auth.secret, { method, pathWithQuery: sentPath, body: bytes })),
  };
  let response: Response;
  try {
    // A redirect would resend the request to a path its signature does not cover: show it instead.
    response = await fetch(url, { method, headers, body: bytes, redirect: 'manual', signal: answerSignal(options.signal) });
  } catch (err) {
    throw unreachable(url, method, err, options.repeatSafe ?? true);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    throw unreachable(url, method, err, options.repeatSafe ?? true);
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, ok: response.ok, json, text, url: url.href };
}

function answerSignal(caller: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(ANSWER_TIMEOUT_MS);
  return caller ? AbortSignal.any([timeout, caller]) : timeout;
}

/** Failures before the request could have left: nothing happened at the API. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function unreachable(url: URL, method: string, err: unknown, repeatSafe: boolean): CliError {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  // A change that timed out or lost its answer may have been applied; the API makes repeating it safe.
  const maybeApplied =
    method === 'GET' || NOT_SENT.has(error.cause?.code ?? '')
      ? ''
      : repeatSafe
        ? ' (it may have taken effect; the same command again is safe)'
        : ' (it may have taken effect: look before making it again)';
  if (error.name === 'TimeoutError') {
    return new CliError(`no answer from ${url.href} within ${ANSWER_TIMEOUT_MS / 1000} s${maybeApplied}`, EXIT.unreachable);
  }
  const why = error.cause?.message ?? error.cause?.code ?? error.message;
  return new CliError(`cannot reach ${url.href}: ${why}${maybeApplied}`, EXIT.unreachable);
}
