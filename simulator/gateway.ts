import type { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request, Router } from 'express';
import type { Logger } from 'pino';
import {
  type AlipayPayload,
  businessFailed,
  invalidArguments,
  invalidParameter,
  serviceUnavailable,
  textField,
} from './answers.js';
import type { FaultBoard, Faults } from './faults.js';
import { type AlipaySigner, rsa2Sign, rsa2Verify, signContent } from './signing.js';
import { parseBeijing } from './time.js';
import type { BillDesk } from './bills.js';
import type { CallRecord, TradeBook } from './trades.js';

export interface GatewayDeps {
  book: TradeBook;
  bills: BillDesk;
  faults: FaultBoard;
  apps: ReadonlyMap<string, RegisteredApp>;
  /** Certificate mode: the alipay_root_cert_sn every request must carry. */
  rootCertSn?: string;
  /** Signs the answers about a trade (or, with null, about none). */
  signerFor: (appId: string | null, outTradeNo: string | null) => AlipaySigner;
  calls: CallRecord[];
  stopSignal: AbortSignal;
  logger: Logger;
}

/** An app as Alipay knows it: its public key and, in certificate mode, its certificate's serial number. */
export interface RegisteredApp {
  publicKey: KeyObject;
  certSn?: string;
}

type Params = Record<string, string>;
type Biz = Record<string, unknown>;

interface GatewayCall {
  appId: string;
  biz: Biz;
  notifyUrl: string | null;
  faults: Faults;
}

const methods: Record<string, (deps: GatewayDeps, call: GatewayCall) => AlipayPayload> = {
  'alipay.trade.precreate': ({ book }, call) => book.precreate(call.appId, call.biz, call.notifyUrl),
  'alipay.trade.pay': ({ book }, call) => book.payByCode(call.appId, call.biz, call.notifyUrl),
  'alipay.trade.query': ({ book }, call) => book.query(call.biz),
  'alipay.trade.close': ({ book }, call) => book.close(call.biz, call.faults.payOnClose ?? false),
  'alipay.trade.cancel': ({ book }, call) => book.cancel(call.biz, call.faults.payOnClose ?? false),
  'alipay.trade.refund': ({ book }, call) => book.refund(call.biz, call.faults.sellerBalanceNotEnough ?? false),
  'alipay.trade.fastpay.refund.query': ({ book }, call) => book.refundQuery(call.biz),
  'alipay.data.dataservice.bill.downloadurl.query': ({ bills }, call) => bills.downloadUrlQuery(call.appId, call.biz),
};

/**
 * Fields Alipay adds to a method's business failures (40004): a refused refund still answers
 * refund_fee and send_back_fee, as "0.00", which says nothing about what the trade has refunded.
 */
const failureFields: Record<string, AlipayPayload> = {
  'alipay.trade.refund': { refund_fee: '0.00', send_back_fee: '0.00' },
};

type Outcome = { outTradeNo: string | null } & ({ payload: AlipayPayload; unsigned?: true } | { http500: true });

/** OpenAPI v2 gateway: `POST /gateway.do`, common params in the query, the rest form-encoded. */
export function gatewayRouter(deps: GatewayDeps): Router {
  const router = Router();
  router.all('/gateway.do', express.text({ type: () => true, limit: '1mb' }), async (req, res) => {
    const params = readParams(req);
    const method = params.method ?? null;
    const outcome = answer(deps, params);
    const payload = 'payload' in outcome ? outcome.payload : null;
    // Checked after the call took effect: only its answer is lost.
    const lost = method !== null && Object.hasOwn(methods, method) && deps.faults.takeLostAnswer(outcome.outTradeNo, method);
    const delayMs = deps.faults.effective(outcome.outTradeNo).delayMs ?? 0;
    const record: CallRecord = {
      at: new Date().toISOString(),
      method,
      appId: params.app_id ?? null,
      outTradeNo: outcome.outTradeNo,
      httpStatus: lost ? null : payload ? 200 : 500,
      code: textField(payload, 'code'),
      subCode: textField(payload, 'sub_code'),
      ...(lost ? { answerLost: true as const } : {}),
      ...(delayMs > 0 ? { delayedMs: delayMs } : {}),
    };
    deps.calls.push(record);
    if (outcome.outTradeNo !== null) deps.book.get(outcome.outTradeNo)?.calls.push(record);
    deps.logger.info(record, 'gateway call');

    // The call has already taken effect: a delayed answer models a reply lost to a client timeout.
    if (delayMs > 0) {
      try {
        await sleep(delayMs, undefined, { signal: deps.stopSignal });
      } catch {
        return;
      }
    }
    if (lost) {
      // No status line, no body: the client sees the connection drop.
      req.socket.destroy();
      return;
    }
    if (!payload) {
      res.status(500).type('text/plain').send('Internal Server Error');
      return;
    }
    // Alipay answers JSON as text/html.
    res.type('text/html;charset=utf-8');
    if ('unsigned' in outcome) {
      res.send(`{"error_response":${JSON.stringify(payload)}}`);
      return;
    }
    const responseKey = method ? `${method.replaceAll('.', '_')}_response` : 'error_response';
    res.send(signedResponseBody(responseKey, payload, deps.signerFor(params.app_id ?? null, outcome.outTradeNo)));
  });
  return router;
}

/** Query and form body merged; the SDK puts the common params in the query, biz_content in the body. */
function readParams(req: Request): Params {
  const params: Params = {};
  const query = new URL(req.originalUrl, 'http://gateway').searchParams;
  const body =
    typeof req.body === 'string' && req.is('application/x-www-form-urlencoded')
      ? new URLSearchParams(req.body)
      : new URLSearchParams();
  for (const [key, value] of [...query, ...body]) {
    if (!Object.hasOwn(params, key)) params[key] = value;
  }
  return params;
}

