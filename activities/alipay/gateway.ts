// One Alipay call through the unmodified alipay-sdk, its answer's RSA2 signature verified, and
// the sorting of what comes back: transport errors, 20000 and ACQ.SYSTEM_ERROR are retried (every
// call is idempotent by out_trade_no); an answer that cannot be placed is retried for a bounded
// time, then reported as unplaceable. Every call is counted in the gateway metrics.
import type { Span } from '@opentelemetry/api';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AlipaySdk } from 'alipay-sdk';
import { FAILURE } from '../../lib/payments/activity-contracts.js';
import { cutShort } from '../../lib/platform/logger.js';
import { withClientSpan } from '../../lib/platform/tracing.js';
import { countGatewayCall, type GatewayResult } from '../metrics.js';

/** alipay-sdk answers in camelCase. */
export interface GatewayAnswer {
  code: string;
  msg?: string;
  subCode?: string;
  subMsg?: string;
  [field: string]: unknown;
}

export const RETRYABLE_SUB_CODES = new Set(['ACQ.SYSTEM_ERROR', 'isp.unknow-error', 'aop.ACQ.SYSTEM_ERROR']);

/** alipay-sdk's errors before any answer was read: the gateway could not be reached or failed. */
export function isTransportFailure(err: unknown): boolean {
  const message = (err as Error).message ?? '';
  return message.startsWith('HttpClient Request error') || message.startsWith('HTTP 请求错误');
}

/** When the running activity was first scheduled; undefined outside an activity. */
function activityScheduledAt(): number | undefined {
  try {
    return Context.current().info.scheduledTimestampMs;
  } catch {
    return undefined;
  }
}

export function describe(method: string, answer: GatewayAnswer): string {
  return `${method}: ${answer.code} ${answer.msg ?? ''}${answer.subCode ? ` (${answer.subCode}: ${answer.subMsg ?? ''})` : ''}`.trim();
}

/** Each app's signing client (lib/alipay/apps.ts): the configured app when none is named. */
export interface AlipayClients {
  client(appId?: string): Promise<AlipaySdk | undefined>;
}

/** The calls of one set of activities, bound to the apps' clients and the unplaceable bound. */
export interface Gateway {
  /** Returns success and business-error answers; throws for what a retry may fix. */
  call(appId: string | undefined, method: string, params: Record<string, unknown>): Promise<GatewayAnswer>;
  /** The failure for an answer that cannot be placed: retried for a while, then final. */
  unexpected(method: string, answer: GatewayAnswer | string): ApplicationFailure;
}

export function createGateway(apps: AlipayClients, options: { unplaceableRetryMs: number }): Gateway {
  /** Returns success and business-error answers; throws for what a retry may fix. */
  async function call(appId: string | undefined, method: string, params: Record<string, unknown>): Promise<GatewayAnswer> {
    const sdk = await apps.client(appId);
    // An order of an app this engine no longer has: pending (and visible) until the app is back.
    if (!sdk) throw ApplicationFailure.retryable(`${method}: no Alipay app ${appId} is configured or registered`, 'AlipayAppUnknown');
    // One span per call, named for the method: what Alipay answered and how long it took, never
    // the request (its URL holds the signature) nor the answer's fields (a buyer's id).
    return withClientSpan(method, { 'alipay.method': method, ...(appId ? { 'alipay.app_id': appId } : {}) }, (span) => exec(sdk, method, params, span));
  }

  async function exec(sdk: AlipaySdk, method: string, params: Record<string, unknown>, span: Span): Promise<GatewayAnswer> {
    const started = performance.now();
    const count = (result: GatewayResult, subCode?: string) => {
      const seconds = (performance.now() - started) / 1000;
      countGatewayCall(method, result, seconds, subCode);
      span.setAttributes({ 'alipay.result': result, 'alipay.latency_ms': Math.round(seconds * 1000) });
    };
    let answer: GatewayAnswer;
    try {
      answer = (await sdk.exec(method, params, { validateSign: true })) as unknown as GatewayAnswer;
    } catch (err) {
      if (isTransportFailure(err)) {
        count('transport_error');
        throw ApplicationFailure.retryable(`${method}: ${(err as Error).message}`, 'AlipayUnavailable');
      }
      // A body that does not parse or whose signature does not verify (an unsigned error_response).
      count('unverifiable');
      throw unexpected(method, `unverifiable answer: ${(err as Error).message}`);
    }
    span.setAttributes({ 'alipay.code': cutShort(String(answer.code)), ...(answer.subCode ? { 'alipay.sub_code': cutShort(String(answer.subCode)) } : {}) });
    if (answer.code === '20000' || (answer.subCode && RETRYABLE_SUB_CODES.has(answer.subCode))) {
      count('unavailable');
      throw ApplicationFailure.retryable(describe(method, answer), 'AlipaySystemError');
    }
    if (answer.code === '10000') count('success');
    else if (answer.code === '10003') count('waiting');
    else count('business_failure', answer.subCode ?? answer.code);
    return answer;
  }

  /** Once a QR code is out, money may move: an answer we cannot place is never taken as an
   *  outcome. It is retried (a failing pending activity in the UI) for a bounded time, in case it
   *  was transient; after that it is reported as unplaceable and the workflow decides. */
  function unexpected(method: string, answer: GatewayAnswer | string): ApplicationFailure {
    const message = typeof answer === 'string' ? `${method}: ${answer}` : describe(method, answer);
    // Outside an activity (the worker's poll sweeper) there is no retry to bound: no news.
    const scheduledTimestampMs = activityScheduledAt() ?? Date.now();
    if (Date.now() - scheduledTimestampMs >= options.unplaceableRetryMs) {
      return ApplicationFailure.nonRetryable(message, FAILURE.alipayUnplaceable);
    }
    return ApplicationFailure.retryable(message, FAILURE.alipayUnexpected);
  }

  return { call, unexpected };
}
