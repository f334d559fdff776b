// An Alipay app's keys and certificates, read from the ALIPAY_* variables (or an app's files) and
// checked at start: the app's private key, and Alipay's public key (key mode) or the certificates
// and their chain up to Alipay's root (certificate mode, 公钥证书). A bad one stops the process with
// a message that names the variable; the messages never show a key.
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ConfigError, isGiven, requireSecret, type Env } from '../platform/environment.js';
import { parseCertificates, pemText, tryKey } from '../platform/pem.js';

/** Key mode: Alipay's public key (not the app's), SPKI PEM, checks its signatures. */
export interface AlipayKeyMode {
  mode: 'key';
  alipayPublicKey: string;
}

/** Certificate mode (公钥证书): what checking Alipay's signatures takes (PEM). */
export interface AlipayCertVerification {
  mode: 'cert';
  /** Alipay's public key certificate (alipayCertPublicKey_RSA2.crt), possibly followed by its issuers. */
  alipayPublicCert: string;
  /** Alipay's root certificate chain (alipayRootCert.crt). */
  alipayRootCert: string;
}

/** Certificate mode for an app that calls Alipay: its requests also name its own certificate. */
export interface AlipayCertMode extends AlipayCertVerification {
  /** The app's public key certificate (appCertPublicKey_<app id>.crt). */
  appCert: string;
}

/** How an Alipay app and Alipay recognise each other's signatures, besides the app's private key. */
export type AlipayCredentials = AlipayKeyMode | AlipayCertMode;

/** What checking Alipay's signatures takes: the API, which never calls Alipay, holds no more. */
export type AlipayVerification = AlipayKeyMode | AlipayCertVerification;

function base64Body(text: string): Buffer {
  const body = text.replace(/-----[A-Z ]+-----/g, '').replace(/\\n|\s+/g, '');
  return Buffer.from(body, 'base64');
}

/** Accepts PKCS1 or PKCS8, PEM or bare base64, and names the classic mix-ups. */
export function parsePrivateKey(name: string, text: string): string {
  const trimmed = text.trim().replace(/\\n/g, '\n');
  if (/PUBLIC KEY/.test(trimmed)) {
    throw new ConfigError(`${name}: this is a public key; it must be the app's RSA private key`);
  }
  const der = base64Body(trimmed);
  const key: KeyObject | undefined = trimmed.includes('-----BEGIN')
    ? tryKey(() => createPrivateKey(trimmed))
    : tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })) ??
      tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' }));
  if (!key) {
    // OpenSSL reads a PKCS8 body under a PKCS1 header, but not the other way round.
    const header = /-----BEGIN ([A-Z ]+)-----/.exec(trimmed)?.[1];
    const isPkcs1 = tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' })) !== undefined;
    if (header === 'PRIVATE KEY' && isPkcs1) {
      throw new ConfigError(`${name}: the PEM header says PKCS8 (PRIVATE KEY) but the key is PKCS1; use "-----BEGIN RSA PRIVATE KEY-----" or give the bare base64`);
    }
    throw new ConfigError(`${name}: not an RSA private key (expected PKCS1 or PKCS8, as PEM or bare base64)`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`${name}: an ${key.asymmetricKeyType} key; Alipay RSA2 needs an RSA key`);
  }
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Accepts an SPKI (or PKCS1) RSA public key, PEM or the bare base64 Alipay's console shows. */
export function parsePublicKey(name: string, text: string): string {
  const trimmed = text.trim().replace(/\\n/g, '\n');
  if (/PRIVATE KEY/.test(trimmed)) {
    throw new ConfigError(`${name}: this is a private key; it must be Alipay's public key`);
  }
  const der = base64Body(trimmed);
  const key = trimmed.includes('-----BEGIN')
    ? tryKey(() => createPublicKey(trimmed))
    : tryKey(() => createPublicKey({ key: der, format: 'der', type: 'spki' })) ??
      tryKey(() => createPublicKey({ key: der, format: 'der', type: 'pkcs1' }));
  if (!key || key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`${name}: not an RSA public key (expected SPKI or PKCS1, as PEM or bare base64)`);
  }
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

