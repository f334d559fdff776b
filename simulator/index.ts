import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino, type Logger } from 'pino';
import { BillDesk, billRouter } from './bills.js';
import { controlRouter } from './control.js';
import { FaultBoard } from './faults.js';
import { gatewayRouter } from './gateway.js';
import { Notifier } from './notifier.js';
import { loadPrivateKey, loadPublicKey } from './signing.js';
import { type CallRecord, TradeBook } from './trades.js';

export { generateRsaKeyPair } from './signing.js';

export interface SimulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Registered apps and their public keys (PEM). */
  apps: { appId: string; publicKey: string }[];
  /** The simulator's "Alipay" private key (PKCS8 PEM): signs responses and notifies. */
  alipayPrivateKey: string;
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
  stop(): Promise<void>;
}

const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];

export async function startSimulator(opts: SimulatorOptions): Promise<RunningSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const sellerId = opts.sellerId ?? '2088102177846880';
  const logger = opts.logger ?? pino({ level: 'silent' });
  const apps = new Map(opts.apps.map((app) => [app.appId, loadPublicKey(app.publicKey)]));
  const alipayKey = loadPrivateKey(opts.alipayPrivateKey);

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const stopping = new AbortController();
  const faults = new FaultBoard();
  const calls: CallRecord[] = [];
  const notifier = new Notifier({
    alipayKey,
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
  app.use(gatewayRouter({ book, bills, faults, apps, alipayKey, calls, stopSignal: stopping.signal, logger }));
  app.use(billRouter(bills));
  app.use(controlRouter({ book, faults, notifier, calls, defaultAppId: opts.apps[0]?.appId ?? '' }));
  server.on('request', app);
  logger.info({ url }, 'alipay simulator listening');

  return {
    url,
    gatewayUrl: `${url}/gateway.do`,
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
