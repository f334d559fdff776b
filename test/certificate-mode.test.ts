// Certificate mode (公钥证书): the unmodified alipay-sdk against the simulator in certificate mode,
// then the whole engine configured with ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT and ALIPAY_ROOT_CERT.
// Every certificate is made at run time (simulator/certificates.ts). A certificate Alipay signs
// under that we do not know (after Alipay rotated its certificate) is never trusted.
import type { KeyObject } from 'node:crypto';
import { AlipayRequestError, AlipaySdk } from 'alipay-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlipayClient } from '../lib/alipay/client.js';
import { readNotify } from '../lib/alipay/notify.js';
import { createAlipayPki, firstCertificateSn, type AlipayPki } from '../simulator/certificates.js';
import { generateRsaKeyPair, type RunningSimulator, startSimulator } from '../simulator/index.js';
import { loadPrivateKey, rsa2Sign, signContent } from '../simulator/signing.js';
import { NotifyReceiver } from './support/notify-receiver.js';
import { startStack, type Stack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const APP_ID = '2021000000000001';
const OTHER_APP_ID = '2021000000000002';
const appKeys = generateRsaKeyPair();
const alipayKeys = generateRsaKeyPair();

let orderSeq = 0;
const newOrderNo = () => `C${Date.now()}_${++orderSeq}`;

/** alipay-sdk that keeps each raw answer it checks, to look at what travels beside the sign. */
class RecordingSdk extends AlipaySdk {
  readonly answers: string[] = [];
  override checkResponseSign(raw: string, responseKey: string, serverSign: string, traceId: string): void {
    this.answers.push(raw);
    super.checkResponseSign(raw, responseKey, serverSign, traceId);
  }
}

describe('the simulator in certificate mode, with the unmodified alipay-sdk (validateSign)', () => {
  let sim: RunningSimulator;
  // Another Alipay environment (say, the sandbox), whose certificates this simulator never issued.
  let elsewhere: AlipayPki;
  let broughtAppCert: string;

  beforeAll(async () => {
    elsewhere = await createAlipayPki(generateRsaKeyPair().privateKey);
    broughtAppCert = elsewhere.issueAppCert(OTHER_APP_ID, appKeys.publicKey);
    sim = await startSimulator({
      apps: [
        { appId: APP_ID, publicKey: appKeys.publicKey },
        { appId: OTHER_APP_ID, publicKey: appKeys.publicKey, appCert: broughtAppCert },
      ],
      alipayPrivateKey: alipayKeys.privateKey,
      alipayMode: 'cert',
    });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  function certSdk(overrides: { appId?: string; appCert?: string; alipayRootCert?: string } = {}) {
    const certificates = sim.certificates!;
    const appId = overrides.appId ?? APP_ID;
    return new RecordingSdk({
      appId,
      privateKey: appKeys.privateKey,
      keyType: 'PKCS8',
      signType: 'RSA2',
      appCertContent: overrides.appCert ?? certificates.appCerts[appId]!,
      alipayPublicCertContent: certificates.alipayPublicCert,
      alipayRootCertContent: overrides.alipayRootCert ?? certificates.alipayRootCert,
      gateway: sim.gatewayUrl,
    });
  }
  const precreate = (sdk: AlipaySdk, outTradeNo = newOrderNo()) =>
    sdk.exec('alipay.trade.precreate', { bizContent: { outTradeNo, totalAmount: '8.80', subject: 'certificate mode' } }, { validateSign: true });

  it('answers a request carrying the serial numbers alipay-sdk computed, signed under alipay_cert_sn', async () => {
    const sdk = certSdk();
    const answer = await precreate(sdk);
    expect(answer).toMatchObject({ code: '10000', qrCode: expect.stringMatching(/^http/) });
    // The SDK and the simulator (Alipay's side) compute the same serial numbers.
    expect(sdk.config.appCertSn).toBe(firstCertificateSn(sim.certificates!.appCerts[APP_ID]!));
    const raw = JSON.parse(sdk.answers.at(-1)!);
    expect(raw.alipay_cert_sn).toBe(sdk.config.alipayCertSn);
    expect(Object.keys(raw)).toEqual(['alipay_trade_precreate_response', 'alipay_cert_sn', 'sign']);
  });

  it('accepts an app that brought a certificate issued elsewhere', async () => {
    expect(sim.certificates!.appCerts[OTHER_APP_ID]).toBe(broughtAppCert);
    await expect(precreate(certSdk({ appId: OTHER_APP_ID }))).resolves.toMatchObject({ code: '10000' });
  });

  it('refuses, with Invalid Arguments, a request without serial numbers or with ones it does not know', async () => {
    const keyModeSdk = new AlipaySdk({
      appId: APP_ID,
      privateKey: appKeys.privateKey,
      keyType: 'PKCS8',
      alipayPublicKey: alipayKeys.publicKey,
      gateway: sim.gatewayUrl,
    });
    await expect(precreate(keyModeSdk)).resolves.toMatchObject({ code: '40002', subCode: 'isv.missing-app-cert-sn' });
    await expect(precreate(certSdk({ appCert: elsewhere.issueAppCert(APP_ID, appKeys.publicKey) }))).resolves.toMatchObject({
      code: '40002',
      subCode: 'isv.app-cert-not-exist',
    });
    await expect(precreate(certSdk({ alipayRootCert: elsewhere.rootChain }))).resolves.toMatchObject({
      code: '40002',
      subCode: 'isv.invalid-alipay-root-cert-sn',
    });
  });

  it('signs with a rotated certificate on demand: alipay-sdk only sees a bad signature, our client names the certificate', async () => {
    const outTradeNo = newOrderNo();
    await precreate(certSdk(), outTradeNo);
    const faults = await fetch(`${sim.url}/sim/trades/${outTradeNo}/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rotatedAlipayCert: true }),
    });
    expect(faults.status).toBe(200);
    const query = (sdk: AlipaySdk) => sdk.exec('alipay.trade.query', { bizContent: { outTradeNo } }, { validateSign: true });

    // alipay-sdk compares alipay_cert_sn with nothing in a v2 answer.
    await expect(query(certSdk())).rejects.toThrow(/验签失败/);
    const ours = createAlipayClient({
      appId: APP_ID,
      privateKey: appKeys.privateKey,
      credentials: {
        mode: 'cert',
        appCert: sim.certificates!.appCerts[APP_ID]!,
        alipayPublicCert: sim.certificates!.alipayPublicCert,
        alipayRootCert: sim.certificates!.alipayRootCert,
      },
      gatewayUrl: sim.gatewayUrl,
    });
    const known = ours.config.alipayCertSn!;
    const refusal = await query(ours).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(AlipayRequestError);
    expect((refusal as Error).message).toMatch(
      new RegExp(`answer refused, cannot be verified: signed under Alipay certificate (?!${known})[0-9a-f]{32}, which we do not know \\(ours is ${known}\\)`),
    );
  });

  it('refuses the rotated-certificate fault in key mode, where Alipay has no certificate', async () => {
    const keyMode = await startSimulator({ apps: [{ appId: APP_ID, publicKey: appKeys.publicKey }], alipayPrivateKey: alipayKeys.privateKey });
    try {
      const answer = await fetch(`${keyMode.url}/sim/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rotatedAlipayCert: true }),
      });
      expect(answer.status).toBe(400);
      expect((await answer.json()).message).toMatch(/rotatedAlipayCert: the simulator is in key mode/);
      expect(keyMode.certificates).toBeUndefined();
    } finally {
      await keyMode.stop();
    }
  });
});