const CERTIFICATE_VARIABLES = ['ALIPAY_APP_CERT', 'ALIPAY_PUBLIC_CERT', 'ALIPAY_ROOT_CERT'] as const;

/** Key mode (ALIPAY_PUBLIC_KEY) or certificate mode (the certificate variables), never a mix. */
function alipayMode(env: Env): 'key' | 'cert' {
  const certificates = CERTIFICATE_VARIABLES.filter((name) => isGiven(env, name));
  if (certificates.length > 0 && isGiven(env, 'ALIPAY_PUBLIC_KEY')) {
    throw new ConfigError(
      `ALIPAY_PUBLIC_KEY: given together with ${certificates.join(', ')}; use either key mode (ALIPAY_PUBLIC_KEY) or certificate mode (${CERTIFICATE_VARIABLES.join(', ')}), not both`,
    );
  }
  return certificates.length > 0 ? 'cert' : 'key';
}

function expiry(name: string, certificate: X509Certificate): void {
  if (new Date(certificate.validTo) < new Date()) throw new ConfigError(`${name}: expired on ${certificate.validTo}`);
}

function holdsRsaKey(name: string, certificate: X509Certificate): void {
  const type = certificate.publicKey.asymmetricKeyType;
  if (type !== 'rsa') throw new ConfigError(`${name}: holds ${type ? `an ${type}` : 'a non-RSA'} key; Alipay RSA2 needs an RSA key`);
}

/**
 * A root: a CA that issued itself, whose own key verifies its signature. Node reads SM2 keys but
 * checks no SM2 signature of Alipay's chain (asymmetricKeyType is undefined for them): there the
 * names alone decide.
 */
function isSelfSignedCa(certificate: X509Certificate): boolean {
  if (!certificate.ca || !certificate.checkIssued(certificate)) return false;
  if (certificate.publicKey.asymmetricKeyType === undefined) return true;
  return tryKey(() => certificate.verify(certificate.publicKey)) ?? false;
}

/**
 * alipayRootCert.crt: Alipay's root certificates, each self-signed. alipay-sdk makes
 * alipay_root_cert_sn from the RSA ones alone (Alipay's chain also holds an SM2 root).
 */
function parseRootChain(text: string): { certificates: X509Certificate[]; pem: string } {
  const chain = parseCertificates('ALIPAY_ROOT_CERT', pemText(text));
  chain.certificates.forEach((certificate, index) => {
    if (!isSelfSignedCa(certificate)) {
      throw new ConfigError(
        `ALIPAY_ROOT_CERT: certificate ${index + 1} (${certificate.subject.replace(/\n/g, ', ')}) is not a self-signed root CA certificate; ALIPAY_ROOT_CERT must be Alipay's root certificate chain (alipayRootCert.crt), not Alipay's public key certificate or the app's`,
      );
    }
  });
  if (!chain.certificates.some((certificate) => certificate.publicKey.asymmetricKeyType === 'rsa')) {
    throw new ConfigError('ALIPAY_ROOT_CERT: holds no RSA root certificate, and alipay_root_cert_sn is made from those');
  }
  return chain;
}

/** The issuer of `certificate` among `candidates`: named as its issuer, and its key verifies the signature. */
function issuerAmong(certificate: X509Certificate, candidates: readonly X509Certificate[]): X509Certificate | undefined {
  return candidates.find((candidate) => certificate.checkIssued(candidate) && (tryKey(() => certificate.verify(candidate.publicKey)) ?? false));
}

