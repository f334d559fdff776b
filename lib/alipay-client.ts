// The one place an alipay-sdk client is configured, so every caller verifies the same way.
import { parse as parseJson, type DocumentNode, type MemberNode, type ValueNode } from '@humanwhocodes/momoa';
import { AlipayRequestError, AlipaySdk } from 'alipay-sdk';

export interface AlipayClientOptions {
  appId: string;
  /** PKCS8 PEM; only the worker holds it. The API's client only verifies, and gets none. */
  privateKey?: string;
  alipayPublicKey: string;
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
 * alipay-sdk's exec hands the raw body to checkResponseSign whenever validateSign is set (it has no
 * other hook: its `urllib` option is ignored and the request is made in a private method), so the
 * check runs there, before the SDK's own signature check and before it returns anything.
 */
class StrictAlipaySdk extends AlipaySdk {
  override checkResponseSign(responseDataRaw: string, responseKey: string, serverSign: string, traceId: string): void {
    const problem = answerAmbiguity(responseDataRaw, responseKey, this.getSignStr(responseDataRaw, responseKey));
    if (problem !== undefined) {
      throw new AlipayRequestError(`answer refused, cannot be verified: ${problem}`, { traceId, responseDataRaw });
    }
    super.checkResponseSign(responseDataRaw, responseKey, serverSign, traceId);
  }
}

export function createAlipayClient(options: AlipayClientOptions): AlipaySdk {
  return new StrictAlipaySdk({
    appId: options.appId,
    // alipay-sdk insists on a private key even for verifying; the verifier never signs anything.
    privateKey: options.privateKey ?? 'verify-only',
    keyType: 'PKCS8',
    signType: 'RSA2',
    alipayPublicKey: options.alipayPublicKey,
    gateway: options.gatewayUrl,
    timeout: options.timeoutMs ?? 10_000,
  });
}