describe('one simulator, one app in each mode, as two apps of one Alipay account can be', () => {
  const keyApp = { appId: '2021000000000011', keys: generateRsaKeyPair(), alipay: generateRsaKeyPair() };
  const certApp = { appId: '2021000000000012', keys: generateRsaKeyPair() };
  let sim: RunningSimulator;
  const receivers = { key: new NotifyReceiver(), cert: new NotifyReceiver() };
  let clients: { key: AlipaySdk; cert: AlipaySdk };

  beforeAll(async () => {
    sim = await startSimulator({
      apps: [
        { appId: keyApp.appId, publicKey: keyApp.keys.publicKey, alipayPrivateKey: keyApp.alipay.privateKey },
        { appId: certApp.appId, publicKey: certApp.keys.publicKey, alipayMode: 'cert' },
      ],
      alipayPrivateKey: alipayKeys.privateKey,
      notifyRetryDelaysMs: [100, 200],
    });
    const certificates = sim.certificates!;
    clients = {
      key: createAlipayClient({
        appId: keyApp.appId,
        privateKey: keyApp.keys.privateKey,
        credentials: { mode: 'key', alipayPublicKey: keyApp.alipay.publicKey },
        gatewayUrl: sim.gatewayUrl,
      }),
      cert: createAlipayClient({
        appId: certApp.appId,
        privateKey: certApp.keys.privateKey,
        credentials: { mode: 'cert', appCert: certificates.appCerts[certApp.appId]!, alipayPublicCert: certificates.alipayPublicCert, alipayRootCert: certificates.alipayRootCert },
        gatewayUrl: sim.gatewayUrl,
      }),
    };
    await receivers.key.start(clients.key);
    await receivers.cert.start(clients.cert);
  });
  afterAll(async () => {
    await sim?.stop();
    await receivers.key.stop();
    await receivers.cert.stop();
  });

  const precreate = (mode: 'key' | 'cert', outTradeNo: string, client = clients[mode]) =>
    client.exec(
      'alipay.trade.precreate',
      { bizContent: { outTradeNo, totalAmount: '6.60', subject: `${mode} mode` }, notifyUrl: receivers[mode].url },
      { validateSign: true },
    );

  it('issues a certificate only to the app in certificate mode', () => {
    expect(Object.keys(sim.certificates!.appCerts)).toEqual([certApp.appId]);
  });

  it('answers each app in its own mode, and pays each with a notify signed in that mode', async () => {
    for (const mode of ['key', 'cert'] as const) {
      const outTradeNo = newOrderNo();
      await expect(precreate(mode, outTradeNo)).resolves.toMatchObject({ code: '10000' });
      expect((await fetch(`${sim.url}/sim/trades/${outTradeNo}/pay`, { method: 'POST' })).status).toBe(200);
      const [notify] = await waitFor(`the ${mode}-mode app's notify`, async () => {
        const received = receivers[mode].for(outTradeNo);
        return received.length > 0 ? received : undefined;
      });
      expect(notify!.verified).toBe(true);
      expect(notify!.body.app_id).toBe(mode === 'key' ? keyApp.appId : certApp.appId);
      // Only a certificate-mode notify names Alipay's certificate.
      expect(notify!.body.alipay_cert_sn).toBe(mode === 'cert' ? firstCertificateSn(sim.certificates!.alipayPublicCert) : undefined);
      await expect(clients[mode].exec('alipay.trade.query', { bizContent: { outTradeNo } }, { validateSign: true })).resolves.toMatchObject({
        code: '10000',
        tradeStatus: 'TRADE_SUCCESS',
      });
    }
  });

  it('holds each app to its mode: no serial numbers from the certificate app is refused, a key-mode app needs none', async () => {
    const certAppSigningByKey = new AlipaySdk({
      appId: certApp.appId,
      privateKey: certApp.keys.privateKey,
      keyType: 'PKCS8',
      alipayPublicKey: alipayKeys.publicKey,
      gateway: sim.gatewayUrl,
    });
    await expect(precreate('cert', newOrderNo(), certAppSigningByKey)).resolves.toMatchObject({ code: '40002', subCode: 'isv.missing-app-cert-sn' });
  });

  it('rotates Alipay\'s certificate only for a trade of the certificate-mode app', async () => {
    const keyTrade = newOrderNo();
    await precreate('key', keyTrade);
    const refused = await fetch(`${sim.url}/sim/trades/${keyTrade}/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rotatedAlipayCert: true }),
    });
    expect(refused.status).toBe(400);
    expect((await refused.json()).message).toBe(`rotatedAlipayCert: app ${keyApp.appId} is in key mode, where Alipay signs with a key, not a certificate`);
  });
});

describe('notifies in certificate mode, as the API verifies them (no app certificate)', async () => {
  const pki = await createAlipayPki(alipayKeys.privateKey);
  const verifier = createAlipayClient({ appId: APP_ID, credentials: { mode: 'cert', alipayPublicCert: pki.alipayCert.certificate, alipayRootCert: pki.rootChain } });
  const fields = {
    notify_id: 'n1',
    notify_type: 'trade_status_sync',
    app_id: APP_ID,
    out_trade_no: 'T-1',
    trade_no: '2024010122001400000000000001',
    trade_status: 'TRADE_SUCCESS',
    total_amount: '8.80',
  };
  /** Signed as Alipay signs a notify, by its key unless another is given. */
  const signed = (params: Record<string, string>, key: KeyObject = loadPrivateKey(alipayKeys.privateKey)) => ({
    ...params,
    sign_type: 'RSA2',
    sign: rsa2Sign(signContent(params, ['sign', 'sign_type'], { skipEmpty: true }), key),
  });

  it('accepts a notify signed under the certificate it knows, with or without alipay_cert_sn', () => {
    expect(readNotify(verifier, APP_ID, signed({ ...fields, alipay_cert_sn: pki.alipayCert.sn }))).toMatchObject({ ok: true });
    expect(readNotify(verifier, APP_ID, signed(fields))).toMatchObject({ ok: true });
  });

  it('refuses a notify signed under a certificate it does not know, saying which and which it knows', () => {
    const rotated = { ...fields, alipay_cert_sn: pki.rotatedAlipay.sn };
    const verdict = readNotify(verifier, APP_ID, signed(rotated, pki.rotatedAlipay.privateKey));
    expect(verdict).toEqual({
      ok: false,
      reason: `signed under Alipay certificate ${pki.rotatedAlipay.sn}, which we do not know (ours is ${pki.alipayCert.sn}); Alipay may have rotated its certificate: configure its new ALIPAY_PUBLIC_CERT`,
      rejection: 'unknown_certificate',
    });
  });
});

describe('the engine in certificate mode, end to end', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ alipayMode: 'cert', orderTimeout: '30s', pollLadder: '1s' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function createOrder(label: string, amount = '12.34') {
    const outTradeNo = stack.newOrderNo(label);
    const created = await stack.createPayment({ outTradeNo, amount, subject: `certificate mode ${label}` });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ status: 'AWAITING_PAYMENT' });
    return outTradeNo;
  }
  const answered = (notifies: { answer: string | null }[], answer: string) => notifies.filter((n) => n.answer === answer).length;

  it('is configured with the certificates, not a public key', () => {
    expect(stack.config.alipay.credentials).toMatchObject({ mode: 'cert', appCert: expect.stringContaining('BEGIN CERTIFICATE') });
  });

  it('creates an order and is paid through the notify', async () => {
    const outTradeNo = await createOrder('notify');
    expect((await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`)).status).toBe(200);
    expect(await stack.waitForStatus(outTradeNo, 'PAID', 5_000)).toMatchObject({ paidAmount: '12.34', alipayStatus: 'TRADE_SUCCESS' });
    const events = (await stack.events(outTradeNo)).map((e) => e.type);
    expect(events).toEqual(['created', 'qr_issued', 'notify_received', 'paid']);
    expect(answered((await stack.ledger(outTradeNo)).notifies, 'success')).toBeGreaterThan(0);
  });

  it('finds a payment by query when every notify is lost', async () => {
    const outTradeNo = await createOrder('query');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { dropNotifies: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const paid = (await stack.events(outTradeNo)).find((e) => e.type === 'paid');
    expect(paid?.data.source).toBe('query');
  });

  it('refunds', async () => {
    const outTradeNo = await createOrder('refund', '10.00');
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    const refund = await waitFor('the refund to be answered', async () => {
      const answer = await stack.refund(outTradeNo, { outRequestNo: 'r1', amount: '4.00' });
      return answer.status === 503 ? undefined : answer;
    });
    expect([200, 201]).toContain(refund.status);
    expect(await stack.waitForRefund(outTradeNo, 'r1', 'SUCCEEDED')).toMatchObject({ amount: '4.00', alipayFundChange: 'Y' });
    expect((await stack.getPayment(outTradeNo)).body).toMatchObject({ status: 'PARTIALLY_REFUNDED', refundedAmount: '4.00' });
    expect(await stack.ledger(outTradeNo)).toMatchObject({ refundedAmount: '4.00' });
  });

  it('trusts nothing signed under a certificate it does not know: the notify gets failure, the query is unverifiable', async () => {
    const outTradeNo = await createOrder('rotated');
    const known = firstCertificateSn(stack.sim.certificates!.alipayPublicCert);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/faults`, { rotatedAlipayCert: true });
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);

    // Alipay hears failure, and the polls cannot place the answers either.
    await waitFor('a notify answered failure', async () => (answered((await stack.ledger(outTradeNo)).notifies, 'failure') > 0 ? true : undefined));
    const anomaly = await waitFor('a poll whose answer could not be placed', async () =>
      (await stack.events(outTradeNo)).find((e) => e.type === 'anomaly'),
    );
    expect(anomaly.data.reason).toMatch(
      new RegExp(`status query answer could not be placed: .*unverifiable answer: .*signed under Alipay certificate (?!${known})[0-9a-f]{32}, which we do not know \\(ours is ${known}\\)`),
    );
    const ledger = await stack.ledger(outTradeNo);
    expect(ledger.status).toBe('TRADE_SUCCESS');
    expect(answered(ledger.notifies, 'success')).toBe(0);
    expect((await stack.getPayment(outTradeNo)).body.status).toBe('AWAITING_PAYMENT');
    const types = (await stack.events(outTradeNo)).map((e) => e.type);
    expect(types).not.toContain('notify_received');
    expect(types).not.toContain('paid');

    // Once Alipay signs under the certificate we know, the next poll finds the payment.
    await stack.simCall('DELETE', `/sim/trades/${outTradeNo}/faults`);
    await stack.waitForStatus(outTradeNo, 'PAID');
  });
});
