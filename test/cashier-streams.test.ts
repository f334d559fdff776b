// The cashier page's event streams against the whole stack: one reader of the database for every
// open stream, whatever their number; at most CASHIER_STREAMS_PER_TOKEN streams of one order and
// CASHIER_STREAMS_PER_ADDRESS from one client address, 429 beyond; and each stream ending at the
// order's deadline plus a minute. TRUST_PROXY=1 lets each test be its own client address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '60s', env: { CASHIER_STREAMS_PER_TOKEN: '3', CASHIER_STREAMS_PER_ADDRESS: '4', TRUST_PROXY: '1' } });
});
afterAll(async () => {
  await stack?.stop();
});

interface OpenStream {
  status: number;
  body: unknown;
  /** The states received so far, in order. */
  states: string[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** GET /pay/<token>/events from `address`, read in the background as the browser would. */
async function openStream(cashierUrl: string, address: string): Promise<OpenStream> {
  const abort = new AbortController();
  const res = await fetch(`${cashierUrl}/events`, { headers: { 'x-forwarded-for': address }, signal: abort.signal });
  const states: string[] = [];
  if (res.status !== 200 || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body, states, ended: Promise.resolve(), close: () => {} };
  }
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body!) {
        buffered += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffered.indexOf('\n\n')) >= 0) {
          const event = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (/^event: status$/m.test(event) && data) states.push(JSON.parse(data).state);
        }
      }
    } catch {
      // closed by the test
    }
  })();
  return { status: res.status, body: undefined, states, ended, close: () => abort.abort() };
}

async function newOrder(label: string, timeoutMinutes = 5): Promise<string> {
  const created = await stack.createPayment({ outTradeNo: stack.newOrderNo(label), amount: '3.00', subject: `streams ${label}`, timeoutMinutes });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  // The page's stream says "awaiting" once the QR code is there.
  await waitFor('the QR code', async () => ((await stack.getPayment(created.body.outTradeNo)).body.qrCode ? true : undefined));
  return created.body.cashierUrl;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${stack.api.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

const awaiting = (stream: OpenStream) => waitFor('the first status', () => (stream.states.length > 0 ? stream.states[0] : undefined));

describe('cashier event streams', () => {
  it('refuses more than CASHIER_STREAMS_PER_TOKEN streams of one order with 429, and takes one again once a stream closes', async () => {
    const url = await newOrder('per-token');
    // From three addresses: the cap is the order's, whoever asks.
    const streams = [await openStream(url, '198.51.100.11'), await openStream(url, '198.51.100.12'), await openStream(url, '198.51.100.13')];
    for (const stream of streams) {
      expect(stream.status).toBe(200);
      expect(await awaiting(stream)).toBe('awaiting');
    }
    const refused = await openStream(url, '198.51.100.14');
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: {
        code: 'TOO_MANY_STREAMS',
        message: expect.stringContaining('at most 3 open event streams per order'),
        details: { limit: 3, per: 'order' },
        requestId: expect.stringMatching(/^req_[0-9a-f]{24}$/),
      },
    });
    streams[0]!.close();
    const again = await waitFor('a stream to be taken again', async () => {
      const stream = await openStream(url, '198.51.100.14');
      return stream.status === 200 ? stream : undefined;
    });
    expect(await awaiting(again)).toBe('awaiting');
    for (const stream of [...streams, again]) stream.close();
  });

  it('refuses more than CASHIER_STREAMS_PER_ADDRESS streams from one client address with 429', async () => {
    const address = '198.51.100.21';
    const urls = [await newOrder('addr-1'), await newOrder('addr-2')];
    const streams = [
      await openStream(urls[0]!, address),
      await openStream(urls[0]!, address),
      await openStream(urls[1]!, address),
      await openStream(urls[1]!, address),
    ];
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const refused = await openStream(urls[1]!, address);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({
      error: { code: 'TOO_MANY_STREAMS', message: expect.stringContaining('at most 4 open event streams per client address'), details: { limit: 4, per: 'address' } },
    });
    // Another address is not held back.
    const elsewhere = await openStream(urls[1]!, '198.51.100.22');
    expect(elsewhere.status).toBe(200);
    for (const stream of [...streams, elsewhere]) stream.close();
  });

  it('reads the database once a round for all open streams, not once per stream', async () => {
    const urls = [await newOrder('shared-1'), await newOrder('shared-2')];
    const streams = [];
    for (const [i, url] of urls.entries()) {
      for (let j = 0; j < 3; j++) streams.push(await openStream(url, `198.51.100.${40 + i * 3 + j}`));
    }
    for (const stream of streams) expect(await awaiting(stream)).toBe('awaiting');
    await waitFor('six open streams', async () => ((await metric('durapay_cashier_streams_open')) === 6 ? true : undefined));
    const before = await metric('durapay_cashier_status_reads_total');
    const started = Date.now();
    const after = await waitFor(
      'three rounds of reads',
      async () => {
        const reads = await metric('durapay_cashier_status_reads_total');
        return reads - before >= 3 ? reads : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const seconds = (Date.now() - started) / 1000;
    // One read a second for the six streams; a read per stream would be six a second.
    expect(after - before).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    for (const stream of streams) stream.close();
    await waitFor('the streams to close', async () => ((await metric('durapay_cashier_streams_open')) === 0 ? true : undefined));
  });

  it("ends a stream at the order's deadline plus a minute, and tells the browser not to come back", async () => {
    const url = await newOrder('deadline');
    const stream = await openStream(url, '198.51.100.60');
    expect(await awaiting(stream)).toBe('awaiting');
    // The order's deadline passed 59.5 s ago (its workflow still waits): half a second of stream is left.
    const token = url.split('/').pop();
    await stack.pool.query("UPDATE payments SET expires_at = now() - interval '59.5 seconds' WHERE cashier_token = $1", [token]);
    await Promise.race([
      stream.ended,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not end within 10 s')), 10_000).unref()),
    ]);
    // EventSource stops reconnecting on a 204.
    const again = await openStream(url, '198.51.100.60');
    expect(again.status).toBe(204);
  });
});
