// The merchant CLI, run as merchants run it (a child process), against a local HTTP server that
// checks every request's signature over the path, query and body bytes it actually received.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  verifyWebhookSignature,
  webhookSignature,
} from '../lib/merchants/signing.js';
import { waitFor } from './support/wait.js';

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

describe('webhook endpoint commands', () => {
  it('call their paths with their methods and bodies, PATCH and DELETE signed like the rest', async () => {
    const id = 'we_0123456789abcdef01234567';
    const runs = [
      await cli(['endpoint-create', '--url', 'https://shop.example/hooks', '--events', 'payment.paid, refund.succeeded', '--description', '店 hooks'], asMerchant()),
      await cli(['endpoint-list'], asMerchant()),
      await cli(['endpoint-get', id], asMerchant()),
      await cli(['endpoint-update', id, '--events', '*', '--disable'], asMerchant()),
      await cli(['endpoint-update', id, '--url', 'https://shop.example/v2', '--enable'], asMerchant()),
      await cli(['endpoint-rotate-secret', id, '--grace-seconds', '600'], asMerchant()),
      await cli(['endpoint-rotate-secret', id], asMerchant()),
      await cli(['endpoint-test', id], asMerchant()),
      await cli(['endpoint-deliveries', id, '--limit', '5'], asMerchant()),
      await cli(['endpoint-resend', id, 'evt_0123456789abcdef01234567'], asMerchant()),
      await cli(['endpoint-delete', id], asMerchant()),
    ];
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    expect(received.map(({ method, url, signed }) => ({ method, url, signed }))).toEqual([
      { method: 'POST', url: '/v1/webhook-endpoints', signed: true },
      { method: 'GET', url: '/v1/webhook-endpoints', signed: true },
      { method: 'GET', url: `/v1/webhook-endpoints/${id}`, signed: true },
      { method: 'PATCH', url: `/v1/webhook-endpoints/${id}`, signed: true },
      { method: 'PATCH', url: `/v1/webhook-endpoints/${id}`, signed: true },
      { method: 'POST', url: `/v1/webhook-endpoints/${id}/rotate-secret`, signed: true },
      { method: 'POST', url: `/v1/webhook-endpoints/${id}/rotate-secret`, signed: true },
      { method: 'POST', url: `/v1/webhook-endpoints/${id}/test`, signed: true },
      { method: 'GET', url: `/v1/webhook-endpoints/${id}/deliveries?limit=5`, signed: true },
      { method: 'POST', url: `/v1/webhook-endpoints/${id}/deliveries/evt_0123456789abcdef01234567/resend`, signed: true },
      { method: 'DELETE', url: `/v1/webhook-endpoints/${id}`, signed: true },
    ]);
    const bodies = received.map((r) => (r.body.length > 0 ? JSON.parse(r.body.toString('utf8')) : undefined));
    expect(bodies[0]).toEqual({ url: 'https://shop.example/hooks', events: ['payment.paid', 'refund.succeeded'], description: '店 hooks' });
    expect(bodies[3]).toEqual({ events: ['*'], enabled: false });
    expect(bodies[4]).toEqual({ url: 'https://shop.example/v2', enabled: true });
    expect(bodies[5]).toEqual({ graceSeconds: 600 });
    expect(bodies[6]).toEqual({});
  });

  it('refuse an update with nothing to change, or both --enable and --disable, before sending anything', async () => {
    const nothing = await cli(['endpoint-update', 'we_1'], asMerchant());
    const both = await cli(['endpoint-update', 'we_1', '--enable', '--disable'], asMerchant());
    expect([nothing.code, both.code]).toEqual([64, 64]);
    expect(nothing.stderr).toContain('nothing to change');
    expect(both.stderr).toContain('--enable and --disable');
    expect(received).toHaveLength(0);
  });
});

