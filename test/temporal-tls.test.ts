// Secured connections to Temporal, for real. The dev server (`temporal server start-dev`) has no
// TLS option, so a TLS front in node (support/tls-front.ts) stands before it, with certificates
// made at run time. The front refuses handshakes without a trusted client certificate and calls
// without the API key, so a payment that gets PAID through it proves that both the API's client
// (grpc-js) and the worker (the SDK's Rust core) connected with what the TEMPORAL_* variables say.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadApiConfig } from '../lib/platform/config.js';
import { ConfigError } from '../lib/platform/environment.js';
import { createLogger } from '../lib/platform/logger.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { startLocalStack } from '../scripts/local-stack.js';
import { issue, issueTestPki } from './support/pki.js';
import { startStack, type Stack } from './support/stack.js';
import { startTlsFront, type TlsFront } from './support/tls-front.js';

// The server certificate names only temporal.test, so every connection to 127.0.0.1 that works
// below also proves that TEMPORAL_TLS_SERVER_NAME reached the TLS stack.
const pki = issueTestPki({ dnsNames: ['temporal.test'] });
const strangerCa = issue({ usage: 'ca', commonName: 'some other CA' });
const stranger = issue({ usage: 'client', commonName: 'stranger', issuer: strangerCa.signer });
const API_KEY = 'durapay-test-api-key-0123456789';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function front(options: { clientCa?: string; apiKey?: string }): Promise<TlsFront> {
  const started = await startTlsFront({ upstream: inject('temporalAddress'), cert: pki.server.cert, key: pki.server.key, ...options });
  cleanups.push(() => started.close());
  return started;
}

