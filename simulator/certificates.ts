// Certificate mode (公钥证书) of the simulated Alipay: two self-signed roots (alipayRootCert.crt holds
// several), a CA under the first that issues Alipay's certificate and the apps' certificates, and
// a newer Alipay certificate for another key, as after Alipay rotates its certificate.
// node:crypto reads certificates but cannot make them, so node-forge assembles and signs them.
// The serial numbers (app_cert_sn, alipay_cert_sn, alipay_root_cert_sn) are computed here, as
// Alipay defines them, not with alipay-sdk's helpers: its package exports none of them, and the
// simulator is the other side of the wire. Tests check that both sides agree.
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

/** A distinguished name, most significant part first, e.g. [['C', 'CN'], ['O', 'Ant'], ['CN', 'Root']]. */
export type DistinguishedName = readonly (readonly ['C' | 'O' | 'OU' | 'CN', string])[];

export interface CertificateAuthority {
  /** PEM */
  certificate: string;
  /** PKCS8 PEM */
  privateKey: string;
}

export interface CertificateSpec {
  subject: DistinguishedName;
  /** SPKI PEM, or a key object: whose public key the certificate holds. */
  publicKey: string | KeyObject;
  /** Absent: self-signed, with selfSigningKey. */
  issuer?: CertificateAuthority;
  selfSigningKey?: string;
  ca?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

const DAY_MS = 86_400_000;

/** An RSA certificate signed with SHA256withRSA, as Alipay's are. */
export function issueCertificate(spec: CertificateSpec): string {
  const cert = forge.pki.createCertificate();
  const spki = typeof spec.publicKey === 'string' ? spec.publicKey : spec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  cert.publicKey = forge.pki.publicKeyFromPem(spki);
  // Random, so that two certificates of one issuer never share a serial number; positive, and
  // without a leading zero byte, as DER wants.
  const serial = randomBytes(8);
  serial[0] = (serial[0]! & 0x7f) | 0x10;
  cert.serialNumber = serial.toString('hex');
  const now = Date.now();
  cert.validity.notBefore = spec.notBefore ?? new Date(now - DAY_MS);
  cert.validity.notAfter = spec.notAfter ?? new Date(now + 365 * DAY_MS);
  const subject = spec.subject.map(([shortName, value]) => ({ shortName, value }));
  cert.setSubject(subject);
  let signingKey: string;
  if (spec.issuer) {
    cert.setIssuer(forge.pki.certificateFromPem(spec.issuer.certificate).subject.attributes);
    signingKey = spec.issuer.privateKey;
  } else {
    if (!spec.selfSigningKey) throw new Error('a self-signed certificate needs selfSigningKey');
    cert.setIssuer(subject);
    signingKey = spec.selfSigningKey;
  }
  cert.setExtensions(
    spec.ca
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
        ]
      : // What Alipay's own leaf certificates carry.
        [{ name: 'keyUsage', digitalSignature: true, nonRepudiation: true, keyEncipherment: true, dataEncipherment: true, critical: true }],
  );
  cert.sign(forge.pki.privateKeyFromPem(signingKey), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function certificatesIn(pem: string): X509Certificate[] {
  return [...pem.matchAll(PEM_CERTIFICATE)].map(([block]) => new X509Certificate(block));
}

/**
 * Alipay's serial number of a certificate: MD5 (hex) of the issuer's name as Java's
 * X500Principal.getName() writes it (least significant part first, `CN=…,O=…,C=…`) followed by
 * the serial number in decimal. Good for the plain names this simulator issues (no escaping).
 */
export function certificateSn(certificate: X509Certificate): string {
  const issuer = certificate.issuer.split('\n').reverse().join(',');
  const serial = BigInt(`0x${certificate.serialNumber}`).toString(10);
  return createHash('md5').update(issuer + serial, 'utf8').digest('hex');
}

/** The serial number of the first certificate in a PEM file. */
export function firstCertificateSn(pem: string): string {
  const [first] = certificatesIn(pem);
  if (!first) throw new Error('no certificate in the PEM text');
  return certificateSn(first);
}

/**
 * alipay_root_cert_sn: the serial numbers of the RSA-signed certificates in the root chain, joined
 * by `_` (Alipay's chain also holds roots signed otherwise, which do not count). A root is
 * self-signed, so its own key's type says how it is signed.
 */
export function rootChainSn(pem: string): string {
  return certificatesIn(pem)
    .filter((certificate) => certificate.publicKey.asymmetricKeyType === 'rsa')
    .map(certificateSn)
    .join('_');
}

const generateRsaPair = promisify(generateKeyPair);
async function newRsaKey(): Promise<{ privateKey: string; publicKey: string }> {
  return generateRsaPair('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
}

export interface SigningCertificate {
  /** PEM: the certificate, then the CA that issued it (as alipayCertPublicKey_RSA2.crt holds them). */
  certificate: string;
  sn: string;
}

/** What the simulated Alipay holds in certificate mode. */
export interface AlipayPki {
  /** alipayRootCert.crt */
  rootChain: string;
  rootChainSn: string;
  /** The CA under the first root that issues Alipay's and the apps' certificates. */
  ca: CertificateAuthority;
  /** alipayCertPublicKey_RSA2.crt, for the simulator's Alipay private key. */
  alipayCert: SigningCertificate;
  /** After a rotation: another key, another certificate, another serial number. */
  rotatedAlipay: SigningCertificate & { privateKey: KeyObject };
  /** appCertPublicKey_<app id>.crt: what Alipay issues for an app's public key. */
  issueAppCert(appId: string, publicKey: string | KeyObject): string;
}

const ORGANISATION = 'durapay Alipay simulator';

export async function createAlipayPki(alipayPrivateKey: string): Promise<AlipayPki> {
  const [rootKey, otherRootKey, caKey, rotatedKey] = await Promise.all([newRsaKey(), newRsaKey(), newRsaKey(), newRsaKey()]);
  const now = Date.now();
  const rootValidity = { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 20 * 365 * DAY_MS) };
  const selfSignedRoot = (commonName: string, key: { privateKey: string; publicKey: string }) =>
    issueCertificate({
      subject: [['C', 'CN'], ['O', ORGANISATION], ['OU', 'Certification Authority'], ['CN', commonName]],
      publicKey: key.publicKey,
      selfSigningKey: key.privateKey,
      ca: true,
      ...rootValidity,
    });
  const root = { certificate: selfSignedRoot('Simulated Alipay Root CA R1', rootKey), privateKey: rootKey.privateKey };
  const rootChain = root.certificate + selfSignedRoot('Simulated Alipay Root CA R2', otherRootKey);
  const ca: CertificateAuthority = {
    certificate: issueCertificate({
      subject: [['C', 'CN'], ['O', ORGANISATION], ['OU', 'Certification Authority'], ['CN', 'Simulated Alipay Class 2 CA']],
      publicKey: caKey.publicKey,
      issuer: root,
      ca: true,
      notAfter: new Date(now + 10 * 365 * DAY_MS),
    }),
    privateKey: caKey.privateKey,
  };
  const alipayCertFor = (publicKey: string | KeyObject, commonName: string): SigningCertificate => {
    const leaf = issueCertificate({ subject: [['C', 'CN'], ['O', ORGANISATION], ['CN', commonName]], publicKey, issuer: ca });
    return { certificate: leaf + ca.certificate, sn: firstCertificateSn(leaf) };
  };
  return {
    rootChain,
    rootChainSn: rootChainSn(rootChain),
    ca,
    alipayCert: alipayCertFor(createPublicKey(alipayPrivateKey), 'Simulated Alipay'),
    rotatedAlipay: {
      ...alipayCertFor(rotatedKey.publicKey, 'Simulated Alipay (rotated)'),
      privateKey: createPrivateKey(rotatedKey.privateKey),
    },
    issueAppCert: (appId, publicKey) =>
      issueCertificate({ subject: [['C', 'CN'], ['O', ORGANISATION], ['OU', 'Apps'], ['CN', appId]], publicKey, issuer: ca }),
  };
}
