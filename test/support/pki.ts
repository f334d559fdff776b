// Throwaway certificates for TLS tests, made at run time so no key or certificate is committed.
// node:crypto makes keys and signs but cannot build an X.509 certificate, so this file encodes the
// few DER structures a certificate needs (RFC 5280) itself. Both TLS stacks the tests drive
// (OpenSSL in node, rustls in the worker's core) verify what it makes.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...content: Buffer[]) => tlv(0x30, ...content);
const set = (...content: Buffer[]) => tlv(0x31, ...content);
const bool = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0]));
const octets = (content: Buffer) => tlv(0x04, content);
const bitString = (content: Buffer, unusedBits = 0) => tlv(0x03, Buffer.from([unusedBits]), content);
const integer = (n: number) => {
  const bytes: number[] = [];
  for (let rest = n; rest > 0 || bytes.length === 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
};
const oid = (dotted: string) => {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) base128.unshift(0x80 | (v & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
};
const utcTime = (date: Date) => tlv(0x17, Buffer.from(`${date.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
const name = (commonName: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(commonName)))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const EKU = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' } as const;
const DAY_MS = 86_400_000;

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

export interface Issued {
  /** PEM */
  cert: string;
  /** PKCS8 PEM */
  key: string;
  /** For issuing further certificates (only useful for a CA). */
  signer: { commonName: string; keyId: Buffer; privateKey: KeyObject };
}

export interface IssueOptions {
  usage: 'ca' | 'server' | 'client';
  commonName: string;
  /** Subject alternative names (what a client checks a server's name against). */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Absent: self-signed. */
  issuer?: Issued['signer'];
  notBefore?: Date;
  notAfter?: Date;
}

let serial = 1;

export function issue(options: IssueOptions): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const keyId = createHash('sha1').update(spki).digest();
  const { usage } = options;
  const issuer = options.issuer ?? { commonName: options.commonName, keyId, privateKey };

  const extensions = [
    extension('2.5.29.19', true, usage === 'ca' ? seq(bool(true)) : seq()), // basicConstraints
    // keyUsage: keyCertSign + cRLSign for a CA, digitalSignature for a leaf
    extension('2.5.29.15', true, usage === 'ca' ? bitString(Buffer.from([0x06]), 1) : bitString(Buffer.from([0x80]), 7)),
    extension('2.5.29.14', false, octets(keyId)), // subjectKeyIdentifier
    extension('2.5.29.35', false, seq(tlv(0x80, issuer.keyId))), // authorityKeyIdentifier
  ];
  if (usage !== 'ca') extensions.push(extension('2.5.29.37', false, seq(oid(EKU[usage]))));
  const altNames = [
    ...(options.dnsNames ?? []).map((dns) => tlv(0x82, Buffer.from(dns))),
    ...(options.ipAddresses ?? []).map((ip) => tlv(0x87, Buffer.from(ip.split('.').map(Number)))),
  ];
  if (altNames.length > 0) extensions.push(extension('2.5.29.17', false, seq(...altNames)));

  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, integer(2)), // v3
    integer(serial++),
    ECDSA_WITH_SHA256,
    name(issuer.commonName),
    seq(utcTime(options.notBefore ?? new Date(now - DAY_MS)), utcTime(options.notAfter ?? new Date(now + DAY_MS))),
    name(options.commonName),
    spki,
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, issuer.privateKey); // DER ECDSA-Sig-Value, as X.509 wants
  return {
    cert: pem('CERTIFICATE', seq(tbs, ECDSA_WITH_SHA256, bitString(signature))),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    signer: { commonName: options.commonName, keyId, privateKey },
  };
}

/** A CA, a server certificate for `server`'s names, and a client certificate, both signed by the CA. */
export function issueTestPki(server: { dnsNames?: string[]; ipAddresses?: string[] } = { ipAddresses: ['127.0.0.1'] }) {
  const ca = issue({ usage: 'ca', commonName: 'durapay test CA' });
  return {
    ca,
    server: issue({ usage: 'server', commonName: 'temporal test server', issuer: ca.signer, ...server }),
    client: issue({ usage: 'client', commonName: 'durapay test client', issuer: ca.signer }),
  };
}