async function payOneOrder(stack: Stack) {
  const outTradeNo = stack.newOrderNo('tls');
  const created = await stack.createPayment({ outTradeNo, amount: '8.80', subject: 'over TLS' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
  await stack.waitForStatus(outTradeNo, 'PAID', 10_000);
}

const clientCalls = (f: TlsFront) => f.calls.filter((c) => /WorkflowService\/(ExecuteMultiOperation|SignalWithStartWorkflowExecution|SignalWorkflowExecution)$/.test(c.method));
const workerPolls = (f: TlsFront) => f.calls.filter((c) => /WorkflowService\/Poll(Workflow|Activity)TaskQueue$/.test(c.method));

describe('a payment through a TLS front', () => {
  // Runs first: the stacks install the worker runtime that the NativeConnection tests below reuse.
  it('mTLS with a CA and a server name: the API and the worker both present the client certificate', async () => {
    const mtls = await front({ clientCa: pki.ca.cert });
    const stack = await startStack({
      env: {
        TEMPORAL_ADDRESS: mtls.address,
        TEMPORAL_TLS_CERT: pki.client.cert,
        TEMPORAL_TLS_KEY: pki.client.key,
        TEMPORAL_TLS_CA: pki.ca.cert,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      },
    });
    cleanups.push(() => stack.stop());
    await payOneOrder(stack);

    expect(clientCalls(mtls).length).toBeGreaterThan(0);
    expect(workerPolls(mtls).length).toBeGreaterThan(0);
    expect(new Set(mtls.calls.map((c) => c.clientCertCN))).toEqual(new Set(['durapay test client']));
    expect(mtls.tlsErrors).toEqual([]);
    await stack.stop();
  });

  it('an API key over TLS: every call of the API and the worker carries it, and the namespace header', async () => {
    const keyed = await front({ apiKey: API_KEY });
    const stack = await startStack({
      env: {
        TEMPORAL_ADDRESS: keyed.address,
        TEMPORAL_API_KEY: API_KEY,
        TEMPORAL_TLS_CA: pki.ca.cert,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      },
    });
    cleanups.push(() => stack.stop());
    await payOneOrder(stack);

    expect(clientCalls(keyed).length).toBeGreaterThan(0);
    expect(workerPolls(keyed).length).toBeGreaterThan(0);
    expect(keyed.calls.filter((c) => c.rejected)).toEqual([]);
    expect(keyed.calls.every((c) => c.authorization === `Bearer ${API_KEY}`)).toBe(true);
    // Including the connect-time GetSystemInfo, whose request names no namespace.
    expect(keyed.calls.some((c) => c.method.endsWith('/GetSystemInfo'))).toBe(true);
    expect(keyed.calls.every((c) => c.namespace === 'default')).toBe(true);
    await stack.stop();
  });
});

describe('the front really checks (so the passes above mean something)', () => {
  let mtls: TlsFront;
  let keyed: TlsFront;
  beforeAll(async () => {
    mtls = await front({ clientCa: pki.ca.cert });
    keyed = await front({ apiKey: API_KEY });
  });

  // What the API needs besides TEMPORAL_*; only the Temporal settings are used here.
  const base = {
    ALIPAY_APP_ID: '2021000000000001',
    ALIPAY_PUBLIC_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ALIPAY_NOTIFY_URL: 'https://pay.example.com/alipay/notify',
    ALIPAY_SELLER_ID: '2088102177846880',
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/durapay',
    DURAPAY_MASTER_KEY: randomBytes(32).toString('hex'),
  };
  const temporalFrom = (env: Record<string, string>) => loadApiConfig({ ...base, ...env }).temporal;
  /** Connects as the API (grpc-js) and as the worker (Rust core) would; "connected" or the error. */
  async function connectBoth(env: Record<string, string>): Promise<{ api: string; worker: string }> {
    const options = temporalConnectionOptions(temporalFrom(env));
    const [api, worker] = await Promise.allSettled([
      Connection.connect({ ...options, connectTimeout: 3_000 }).then((c) => c.close()),
      NativeConnection.connect(options).then((c) => c.close()),
    ]);
    const outcome = (r: PromiseSettledResult<void>) => {
      if (r.status === 'fulfilled') return 'connected';
      const err = r.reason as Error & { cause?: Error };
      return [err.message, err.cause?.message].filter(Boolean).join(': ');
    };
    return { api: outcome(api!), worker: outcome(worker!) };
  }

  const mtlsEnv = () => ({
    TEMPORAL_ADDRESS: mtls.address,
    TEMPORAL_TLS_CERT: pki.client.cert,
    TEMPORAL_TLS_KEY: pki.client.key,
    TEMPORAL_TLS_CA: pki.ca.cert,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  });

  // Each case below changes one variable of this control. grpc-js only says it could not connect
  // before the deadline; the Rust core says why, so the reasons are checked there.
  it('connects with the right settings (the control for the cases below)', async () => {
    expect(await connectBoth(mtlsEnv())).toEqual({ api: 'connected', worker: 'connected' });
  });

  it('refuses a client without a certificate', async () => {
    const { TEMPORAL_TLS_CERT: _c, TEMPORAL_TLS_KEY: _k, ...withoutCert } = mtlsEnv();
    const seen = mtls.tlsErrors.length;
    const { api, worker } = await connectBoth(withoutCert);
    expect(api).not.toBe('connected');
    // Under TLS 1.3 the client may see the server's alert (CertificateRequired) or only the closed
    // connection, depending on timing; the front's own record says why it refused.
    expect(worker).toMatch(/CertificateRequired|connection closed/);
    expect(mtls.tlsErrors.slice(seen).join('\n')).toMatch(/peer did not return a certificate/);
  });

  it('refuses a client certificate from another CA', async () => {
    const seen = mtls.tlsErrors.length;
    const { api, worker } = await connectBoth({ ...mtlsEnv(), TEMPORAL_TLS_CERT: stranger.cert, TEMPORAL_TLS_KEY: stranger.key });
    expect(api).not.toBe('connected');
    expect(worker).not.toBe('connected');
    expect(mtls.tlsErrors.length).toBeGreaterThan(seen);
    expect(mtls.calls.some((c) => c.clientCertCN === 'stranger')).toBe(false);
  });

  it('the clients refuse a server their CA did not sign', async () => {
    const { api, worker } = await connectBoth({ ...mtlsEnv(), TEMPORAL_TLS_CA: strangerCa.cert });
    expect(api).not.toBe('connected');
    expect(worker).toMatch(/UnknownIssuer/);
  });

  it('the clients refuse a server whose certificate does not name the address, without the server name', async () => {
    const { TEMPORAL_TLS_SERVER_NAME: _n, ...withoutName } = mtlsEnv();
    const { api, worker } = await connectBoth(withoutName);
    expect(api).not.toBe('connected');
    expect(worker).toMatch(/NotValidForName/);
  });

  it('a wrong API key gets UNAUTHENTICATED, which both clients report at connect', async () => {
    const env = { TEMPORAL_ADDRESS: keyed.address, TEMPORAL_TLS_CA: pki.ca.cert, TEMPORAL_TLS_SERVER_NAME: 'temporal.test' };
    expect(await connectBoth({ ...env, TEMPORAL_API_KEY: API_KEY })).toEqual({ api: 'connected', worker: 'connected' });
    const { api, worker } = await connectBoth({ ...env, TEMPORAL_API_KEY: 'not-the-key' });
    expect(api).toMatch(/UNAUTHENTICATED: missing or wrong API key/);
    expect(worker).toMatch(/missing or wrong API key/);
  });
});

describe('npm start', () => {
  it('refuses TLS or key settings without TEMPORAL_ADDRESS: its embedded dev server has no TLS', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'durapay-start-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const start = startLocalStack({
      dataDir,
      persistent: false,
      env: { TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'on' },
      logger: createLogger('test', 'silent'),
      say: () => {},
    });
    await expect(start).rejects.toThrow(ConfigError);
    await expect(start).rejects.toThrow(/^TEMPORAL_TLS, TEMPORAL_API_KEY: set without TEMPORAL_ADDRESS/);
  });
});