/** alipayCertPublicKey_RSA2.crt: Alipay's certificate first, then any CA between it and a root of ALIPAY_ROOT_CERT. */
function parseAlipayPublicCert(text: string, roots: readonly X509Certificate[]): string {
  const { certificates, pem } = parseCertificates('ALIPAY_PUBLIC_CERT', pemText(text));
  const [leaf, ...intermediates] = certificates as [X509Certificate, ...X509Certificate[]];
  if (isSelfSignedCa(leaf)) {
    throw new ConfigError("ALIPAY_PUBLIC_CERT: a self-signed root CA certificate; it must be Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)");
  }
  holdsRsaKey('ALIPAY_PUBLIC_CERT', leaf);
  expiry('ALIPAY_PUBLIC_CERT', leaf);
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth += 1) {
    if (issuerAmong(current, roots)) return pem;
    const next = issuerAmong(current, intermediates);
    if (!next) break;
    current = next;
  }
  throw new ConfigError(
    `ALIPAY_PUBLIC_CERT: not issued under ALIPAY_ROOT_CERT (no root there signed ${current.subject.replace(/\n/g, ', ')}, issued by ${current.issuer.replace(/\n/g, ', ')}); both must come from the same Alipay environment`,
  );
}

/** appCertPublicKey_<app id>.crt: Alipay's certificate of the app's own public key. */
function parseAppCert(text: string, privateKey: string): string {
  const { certificates, pem } = parseCertificates('ALIPAY_APP_CERT', pemText(text));
  const leaf = certificates[0]!;
  holdsRsaKey('ALIPAY_APP_CERT', leaf);
  if (!leaf.checkPrivateKey(createPrivateKey(privateKey))) {
    throw new ConfigError("ALIPAY_APP_CERT: does not match ALIPAY_PRIVATE_KEY (the certificate's public key is not this private key's); it must be the certificate Alipay issued for this app's key");
  }
  expiry('ALIPAY_APP_CERT', leaf);
  return pem;
}

/** What the API needs to check Alipay's signatures, in either mode. */
export function parseAlipayVerification(env: Env): AlipayVerification {
  if (alipayMode(env) === 'key') {
    return { mode: 'key', alipayPublicKey: parsePublicKey('ALIPAY_PUBLIC_KEY', requireSecret(env, 'ALIPAY_PUBLIC_KEY')) };
  }
  const roots = parseRootChain(requireSecret(env, 'ALIPAY_ROOT_CERT'));
  return {
    mode: 'cert',
    alipayPublicCert: parseAlipayPublicCert(requireSecret(env, 'ALIPAY_PUBLIC_CERT'), roots.certificates),
    alipayRootCert: roots.pem,
  };
}

/** What the worker needs: the verification, and in certificate mode the app's own certificate. */
export function parseAlipayCredentials(env: Env, privateKey: string): AlipayCredentials {
  const verification = parseAlipayVerification(env);
  const ownPublicKey = createPublicKey(privateKey);
  if (verification.mode === 'key') {
    if (ownPublicKey.equals(createPublicKey(verification.alipayPublicKey))) {
      throw new ConfigError("ALIPAY_PUBLIC_KEY: this is the app's own public key; it must be Alipay's public key (shown beside it in the Alipay console)");
    }
    return verification;
  }
  const appCert = parseAppCert(requireSecret(env, 'ALIPAY_APP_CERT'), privateKey);
  if (ownPublicKey.equals(new X509Certificate(verification.alipayPublicCert).publicKey)) {
    throw new ConfigError("ALIPAY_PUBLIC_CERT: holds the app's own public key; it must be Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)");
  }
  return { ...verification, appCert };
}

/** An Alipay app's key and credentials from the texts of its files (`npm run merchant -- app set`),
 *  checked as at start; the messages name the variable each file would go in. */
export function parseAlipayAppFiles(files: {
  privateKey: string;
  alipayPublicKey?: string;
  appCert?: string;
  alipayPublicCert?: string;
  alipayRootCert?: string;
}): { privateKey: string; credentials: AlipayCredentials } {
  const privateKey = parsePrivateKey('ALIPAY_PRIVATE_KEY', files.privateKey);
  const env: Env = {
    ALIPAY_PUBLIC_KEY: files.alipayPublicKey,
    ALIPAY_APP_CERT: files.appCert,
    ALIPAY_PUBLIC_CERT: files.alipayPublicCert,
    ALIPAY_ROOT_CERT: files.alipayRootCert,
  };
  return { privateKey, credentials: parseAlipayCredentials(env, privateKey) };
}
