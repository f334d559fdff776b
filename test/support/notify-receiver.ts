// A merchant's notify endpoint for simulator tests: each notify is verified the way the engine
// verifies it, recorded, and answered from a script, else "success" or "failure" by its verdict.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlipaySdk } from 'alipay-sdk';
import express from 'express';
import { verifyNotifySignature } from '../../lib/alipay/notify.js';

export interface ReceivedNotify {
  body: Record<string, string>;
  verified: boolean;
}

export class NotifyReceiver {
  readonly received: ReceivedNotify[] = [];
  private readonly scripts = new Map<string, string[]>();
  private server: Server | undefined;
  url = '';

  async start(verifier: AlipaySdk): Promise<void> {
    const app = express();
    app.post('/notify', express.urlencoded({ extended: false }), (req, res) => {
      const body = req.body as Record<string, string>;
      const verified = verifyNotifySignature(verifier, body);
      this.received.push({ body, verified });
      const scripted = this.scripts.get(`${body.out_trade_no}:${body.out_biz_no ?? ''}`)?.shift();
      res.type('text/plain').send(scripted ?? (verified ? 'success' : 'failure'));
    });
    const server = createServer(app);
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
  }

  /** Answers for the coming notifies of a trade's payment, or of one of its refunds (out_biz_no). */
  script(outTradeNo: string, answers: string[], outBizNo = ''): void {
    this.scripts.set(`${outTradeNo}:${outBizNo}`, answers);
  }

  for(outTradeNo: string): ReceivedNotify[] {
    return this.received.filter((n) => n.body.out_trade_no === outTradeNo);
  }

  refundNotifies(outTradeNo: string): ReceivedNotify[] {
    return this.for(outTradeNo).filter((n) => n.body.out_biz_no !== undefined);
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Polls `probe` until `accept` holds, failing after the deadline with the last value seen. */
export async function waitUntil<T>(probe: () => T | Promise<T>, accept: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
