// The receiver's check a merchant makes on each webhook, with the reason when it fails. The
// verdict is verifyWebhookSignature's own; only the explanation is added here.
import { parseWebhookSignature, verifyWebhookSignature } from '../lib/merchants/signing.js';

export type WebhookVerdict = { valid: true } | { valid: false; reason: string };

export function explainWebhookSignature(
  secret: string,
  header: string,
  rawBody: Buffer,
  toleranceSeconds: number,
  now = Date.now(),
): WebhookVerdict {
  if (verifyWebhookSignature(secret, header, rawBody, { toleranceSeconds, now })) return { valid: true };
  const t = parseWebhookSignature(header)?.t;
  if (t === undefined) {
    return { valid: false, reason: 'malformed signature header: expected t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]' };
  }
  // The same check with any age accepted: if that passes, the timestamp alone failed.
  if (verifyWebhookSignature(secret, header, rawBody, { toleranceSeconds: Number.POSITIVE_INFINITY, now })) {
    const age = Math.round(now / 1000 - Number(t));
    const when = age >= 0 ? `${age} s old` : `${-age} s in the future`;
    return { valid: false, reason: `stale timestamp: t=${t} is ${when}, beyond the tolerance of ${toleranceSeconds} s` };
  }
  return { valid: false, reason: 'bad signature: the body, the timestamp or the secret is not the one that was signed' };
}