describe('--json', () => {
  it('prints one compact JSON document on stdout, and no QR code', async () => {
    const order = { outTradeNo: 'order-9', status: 'AWAITING_PAYMENT', amount: '1.00', qrCode: 'https://qr.alipay.com/bax9' };
    respond = () => ({ status: 201, body: order });
    const run = await cli(['create', '--order', 'order-9', '--amount', '1.00', '--subject', 'x', '--json'], asMerchant());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${JSON.stringify(order)}\n`);
    expect(run.stderr).toBe('');
  });

  it("an API error is the API's error object on stderr with its HTTP status, nothing on stdout, exit 1", async () => {
    const error = { code: 'NOT_CANCELLABLE', message: 'order order-7 is PAID', details: { status: 'PAID' } };
    respond = () => ({ status: 409, body: { error } });
    const run = await cli(['cancel', 'order-7', '--json'], asMerchant());
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(run.stderr)).toEqual({ error: { ...error, httpStatus: 409 } });
  });

  it('a bad command line and an unreachable API are JSON errors too, with their exit codes', async () => {
    const usage = await cli(['show', '--json'], asMerchant());
    expect(usage.code).toBe(64);
    expect(JSON.parse(usage.stderr)).toMatchObject({ error: { code: 'USAGE' } });
    const unknown = await cli(['no-such-command', '--json']);
    expect(unknown.code).toBe(64);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ error: { code: 'USAGE', message: 'unknown command "no-such-command"' } });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await cli(['show', 'order-7', '--api', `http://127.0.0.1:${port}`, '--json'], asMerchant());
    expect(unreachable.code).toBe(2);
    expect(unreachable.stdout).toBe('');
    expect(JSON.parse(unreachable.stderr)).toMatchObject({ error: { code: 'UNREACHABLE' } });
  });

  it('webhook-verify gives its verdict as JSON, and help lists every command', async () => {
    const body = '{"id":"evt_1"}';
    const dir = mkdtempSync(join(tmpdir(), 'durapay-cli-json-'));
    try {
      writeFileSync(join(dir, 'body.json'), body);
      const t = Math.floor(Date.now() / 1000);
      // Two v1 values, as during a rotation: the second is the one this secret makes.
      const header = `${webhookSignature('the-new-secret', body, t)},v1=${webhookSignature(WEBHOOK_SECRET, body, t).split('v1=')[1]}`;
      const valid = await cli(['webhook-verify', '--secret', WEBHOOK_SECRET, '--signature', header, '--body-file', join(dir, 'body.json'), '--json']);
      expect(valid.code, valid.stderr).toBe(0);
      expect(JSON.parse(valid.stdout)).toEqual({ valid: true });
      const invalid = await cli(['webhook-verify', '--secret', 'another', '--signature', header, '--body-file', join(dir, 'body.json'), '--json']);
      expect(invalid.code).toBe(1);
      expect(JSON.parse(invalid.stdout)).toMatchObject({ valid: false, reason: expect.stringMatching(/^bad signature/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const help = await cli(['help', '--json']);
    expect(help.code).toBe(0);
    expect(Object.keys(JSON.parse(help.stdout).commands)).toEqual(expect.arrayContaining(['listen', 'trigger', 'pay', 'endpoint-create', 'completion']));
  });
});

describe('pay and trigger on an engine that talks to the real Alipay', () => {
  const realOrder = { outTradeNo: 'order-5', status: 'AWAITING_PAYMENT', amount: '1.00', qrCode: 'https://qr.alipay.com/bax0123456789' };

  it('pay refuses an order whose QR code is the real Alipay, and pays nothing', async () => {
    respond = () => ({ status: 200, body: realOrder });
    const run = await cli(['pay', 'order-5'], asMerchant());
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/refused: only an engine that talks to the Alipay simulator/);
    expect(run.stderr).toContain('https://qr.alipay.com');
    expect(received.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/payments/order-5']);
  });

  it('pay refuses an order that is not awaiting payment', async () => {
    respond = () => ({ status: 200, body: { ...realOrder, status: 'PAID' } });
    const run = await cli(['pay', 'order-5', '--json'], asMerchant());
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stderr)).toMatchObject({ error: { code: 'REFUSED', message: expect.stringContaining('order-5 is PAID') } });
  });

  it('trigger refuses, and cancels the test order it made', async () => {
    respond = (request) => (request.url === '/v1/payments' ? { status: 201, body: { ...realOrder, outTradeNo: JSON.parse(request.body.toString()).outTradeNo } } : { status: 200, body: { status: 'CLOSED' } });
    const run = await cli(['trigger', 'payment.paid'], asMerchant());
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/refused: only an engine that talks to the Alipay simulator.*cancelled the test order trigger-payment-paid-[0-9a-f]{8}/);
    const [create, cancel] = received;
    const created = JSON.parse(create!.body.toString());
    expect(created.outTradeNo).toMatch(/^trigger-payment-paid-[0-9a-f]{8}$/);
    expect(Number(created.amount)).toBeGreaterThanOrEqual(0.01);
    expect(Number(created.amount)).toBeLessThanOrEqual(1);
    expect(cancel).toMatchObject({ method: 'POST', url: `/v1/payments/${created.outTradeNo}/cancel`, signed: true });
    expect(received).toHaveLength(2);
  });

  it('trigger refuses an event type it cannot make happen, naming those it can, before calling anything', async () => {
    const run = await cli(['trigger', 'payment.review'], asMerchant());
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('supported: payment.paid, payment.closed, refund.succeeded, payment.partially_refunded, payment.refunded');
    expect(received).toHaveLength(0);
  });
});

describe('listen, against a feed that fails for a while', () => {
  it('retries the same cursor until the feed answers, forwards each event once, signed, and stops on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'durapay-cli-listen-'));
    const hooks: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        hooks.push({ headers: req.headers, body });
        res.writeHead(hooks.length === 1 ? 500 : 204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const event = (n: number, type: string) => ({ id: `evt_${String(n).padStart(24, '0')}`, type, apiVersion: '2026-12-07', created: 1767225600 + n, data: { outTradeNo: `order-${n}` } });
    let calls = 0;
    respond = () => {
      calls += 1;
      if (calls === 1) return { status: 200, body: { events: [], nextCursor: 'c0' } };
      if (calls <= 3) return { status: 503, body: { error: { code: 'TRY_AGAIN', message: 'in a moment' } } };
      if (calls === 4) return { status: 200, body: { events: [event(1, 'payment.paid'), event(2, 'refund.failed'), event(3, 'payment.closed')], nextCursor: 'c3' } };
      // A feed that gives an event again: said on stderr, never forwarded twice.
      if (calls === 5) return { status: 200, body: { events: [event(3, 'payment.closed')], nextCursor: 'c3' } };
      return { status: 200, body: { events: [], nextCursor: 'c3' } };
    };
    const child = spawnCli(['listen', '--forward-to', hookUrl, '--events', 'payment.paid,payment.closed', '--json'], { ...asMerchant(), DURAPAY_DATA_DIR: dataDir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await waitFor('two events forwarded', async () => (stdout.trim().split('\n').length >= 3 ? true : undefined), { timeoutMs: 20_000 });
      await waitFor('two long polls after c3', async () => (received.filter((r) => r.url.includes('after=c3')).length >= 2 ? true : undefined), { timeoutMs: 10_000 });
      child.kill('SIGTERM');
      expect(await closed, stderr).toBe(0);

      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line));
      const secret = readFileSync(join(dataDir, 'listen-secret'), 'utf8').trim();
      expect(secret).toMatch(/^whsec_/);
      expect(statSync(join(dataDir, 'listen-secret')).mode & 0o777).toBe(0o600);
      expect(lines[0]).toEqual({ ready: { forwardTo: hookUrl, listenSecret: secret, events: ['payment.paid', 'payment.closed'] } });
      expect(lines.slice(1)).toEqual([
        { event: event(1, 'payment.paid'), forward: { status: 500 } },
        { event: event(3, 'payment.closed'), forward: { status: 204 } },
      ]);
      // Each once, as durapay sends them: these bytes, signed with the listen secret.
      expect(hooks.map((h) => h.body)).toEqual([JSON.stringify(event(1, 'payment.paid')), JSON.stringify(event(3, 'payment.closed'))]);
      for (const hook of hooks) {
        expect(hook.headers['content-type']).toBe('application/json');
        expect(hook.headers['durapay-event-id']).toBe(JSON.parse(hook.body).id);
        expect(verifyWebhookSignature(secret, String(hook.headers['durapay-signature']), hook.body)).toBe(true);
      }
      // The first call starts the feed now, without a cursor; then c0 until it answers, then c3.
      const cursors = received.map((r) => new URL(r.url, apiUrl).searchParams.get('after'));
      expect(received.every((r) => r.signed && new URL(r.url, apiUrl).pathname === '/v1/events')).toBe(true);
      expect(cursors.slice(0, 6)).toEqual([null, 'c0', 'c0', 'c0', 'c3', 'c3']);
      expect(new URL(received[1]!.url, apiUrl).searchParams.get('waitSeconds')).toBe('25');
      const notices = stderr.trim().split('\n').map((line) => JSON.parse(line));
      expect(notices.filter((n) => n.retrying)).toHaveLength(2);
      expect(notices.filter((n) => n.repeated)).toEqual([{ repeated: { message: expect.stringContaining('again: not forwarded twice'), eventId: event(3, 'x').id } }]);
      expect(notices.at(-1)).toHaveProperty('stopped');
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => receiver.close(resolve));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 40_000);

  it('uses DURAPAY_LISTEN_SECRET when set, prints a line per event with the forward result, and refuses a bad forward URL before calling anything', async () => {
    const bad = await cli(['listen', '--forward-to', 'localhost:4000'], { ...asMerchant(), DURAPAY_LISTEN_SECRET: 'whsec_abcdefghijklmnopqrstuvwxyz' });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--forward-to');
    expect(received).toHaveLength(0);

    const event = { id: 'evt_0123456789abcdef01234567', type: 'payment.paid', apiVersion: '2026-12-07', created: 1767225600, data: { outTradeNo: 'order-42' } };
    let calls = 0;
    respond = () => ({ status: 200, body: { events: ++calls === 2 ? [event] : [], nextCursor: `c${Math.min(calls, 2)}` } });
    // A port nobody listens on: the forward fails, and the line says how.
    const closedPort = createServer();
    await new Promise<void>((resolve) => closedPort.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(closedPort.address() as AddressInfo).port}/hooks`;
    await new Promise((resolve) => closedPort.close(resolve));
    const child = spawnCli(['listen', '--forward-to', hookUrl], { ...asMerchant(), DURAPAY_LISTEN_SECRET: 'whsec_abcdefghijklmnopqrstuvwxyz' });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor('the event line', async () => (stdout.includes(event.id) ? true : undefined), { timeoutMs: 15_000 });
    child.kill('SIGINT');
    expect(await closed).toBe(0);
    expect(stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}payment\.paid +evt_0123456789abcdef01234567 {2}order-42 {2}-> \[error: ECONNREFUSED\]$/m);
    expect(stdout).toContain(`Ready. Forwarding events to ${hookUrl}; your listen secret is whsec_abcdefghijklmnopqrstuvwxyz (Ctrl-C to stop)`);
  });
});

describe('completion and the durapay command', () => {
  it('bash completes command names, their flags and trigger event types from the command table', async () => {
    const run = await cli(['completion', 'bash']);
    expect(run.code, run.stderr).toBe(0);
    const complete = (...words: string[]) => {
      const script = `${run.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _durapay_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const result = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      return result.stdout.trim().split('\n');
    };
    expect(complete('durapay', 'end').sort()).toEqual(
      ['endpoint-create', 'endpoint-delete', 'endpoint-deliveries', 'endpoint-get', 'endpoint-list', 'endpoint-resend', 'endpoint-rotate-secret', 'endpoint-test', 'endpoint-update'],
    );
    expect(complete('durapay', 'li')).toEqual(['list', 'listen']);
    expect(complete('durapay', 'listen', '--f')).toEqual(['--forward-to']);
    expect(complete('durapay', 'trigger', 'payment.p')).toEqual(['payment.paid', 'payment.partially_refunded']);
    expect(complete('durapay', 'show', '--j')).toEqual(['--json']);
  });

  it('zsh gets a compdef script naming every command', async () => {
    const run = await cli(['completion', 'zsh']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.startsWith('#compdef durapay\n')).toBe(true);
    for (const name of ['listen', 'trigger', 'pay', 'endpoint-rotate-secret', 'webhook-verify']) expect(run.stdout).toContain(`'${name}:`);
    expect(run.stdout).toContain("'--forward-to'");
    const other = await cli(['completion', 'fish']);
    expect(other.code).toBe(64);
  });

  it('bin/durapay.js runs the CLI (package.json names it durapay)', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ durapay: 'bin/durapay.js' });
    const result = spawnSync(process.execPath, [join(ROOT, 'bin', 'durapay.js'), 'help'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: durapay <command>/);
    expect(result.stdout).toContain('listen --forward-to <url>');
  });
});
