import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino, type Logger } from 'pino';
import { BillDesk, billRouter } from './bills.js';
import { controlRouter } from './control.js';
import { FaultBoard } from './faults.js';
import { certificatesIn, createAlipayPki, firstCertificateSn, type AlipayPki } from './certificates.js';
import { gatewayRouter, type RegisteredApp } from './gateway.js';
import { Notifier } from './notifier.js';
import { type AlipaySigner, loadPrivateKey, loadPublicKey } from './signing.js';
import { type CallRecord, TradeBook } from './trades.js';

export { generateRsaKeyPair } from './signing.js';

export interface SimulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Registered apps and their public keys (PEM). Each app signs in its own mode (alipayMode
   *  below is the default), as each app in Alipay's console has its own 接口加签方式. In
   *  certificate mode an app may bring the certificate (PEM) it was issued elsewhere, otherwise
   *  the simulator issues one. */
  apps: { appId: string; publicKey: string; alipayMode?: 'key' | 'cert'; appCert?: string; alipayPrivateKey?: string }[];
  /** The simulator's "Alipay" private key (PKCS8 PEM): signs responses and notifies. In key mode
   *  an app may have an Alipay key of its own (as each app shows its own 支付宝公钥 in the console). */
  alipayPrivateKey: string;
  /**
   * 'cert': certificate mode (公钥证书). The simulator makes a root chain, Alipay's certificate for
   * alipayPrivateKey and the apps' certificates at start; every request of such an app must carry
   * app_cert_sn and alipay_root_cert_sn, and its answers and notifies carry alipay_cert_sn.
   * The mode of apps that do not name one. Default: 'key'.
   */
  alipayMode?: 'key' | 'cert';
  sellerId?: string;
  /** Alipay's notify retry ladder (4m, 10m, 10m, 1h, 2h, 6h, 15h) on a compressed clock. */
  notifyRetryDelaysMs?: number[];
  /** How long a bill_download_url works (Alipay's: about 30 s). */
  billLinkTtlMs?: number;
  logger?: Logger;
}

export interface RunningSimulator {
  url: string;
  gatewayUrl: string;
  /** Certificate mode: the files Alipay hands out, as PEM (what the engine is configured with). */
  certificates?: AlipayCertificateFiles;
  stop(): Promise<void>;
}

export interface AlipayCertificateFiles {
  /** alipayCertPublicKey_RSA2.crt */
  alipayPublicCert: string;
  /** alipayRootCert.crt */
  alipayRootCert: string;
  /** appCertPublicKey_<app id>.crt, by app id. */
  appCerts: Record<string, string>;
}

const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];

export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const sellerId = opts.sellerId ?? '2088102177846880';
  const logger = opts.logger ?? pino({ level: 'silent' });
  const alipayKey = loadPrivateKey(opts.alipayPrivateKey);
  const modeOf = (app: SimulatorOptions['apps'][number]) => app.alipayMode ?? opts.alipayMode ?? 'key';
  const pki = opts.apps.some((a) => modeOf(a) === 'cert') ? await createAlipayPki(opts.alipayPrivateKey) : undefined;
  const appCerts: Record<string, string> = {};
  const apps = new Map<string, RegisteredApp>();
  const appAlipayKeys = new Map<string, KeyObject>();
  for (const registered of opts.apps) {
    const { appId, publicKey, appCert, alipayPrivateKey } = registered;
    const app: RegisteredApp = { publicKey: loadPublicKey(publicKey) };
    if (pki && modeOf(registered) === 'cert') {
      if (alipayPrivateKey) throw new Error(`app ${appId}: in certificate mode Alipay signs with its certificate's key, not a key of the app's own`);
      if (appCert) checkAppCertificate(appId, appCert, app.publicKey);
      appCerts[appId] = appCert ?? pki.issueAppCert(appId, app.publicKey);
      app.certSn = firstCertificateSn(appCerts[appId]);
    } else if (alipayPrivateKey) {
      appAlipayKeys.set(appId, loadPrivateKey(alipayPrivateKey));
    }
    apps.set(appId, app);
  }

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const stopping = new AbortController();
  const faults = new FaultBoard();
  const signsWithCertificate = (appId: string | null) => {
    const app = appId === null ? undefined : apps.get(appId);
    return app ? app.certSn !== undefined : opts.alipayMode === 'cert';
  };
  const signerFor = alipaySigners(alipayKey, appAlipayKeys, signsWithCertificate, pki, faults);
  const calls: CallRecord[] = [];
  const notifier = new Notifier({
    signerFor,
    sellerId,
    retryDelaysMs: opts.notifyRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    faultsFor: (outTradeNo) => faults.effective(outTradeNo),
    stopSignal: stopping.signal,
    logger,
  });
  const book = new TradeBook({
    sellerId,
    qrBaseUrl: url,
    onPaid: (trade) => notifier.deliverWithRetries(trade),
    onRefunded: (trade, refund) => notifier.deliverWithRetries(trade, refund),
    clockSkewMs: (outTradeNo) => faults.effective(outTradeNo).clockSkewMs ?? 0,
  });

  const bills = new BillDesk({ book, faults, sellerId, baseUrl: url, linkTtlMs: opts.billLinkTtlMs ?? 30_000 });

  const app = express();
  app.disable('x-powered-by');
  app.use(gatewayRouter({ book, bills, faults, apps, rootCertSn: pki?.rootChainSn, signerFor, calls, stopSignal: stopping.signal, logger }));
  app.use(billRouter(bills));
  app.use(controlRouter({ book, faults, notifier, calls, defaultAppId: opts.apps[0]?.appId ?? '', isCertificateApp: (appId) => (appId === null ? pki !== undefined : signsWithCertificate(appId)) }));
  server.on('request', app);
  logger.info({ url }, 'alipay simulator listening');

  return {
    url,
    gatewayUrl: `${url}/gateway.do`,
    ...(pki ? { certificates: { alipayPublicCert: pki.alipayCert.certificate, alipayRootCert: pki.rootChain, appCerts } } : {}),
    async stop() {
      stopping.abort();
      book.stop();
      notifier.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** A certificate the app brought must hold the key it signs with, or no request would verify. */
function checkAppCertificate(appId: string, appCert: string, publicKey: KeyObject): void {
  const [leaf] = certificatesIn(appCert);
  if (!leaf?.publicKey.equals(publicKey)) throw new Error(`app ${appId}: its certificate does not hold its public key`);
}

/** Answers and notifies for an app are signed in its mode: by Alipay's key (the app's own, in key
 *  mode, if it has one), or in certificate mode by Alipay's certificate, or by a rotated
 *  certificate's key when the trade's faults say so. An unknown app's errors are signed in the
 *  simulator's default mode. */
function alipaySigners(
  alipayKey: KeyObject,
  appAlipayKeys: ReadonlyMap<string, KeyObject>,
  signsWithCertificate: (appId: string | null) => boolean,
  pki: AlipayPki | undefined,
  faults: FaultBoard,
): (appId: string | null, outTradeNo: string | null) => AlipaySigner {
  const certificates = pki && {
    current: { key: alipayKey, certSn: pki.alipayCert.sn },
    rotated: { key: pki.rotatedAlipay.privateKey, certSn: pki.rotatedAlipay.sn },
  };
  return (appId, outTradeNo) => {
    if (certificates && signsWithCertificate(appId)) {
      return faults.effective(outTradeNo).rotatedAlipayCert ? certificates.rotated : certificates.current;
    }
    return { key: (appId && appAlipayKeys.get(appId)) || alipayKey };
  };
}
