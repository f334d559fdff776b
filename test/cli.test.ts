// The merchant CLI, run as merchants run it (a child process), against a local HTTP server that
// checks every request's signature over the path, query and body bytes it actually received.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import QRCode from 'qrcode';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  NONCE_PATTERN,
  requestSignatureMatches,
  SIGNATURE_HEADERS,
  TIMESTAMP_TOLERANCE_SECONDS,
  webhookSignature,
} from '../lib/merchants/signing.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Merchants the server knows, by id. The secrets must never show up in the CLI's output. */
const SECRETS: Record<string, string> = {
  mtest00001: 'secret-from-env-7f3a9c',
  mfile00001: 'secret-from-file-41d2e8',
  mflag00001: 'secret-from-flag-c06b55',
};
const WEBHOOK_SECRET = 'whsec-from-file-9e27aa';
const ALL_SECRETS = [...Object.values(SECRETS), WEBHOOK_SECRET];

interface Received {
  method: string;
  /** The request target exactly as received: path and query. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  merchant: string;
  /** The signature verifies with the merchant's secret over what arrived, and the timestamp is now. */
  signed: boolean;
}

let server: Server;
let apiUrl: string;
let received: Received[] = [];
let respond: (request: Received) => { status: number; body: unknown } = () => ({ status: 200, body: {} });
let emptyDataDir: string;

