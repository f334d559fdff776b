// The one place an alipay-sdk client is configured, so every caller verifies the same way.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { parse as parseJson, type DocumentNode, type MemberNode, type ValueNode } from '@humanwhocodes/momoa';
import { AlipayRequestError, AlipaySdk } from 'alipay-sdk';
import type { AlipayCredentials, AlipayVerification } from './credentials.js';

export interface AlipayClientOptions {
  appId: string;
  /** PKCS8 PEM; only the worker holds it. The API's client only verifies, and gets none. */
  privateKey?: string;
  /** Key or certificate mode; a client that calls Alipay in certificate mode needs the app's certificate. */
  credentials: AlipayCredentials | AlipayVerification;
  gatewayUrl?: string;
  timeoutMs?: number;
}

// Strict JSON mode gives string names with escapes decoded; identifiers exist only in JSON5 mode.
const memberName = (member: MemberNode): string => (member.name.type === 'String' ? member.name.value : member.name.name);

/** The first key that some object in `node` holds twice, at any depth. */
function repeatedKey(node: ValueNode): string | undefined {
  if (node.type === 'Array') {
    for (const element of node.elements) {
      const repeated = repeatedKey(element.value);
      if (repeated !== undefined) return repeated;
    }
    return undefined;
  }
  if (node.type !== 'Object') return undefined;
  const names = new Set<string>();
  for (const member of node.members) {
    const name = memberName(member);
    if (names.has(name)) return name;
    names.add(name);
    const repeated = repeatedKey(member.value);
    if (repeated !== undefined) return repeated;
  }
  return undefined;
}

/**
 * Why the answer's raw text cannot be trusted as alipay-sdk reads it, or undefined when it can.
 * alipay-sdk 4.14 verifies the text between the first `<key>"` it finds in the body and the last
 * `}` before the last `"sign"` (getSignStr), but returns JSON.parse(body)[key], which keeps the
 * last of repeated keys. Only an answer whose `<key>` value is exactly the verified text, and
 * where no object repeats a key, means one thing to both.
 */
function answerAmbiguity(raw: string, responseKey: string, signedText: string): string | undefined {
  let doc: DocumentNode;
  try {
    doc = parseJson(raw, { mode: 'json', ranges: true });
  } catch (err) {
    return `the answer is not strict JSON (${(err as Error).message})`;
  }
  const repeated = repeatedKey(doc.body);
  if (repeated !== undefined) return `the answer repeats the key "${repeated}"`;
  if (doc.body.type !== 'Object') return 'the answer is not a JSON object';
  const answer = doc.body.members.find((member) => memberName(member) === responseKey);
  if (!answer) return `the answer has no ${responseKey}`;
  const [start, end] = answer.value.range!;
  if (raw.slice(start, end) !== signedText) return `the ${responseKey} value is not the text the signature covers`;
  return undefined;
}

/**
 * Certificate mode: why an answer or notify signed under `certSn` cannot be checked, or undefined
 * when it can. alipay-sdk 4.14 learns the serial number of the Alipay certificate it was given
 * (config.alipayCertSn) but compares it with nothing in a v2 answer or a notify (only v3 answers'
 * alipay-sn header): it would check the signature with the key it has and report a bad signature.
 * After Alipay rotates its certificate, this says which certificate we lack. Key mode: none known,
 * nothing compared.
 */
export function unknownCertificate(verifier: AlipaySdk, certSn: unknown): string | undefined {
  const known = verifier.config.alipayCertSn;
  if (!known || certSn === undefined || certSn === known) return undefined;
  return `signed under Alipay certificate ${String(certSn)}, which we do not know (ours is ${known}); Alipay may have rotated its certificate: configure its new ALIPAY_PUBLIC_CERT`;
}

/**
 * alipay-sdk's exec hands the raw body to checkResponseSign whenever validateSign is set (it has no
 * other hook: its `urllib` option is ignored and the request is made in a private method), so the
 * check runs there, before the SDK's own signature check and before it returns anything.
 */
class StrictAlipaySdk extends AlipaySdk {
  override checkResponseSign(responseDataRaw: string, responseKey: string, serverSign: string, traceId: string): void {
    const problem =
      answerAmbiguity(responseDataRaw, responseKey, this.getSignStr(responseDataRaw, responseKey)) ??
      // Read only once the answer is known to be strict JSON without repeated keys.
      unknownCertificate(this, (JSON.parse(responseDataRaw) as { alipay_cert_sn?: unknown }).alipay_cert_sn);
    if (problem !== undefined) {
      throw new AlipayRequestError(`answer refused, cannot be verified: ${problem}`, { traceId, responseDataRaw });
    }
    super.checkResponseSign(responseDataRaw, responseKey, serverSign, traceId);
  }
}

/** alipay-sdk's options for either mode. It computes app_cert_sn, alipay_root_cert_sn and
 *  alipay_cert_sn from the certificates, and takes the key to check signatures with from
 *  Alipay's certificate. */
function credentialOptions(credentials: AlipayCredentials | AlipayVerification) {
  if (credentials.mode === 'key') return { alipayPublicKey: credentials.alipayPublicKey };
  return {
    // alipay-sdk enters certificate mode only when given an app certificate. A verifier (the API)
    // has none and sends no request, so Alipay's certificate stands in for it there.
    appCertContent: 'appCert' in credentials ? credentials.appCert : credentials.alipayPublicCert,
    alipayPublicCertContent: credentials.alipayPublicCert,
    alipayRootCertContent: credentials.alipayRootCert,
  };
}

export function createAlipayClient(options: AlipayClientOptions): AlipaySdk {
  const client = new StrictAlipaySdk({
    appId: options.appId,
    // alipay-sdk insists on a private key even for verifying; the verifier never signs anything.
    privateKey: options.privateKey ?? 'verify-only',
    keyType: 'PKCS8',
    signType: 'RSA2',
    ...credentialOptions(options.credentials),
    gateway: options.gatewayUrl,
    timeout: options.timeoutMs ?? 10_000,
  });
  // alipay-sdk keeps its keys as PEM text and hands that text to OpenSSL for every signature and
  // every check, which parses it again each time: a signature took 2.8 ms here, 1.0 ms with the key
  // parsed once (and a check 0.3 ms against 0.07 ms). The same keys, parsed once, as KeyObjects,
  // which node:crypto's sign and verify take wherever they take PEM.
  const parsed = client.config as unknown as { privateKey: KeyObject; alipayPublicKey?: KeyObject };
  if (options.privateKey) parsed.privateKey = createPrivateKey(client.config.privateKey);
  if (client.config.alipayPublicKey) parsed.alipayPublicKey = createPublicKey(client.config.alipayPublicKey);
  return client;
}
