// Helpers of the SDK's tests against a running engine: a webhook receiver on 127.0.0.1 and a
// wait on a condition with a deadline (never a blind sleep).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Polls `probe` until it returns a defined value; throws once `timeoutMs` has passed. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, { timeoutMs = 20_000, intervalMs = 100 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body bytes exactly as received. */
  rawBody: Buffer;
}

/** An HTTP server on 127.0.0.1 that answers 200 to every POST and keeps what it received. */
export async function startReceiver() {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ path: req.url ?? '', headers: req.headers, rawBody: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    deliveries,
    /** Waits for a delivery to `path` that `match` accepts. */
    waitForDelivery: (what: string, path: string, match: (d: Delivery) => boolean = () => true) =>
      waitFor(what, () => deliveries.find((d) => d.path === path && match(d))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The event type and id of a delivery, read without trusting it (for picking; verify before use). */
export function peek(d: Delivery): { id?: string; type?: string; data?: { outTradeNo?: string } } {
  try {
    return JSON.parse(d.rawBody.toString('utf8'));
  } catch {
    return {};
  }
}