beforeAll(async () => {
  emptyDataDir = mkdtempSync(join(tmpdir(), 'durapay-cli-empty-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const header = (name: string) => String(req.headers[name.toLowerCase()] ?? '');
      const merchant = header(SIGNATURE_HEADERS.merchant);
      const timestamp = header(SIGNATURE_HEADERS.timestamp);
      const nonce = header(SIGNATURE_HEADERS.nonce);
      const body = Buffer.concat(chunks);
      const secret = SECRETS[merchant];
      const signed =
        secret !== undefined &&
        NONCE_PATTERN.test(nonce) &&
        Math.abs(Date.now() / 1000 - Number(timestamp)) <= TIMESTAMP_TOLERANCE_SECONDS &&
        requestSignatureMatches(secret, { method: req.method!, pathWithQuery: req.url!, timestamp, nonce, body }, header(SIGNATURE_HEADERS.signature));
      const request: Received = { method: req.method!, url: req.url!, headers: req.headers, body, merchant, signed };
      received.push(request);
      const answer = respond(request);
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(emptyDataDir, { recursive: true, force: true });
});

beforeEach(() => {
  received = [];
  respond = () => ({ status: 200, body: {} });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI with a clean environment: no DURAPAY_* but those given, and an empty data folder. */
function spawnCli(args: string[], env: Record<string, string>) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DURAPAY_')));
  return spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    cwd: ROOT,
    env: { ...base, DURAPAY_DATA_DIR: emptyDataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to its end, as spawnCli starts it. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      // Every run, whatever its test checks: no secret in the output.
      const leaked = ALL_SECRETS.filter((secret) => (stdout + stderr).includes(secret));
      if (leaked.length > 0) reject(new Error(`the CLI printed ${leaked.join(', ')}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

const asMerchant = () => ({ DURAPAY_API_URL: apiUrl, DURAPAY_MERCHANT_ID: 'mtest00001', DURAPAY_MERCHANT_SECRET: SECRETS.mtest00001! });

describe('signed requests', () => {
  it('create signs and sends one JSON body, prints the order and renders its QR code', async () => {
    const order = { outTradeNo: 'order-1001', status: 'AWAITING_PAYMENT', amount: '12.50', qrCode: 'https://qr.alipay.com/bax01234' };
    respond = () => ({ status: 201, body: order });
    // Non-ASCII text: the body hash must be over the UTF-8 bytes sent.
    const run = await cli(
      ['create', '--order', 'order-1001', '--amount', '12.50', '--subject', 'A cup of 茶 "tea"', '--timeout-minutes', '5', '--notify-url', 'https://shop.example/hooks'],
      asMerchant(),
    );

    expect(run.code, run.stderr).toBe(0);
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request).toMatchObject({ method: 'POST', url: '/v1/payments', merchant: 'mtest00001', signed: true });
    expect(request!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request!.body.toString('utf8'))).toEqual({
      outTradeNo: 'order-1001',
      amount: '12.50',
      subject: 'A cup of 茶 "tea"',
      timeoutMinutes: 5,
      notifyUrl: 'https://shop.example/hooks',
    });
    expect(run.stdout.startsWith(`${JSON.stringify(order, null, 2)}\n`)).toBe(true);
    expect(run.stdout).toContain(await QRCode.toString(order.qrCode, { type: 'terminal', small: true }));
  });

  it('create renders no QR code for an order that can no longer be paid', async () => {
    respond = () => ({ status: 200, body: { outTradeNo: 'order-1002', status: 'PAID', qrCode: 'https://qr.alipay.com/bax5678' } });
    const run = await cli(['create', '--order', 'order-1002', '--amount', '1.00', '--subject', 'x'], asMerchant());
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'PAID' });
  });

  it('list signs its query string exactly as sent', async () => {
    respond = () => ({ status: 200, body: { payments: [], nextCursor: null } });
    const cursor = 'eyJpZCI6 1}+/=&x';
    const run = await cli(
      ['list', '--status', 'PAID', '--created-from', '2026-01-01T00:00:00+08:00', '--limit', '5', '--cursor', cursor],
      asMerchant(),
    );

    expect(run.code, run.stderr).toBe(0);
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request).toMatchObject({ method: 'GET', merchant: 'mtest00001', signed: true });
    expect(request!.body).toHaveLength(0);
    const url = new URL(request!.url, apiUrl);
    expect(url.pathname).toBe('/v1/payments');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      status: 'PAID',
      createdFrom: '2026-01-01T00:00:00+08:00',
      limit: '5',
      cursor,
    });
    expect(JSON.parse(run.stdout)).toEqual({ payments: [], nextCursor: null });
  });

  it('show, cancel, refund and refunds call their paths, signed, each with a fresh nonce', async () => {
    const runs = [
      await cli(['show', 'order 7/8'], asMerchant()),
      await cli(['cancel', 'order-7'], asMerchant()),
      await cli(['refund', 'order-7', '--request', 'refund-1', '--amount', '2.00', '--reason', 'broken cup'], asMerchant()),
      await cli(['refunds', 'order-7'], asMerchant()),
    ];

    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    expect(received.map(({ method, url, signed }) => ({ method, url, signed }))).toEqual([
      { method: 'GET', url: '/v1/payments/order%207%2F8', signed: true },
      { method: 'POST', url: '/v1/payments/order-7/cancel', signed: true },
      { method: 'POST', url: '/v1/payments/order-7/refunds', signed: true },
      { method: 'GET', url: '/v1/payments/order-7/refunds', signed: true },
    ]);
    expect(JSON.parse(received[2]!.body.toString())).toEqual({ outRequestNo: 'refund-1', amount: '2.00', reason: 'broken cup' });
    expect(new Set(received.map((r) => r.headers[SIGNATURE_HEADERS.nonce.toLowerCase()])).size).toBe(4);
  });

  it('a reader that closes its end of the pipe early (| head) ends the output quietly, exit 0', async () => {
    respond = () => ({ status: 201, body: { outTradeNo: 'order-1002', status: 'AWAITING_PAYMENT', amount: '1.00', qrCode: 'https://qr.alipay.com/bax0' } });
    const child = spawnCli(['create', '--order', 'order-1002', '--amount', '1.00', '--subject', 'pipe'], asMerchant());
    child.stdout.destroy(); // closed before the CLI writes a byte
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(received).toHaveLength(1); // the order was created all the same
  });

  it('an HTTP error prints the JSON error and exits 1', async () => {
    const error = { error: { code: 'NOT_CANCELLABLE', message: 'order order-7 is PAID', details: { status: 'PAID' } } };
    respond = () => ({ status: 409, body: error });
    const run = await cli(['cancel', 'order-7'], asMerchant());

    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual(error);
    expect(run.stderr).toContain('HTTP 409');
  });

  it('an API that cannot be reached is one line naming the URL, and exit 2', async () => {
    // A port that was free a moment ago and has nobody listening now.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const run = await cli(['show', 'order-7', '--api', `http://127.0.0.1:${port}`], asMerchant());

    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(`http://127.0.0.1:${port}/v1/payments/order-7`);
  });
});

describe('credentials', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'durapay-cli-data-'));
    const devMerchant = { merchantId: 'mfile00001', secret: SECRETS.mfile00001, webhookSecret: WEBHOOK_SECRET };
    writeFileSync(join(dataDir, 'dev-merchant.json'), JSON.stringify(devMerchant), { mode: 0o600 });
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("come from the data folder's dev-merchant.json by default", async () => {
    const run = await cli(['show', 'order-7'], { DURAPAY_API_URL: apiUrl, DURAPAY_DATA_DIR: dataDir });
    expect(run.code, run.stderr).toBe(0);
    expect(received).toMatchObject([{ merchant: 'mfile00001', signed: true }]);
  });

  it('the environment overrides the file, and flags override the environment', async () => {
    const env = { ...asMerchant(), DURAPAY_DATA_DIR: dataDir };
    const fromEnv = await cli(['show', 'order-7'], env);
    const fromFlags = await cli(['show', 'order-7', '--merchant', 'mflag00001', '--secret', SECRETS.mflag00001!], env);

    expect([fromEnv.code, fromFlags.code]).toEqual([0, 0]);
    expect(received).toMatchObject([
      { merchant: 'mtest00001', signed: true },
      { merchant: 'mflag00001', signed: true },
    ]);
  });

  it('without any, nothing is sent and the message says where they come from', async () => {
    const run = await cli(['show', 'order-7'], { DURAPAY_API_URL: apiUrl });
    expect(run.code).toBe(64);
    expect(received).toHaveLength(0);
    expect(run.stderr).toContain(join(emptyDataDir, 'dev-merchant.json'));
    expect(run.stderr).toContain('DURAPAY_MERCHANT_SECRET');
  });
});

