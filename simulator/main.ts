/**
 * Standalone simulator: `npx tsx simulator/main.ts`.
 * Env: SIM_HOST, SIM_PORT, SIM_APP_ID, SIM_APP_PUBLIC_KEY(_FILE), SIM_ALIPAY_PRIVATE_KEY(_FILE),
 * SIM_ALIPAY_MODE (key, or cert for certificate mode: the certificates are written beside the keys).
 * Missing keys are generated; only the paths of the written key and certificate files are printed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateRsaKeyPair, startSimulator } from './index.js';

const logger = pino({ name: 'alipay-simulator' });

function readKey(name: string): string | undefined {
  const file = process.env[`${name}_FILE`];
  return process.env[name] ?? (file ? readFileSync(file, 'utf8') : undefined);
}

let keyDir: string | undefined;
function writeKeyFile(name: string, pem: string): string {
  keyDir ??= mkdtempSync(join(tmpdir(), 'durapay-alipay-sim-'));
  const path = join(keyDir, name);
  writeFileSync(path, pem, { mode: 0o600 });
  return path;
}

const appId = process.env.SIM_APP_ID ?? '9021000000000001';
let appPublicKey = readKey('SIM_APP_PUBLIC_KEY');
let alipayPrivateKey = readKey('SIM_ALIPAY_PRIVATE_KEY');
if (!appPublicKey) {
  const appKeys = generateRsaKeyPair();
  appPublicKey = appKeys.publicKey;
  const appPrivateKeyFile = writeKeyFile('app_private_key.pem', appKeys.privateKey);
  writeKeyFile('app_public_key.pem', appKeys.publicKey);
  logger.info({ appPrivateKeyFile }, 'generated app key pair');
}
if (!alipayPrivateKey) {
  const alipayKeys = generateRsaKeyPair();
  alipayPrivateKey = alipayKeys.privateKey;
  const alipayPublicKeyFile = writeKeyFile('alipay_public_key.pem', alipayKeys.publicKey);
  logger.info({ alipayPublicKeyFile }, 'generated Alipay key pair');
}

const alipayMode = process.env.SIM_ALIPAY_MODE === 'cert' ? 'cert' : 'key';
const simulator = await startSimulator({
  host: process.env.SIM_HOST,
  port: Number(process.env.SIM_PORT ?? 0),
  apps: [{ appId, publicKey: appPublicKey }],
  alipayPrivateKey,
  alipayMode,
  logger,
});
if (simulator.certificates) {
  // The names Alipay's console gives these files.
  logger.info(
    {
      appCertFile: writeKeyFile(`appCertPublicKey_${appId}.crt`, simulator.certificates.appCerts[appId]!),
      alipayPublicCertFile: writeKeyFile('alipayCertPublicKey_RSA2.crt', simulator.certificates.alipayPublicCert),
      alipayRootCertFile: writeKeyFile('alipayRootCert.crt', simulator.certificates.alipayRootCert),
    },
    'certificate mode: wrote the certificates',
  );
}
logger.info({ url: simulator.url, gatewayUrl: simulator.gatewayUrl, appId }, 'alipay simulator ready');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void simulator.stop().then(() => process.exit(0));
  });
}