function answer(deps: GatewayDeps, params: Params): Outcome {
  const rejection = checkCommonParams(deps, params);
  if (rejection) return { payload: rejection, outTradeNo: null };
  const method = params.method!;
  const handler = methods[method];
  if (!handler) return { payload: invalidArguments('isv.invalid-method', '不存在的方法名'), outTradeNo: null };
  const biz = parseBizContent(params.biz_content);
  if (!biz) return { payload: invalidParameter('biz_content'), outTradeNo: null };

  const outTradeNo = deps.book.locate(biz)?.outTradeNo ?? (typeof biz.out_trade_no === 'string' ? biz.out_trade_no : null);
  const systemError = deps.faults.takeSystemError(outTradeNo, method);
  if (systemError === 'http500') return { http500: true, outTradeNo };
  if (systemError === '20000') return { payload: serviceUnavailable(), outTradeNo };
  if (systemError === 'ACQ.SYSTEM_ERROR') {
    return { payload: withFailureFields(method, businessFailed('ACQ.SYSTEM_ERROR', '系统错误')), outTradeNo };
  }
  if (systemError === 'error_response') {
    return { payload: invalidArguments('isv.invalid-app-auth-token', '无效的应用授权令牌'), outTradeNo, unsigned: true };
  }
  const refusal = deps.faults.takeRefusal(outTradeNo, method);
  if (refusal !== null) return { payload: withFailureFields(method, businessFailed(refusal, `模拟拒绝: ${refusal}`)), outTradeNo };
  const call = { appId: params.app_id!, biz, notifyUrl: params.notify_url ?? null, faults: deps.faults.effective(outTradeNo) };
  return { payload: withFailureFields(method, handler(deps, call)), outTradeNo };
}

function withFailureFields(method: string, payload: AlipayPayload): AlipayPayload {
  return payload.code === '40004' ? { ...payload, ...failureFields[method] } : payload;
}

/** The gateway's own checks, before any business logic; answers are 40002 Invalid Arguments. */
function checkCommonParams(deps: GatewayDeps, p: Params): AlipayPayload | null {
  if (!p.method) return invalidArguments('isv.missing-method', '缺少方法名参数');
  if (!p.app_id) return invalidArguments('isv.missing-app-id', '缺少AppID参数');
  const app = deps.apps.get(p.app_id);
  if (!app) return invalidArguments('isv.invalid-app-id', '无效的AppID参数');
  if (!p.sign) return invalidArguments('isv.missing-signature', '缺少签名参数');
  if (!p.sign_type) return invalidArguments('isv.missing-signature-type', '缺少签名类型参数');
  if (p.sign_type !== 'RSA2') return invalidArguments('isv.invalid-signature-type', '无效的签名类型');
  if (p.charset && p.charset.toLowerCase() !== 'utf-8') return invalidArguments('isv.invalid-charset', '字符集错误');
  if (!p.timestamp) return invalidArguments('isv.missing-timestamp', '缺少时间戳参数');
  // Format only: the SDK stamps the client's local wall clock, whatever its zone.
  if (parseBeijing(p.timestamp) === null) return invalidArguments('isv.invalid-timestamp', '非法的时间戳参数');
  if (!p.version) return invalidArguments('isv.missing-version', '缺少版本参数');
  if (app.certSn !== undefined) {
    const certificateProblem = checkCertificateSns(deps, app.certSn, p);
    if (certificateProblem) return certificateProblem;
  }
  const content = signContent(p, ['sign']);
  if (!rsa2Verify(content, p.sign, app.publicKey)) {
    return invalidArguments(
      'isv.invalid-signature',
      `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`,
    );
  }
  return null;
}

/**
 * Certificate mode: the request names the app's certificate and the root chain the app trusts.
 * isv.missing-app-cert-sn and isv.app-cert-not-exist are what merchants report Alipay answering;
 * the root chain's two are named after them.
 */
function checkCertificateSns(deps: GatewayDeps, appCertSn: string, p: Params): AlipayPayload | null {
  if (!p.app_cert_sn) return invalidArguments('isv.missing-app-cert-sn', '缺少应用公钥证书序列号');
  if (p.app_cert_sn !== appCertSn) return invalidArguments('isv.app-cert-not-exist', '应用公钥证书不存在');
  if (!p.alipay_root_cert_sn) return invalidArguments('isv.missing-alipay-root-cert-sn', '缺少支付宝根证书序列号');
  if (p.alipay_root_cert_sn !== deps.rootCertSn) return invalidArguments('isv.invalid-alipay-root-cert-sn', '无效的支付宝根证书序列号');
  return null;
}

function parseBizContent(text: string | undefined): Biz | null {
  if (text === undefined) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Biz) : null;
  } catch {
    return null;
  }
}

/**
 * `{"<key>":{...},"sign":"..."}` where the sign covers exactly the JSON text of the inner
 * object: the SDK cuts that text out of the raw body. Alipay escapes `/` as `\/`, so do we. In
 * certificate mode `alipay_cert_sn` names the certificate whose key signed, beside the sign.
 */
export function signedResponseBody(responseKey: string, payload: AlipayPayload, signer: AlipaySigner): string {
  const json = JSON.stringify(payload).replaceAll('/', '\\/');
  const certSn = signer.certSn === undefined ? '' : `"alipay_cert_sn":"${signer.certSn}",`;
  return `{"${responseKey}":${json},${certSn}"sign":"${rsa2Sign(json, signer.key)}"}`;
}