describe('webhook-verify', () => {
  let dir: string;
  let bodyFile: string;
  let tamperedFile: string;
  const body = '{"type":"payment.paid","outTradeNo":"order-1001","amount":"12.50"}';
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'durapay-cli-webhook-'));
    bodyFile = join(dir, 'body.json');
    tamperedFile = join(dir, 'tampered.json');
    writeFileSync(bodyFile, body);
    writeFileSync(tamperedFile, body.replace('12.50', '99.50'));
    writeFileSync(join(dir, 'dev-merchant.json'), JSON.stringify({ merchantId: 'mfile00001', secret: 'x', webhookSecret: WEBHOOK_SECRET }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const verify = (signature: string, file: string, ...more: string[]) =>
    cli(['webhook-verify', '--secret', WEBHOOK_SECRET, '--signature', signature, '--body-file', file, ...more]);

  it('a body signed with the webhook secret, just now, is valid', async () => {
    const run = await verify(webhookSignature(WEBHOOK_SECRET, body, now()), bodyFile);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('valid');
  });

  it("takes the webhook secret from the dev merchant's file when --secret is not given", async () => {
    const signature = webhookSignature(WEBHOOK_SECRET, body, now());
    const run = await cli(['webhook-verify', '--signature', `Durapay-Signature: ${signature}`, '--body-file', bodyFile], {
      DURAPAY_DATA_DIR: dir,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('valid');
  });

  it('a tampered body is a bad signature, exit 1', async () => {
    const run = await verify(webhookSignature(WEBHOOK_SECRET, body, now()), tamperedFile);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^invalid: bad signature/);
  });

  it('a signature from another secret is a bad signature, exit 1', async () => {
    const run = await verify(webhookSignature('another-secret', body, now()), bodyFile);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^invalid: bad signature/);
  });

  it('a stale timestamp is refused as stale, and --tolerance widens the window', async () => {
    const signature = webhookSignature(WEBHOOK_SECRET, body, now() - 600);
    const stale = await verify(signature, bodyFile);
    const tolerated = await verify(signature, bodyFile, '--tolerance', '900');

    expect(stale.code).toBe(1);
    expect(stale.stdout).toMatch(/^invalid: stale timestamp: t=\d+ is 6\d\d s old, beyond the tolerance of 300 s/);
    expect(tolerated.code, tolerated.stdout).toBe(0);
    expect(tolerated.stdout.trim()).toBe('valid');
  });
});

describe('operator commands', () => {
  const OPS_TOKEN = 'ops-token-from-the-data-folder-5b8e1d2c';

  it('send the ops token npm start keeps, to the /ops paths, and never print it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'durapay-cli-ops-'));
    try {
      writeFileSync(join(dataDir, 'ops-token'), `${OPS_TOKEN}\n`);
      respond = () => ({ status: 200, body: { status: 'PAID' } });
      const env = { DURAPAY_API_URL: apiUrl, DURAPAY_DATA_DIR: dataDir };
      const list = await cli(['ops-list', '--status', 'REVIEW', '--older-than-minutes', '30'], env);
      const resolve = await cli(['ops-resolve', 'payment:2021:m1_order_11001', '--outcome', 'PAID', '--note', '已核对 checked', '--operator', 'bob'], env);
      const queryNow = await cli(['ops-query-now', 'payment:2021:m1_order_11001'], env);
      for (const run of [list, resolve, queryNow]) {
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout + run.stderr).not.toContain(OPS_TOKEN);
      }
      expect(received.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([
        ['GET', '/ops/payments?status=REVIEW&olderThanMinutes=30', `Bearer ${OPS_TOKEN}`],
        ['POST', '/ops/payments/payment%3A2021%3Am1_order_11001/resolve-review', `Bearer ${OPS_TOKEN}`],
        ['POST', '/ops/payments/payment%3A2021%3Am1_order_11001/query-now', `Bearer ${OPS_TOKEN}`],
      ]);
      expect(JSON.parse(received[1]!.body.toString('utf8'))).toEqual({ outcome: 'PAID', note: '已核对 checked', operator: 'bob' });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('say where the token comes from when there is none', async () => {
    const run = await cli(['ops-list', '--status', 'REVIEW'], { DURAPAY_API_URL: apiUrl });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/no ops token: pass --token, set OPS_TOKEN, or run npm start/);
    expect(received).toHaveLength(0);
  });
});
