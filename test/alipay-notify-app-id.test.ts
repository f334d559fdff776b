// The notify receiver's app_id, which anyone may send: one that is not Alipay's shape is refused
// before any PostgreSQL lookup and never kept in memory; an unknown one is not remembered as
// unknown (an app registered a moment later is served at once); what is logged of it is short.
// The real receiver, over a real database and a real Temporal client, behind a real HTTP port.
import { randomBytes, randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { alipayNotifyRouter } from '../api/alipay-notify.js';
import { createAlipayClient } from '../lib/alipay/client.js';
import { AlipayAppDirectory, saveAlipayApp } from '../lib/alipay/apps.js';
import { createPool, migrate } from '../lib/platform/database.js';
import { MasterKeyProvider } from '../lib/platform/key-vault.js';
import { generateRsaKeyPair, loadPrivateKey, rsa2Sign, signContent } from '../simulator/signing.js';

const configuredAppId = `2021${randomInt(10 ** 11, 10 ** 12)}`;
const alipayKeys = generateRsaKeyPair();
const logLines: string[] = [];
let pool: pg.Pool;
let connection: Connection;
let server: Server;
let notifyUrl: string;
/** Connections the receiver's pool handed out: one per PostgreSQL lookup. */
let lookups = 0;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: inject('databaseUrl') });
  await admin.connect();
  const name = `durapay_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(inject('databaseUrl'));
  url.pathname = `/${name}`;
  await migrate(url.toString());
  pool = createPool(url.toString(), { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 }, 2);
  pool.on('acquire', () => {
    lookups += 1;
  });
  connection = await Connection.connect({ address: inject('temporalAddress') });
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  const app = express();
  app.use(
    alipayNotifyRouter({
      client: new Client({ connection }),
      appId: configuredAppId,
      // No worker polls it: a notify for an order with no workflow is accepted once its
      // late-notify workflow has been started, which is all these tests need to see.
      taskQueue: `notify-app-id-${randomBytes(4).toString('hex')}`,
      latePaymentPolicy: 'refund',
      apps: new AlipayAppDirectory(
        pool,
        {
          app: { appId: configuredAppId, credentials: { mode: 'key', alipayPublicKey: alipayKeys.publicKey }, notifyUrl: 'https://pay.example.com/alipay/notify' },
          client: createAlipayClient({ appId: configuredAppId, credentials: { mode: 'key', alipayPublicKey: alipayKeys.publicKey } }),
        },
        'verify-only',
      ),
      logger,
    }),
  );
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  notifyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alipay/notify`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await connection?.close();
  await pool?.end();
});

/** A trade notify for `appId`, signed with `alipayPrivateKey` as Alipay signs it. */
function notify(appId: string, alipayPrivateKey: string): Record<string, string> {
  const params: Record<string, string> = {
    notify_time: '2026-11-24 09:00:00',
    notify_type: 'trade_status_sync',
    notify_id: randomBytes(16).toString('hex'),
    app_id: appId,
    charset: 'utf-8',
    version: '1.0',
    sign_type: 'RSA2',
    trade_no: `2026112422001${randomInt(10 ** 9, 10 ** 10)}`,
    out_trade_no: `order_${randomBytes(6).toString('hex')}`,
    trade_status: 'TRADE_SUCCESS',
    total_amount: '5.00',
  };
  return { ...params, sign: rsa2Sign(signContent(params, ['sign', 'sign_type']), loadPrivateKey(alipayPrivateKey)) };
}

async function post(params: Record<string, string>): Promise<string> {
  const res = await fetch(notifyUrl, { method: 'POST', body: new URLSearchParams(params) });
  return res.text();
}

describe("an app_id that is not Alipay's shape (digits, at most 32)", () => {
  it('is answered failure before any lookup, and only a short cut of it is logged', async () => {
    const huge = randomBytes(45_000).toString('base64url'); // 60 000 characters, within the 64 kB form limit
    const shapes = [huge, '9'.repeat(33), '2021abc0000000001', '2021 000000000001', ''.padEnd(40_000, '7')];
    const before = lookups;
    const linesBefore = logLines.length;
    for (const appId of shapes) {
      expect(await post({ ...notify(configuredAppId, alipayKeys.privateKey), app_id: appId }), appId.slice(0, 40)).toBe('failure');
    }
    expect(lookups - before).toBe(0);
    const lines = logLines.slice(linesBefore);
    expect(lines.length).toBeGreaterThanOrEqual(shapes.length);
    for (const line of lines) {
      expect(line.length).toBeLessThan(1_000);
      expect(line).not.toContain(huge.slice(0, 200));
    }
  });
});

describe('an app_id of the right shape that no app has', () => {
  it('is not remembered as unknown: the app registered right after the miss has its notify verified', async () => {
    const appId = `2021${randomInt(10 ** 11, 10 ** 12)}`;
    const appKeys = generateRsaKeyPair();
    const ownAlipayKeys = generateRsaKeyPair();
    expect(await post(notify(appId, ownAlipayKeys.privateKey))).toBe('failure');
    await saveAlipayApp(pool, new MasterKeyProvider(randomBytes(32)), {
      appId,
      privateKey: appKeys.privateKey,
      credentials: { mode: 'key', alipayPublicKey: ownAlipayKeys.publicKey },
      notifyUrl: 'https://pay.example.com/alipay/notify',
      gatewayUrl: 'https://openapi.alipay.com/gateway.do',
    });
    expect(await post(notify(appId, ownAlipayKeys.privateKey))).toBe('success');
  });

  it('is logged in full, being at most 32 digits', async () => {
    const appId = `2021${randomInt(10 ** 11, 10 ** 12)}`;
    const linesBefore = logLines.length;
    expect(await post(notify(appId, generateRsaKeyPair().privateKey))).toBe('failure');
    expect(logLines.slice(linesBefore).join('')).toContain(appId);
  });
});
