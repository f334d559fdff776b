// Where merchant webhooks may go. A merchant names the notifyUrl, so under `deny` (the default) the
// worker never posts into the network it runs in: loopback, link-local, private and shared address
// space are refused, whatever name leads there. Shared by the API (a literal address is refused at
// create) and the worker (every address a name resolves to is checked before it connects).
import { BlockList, isIP } from 'node:net';

/** WEBHOOK_PRIVATE_TARGETS: deny (default) refuses the addresses below; allow posts anywhere. */
export type WebhookPrivateTargets = 'deny' | 'allow';

/** The address space a webhook never reaches under `deny`. BlockList also matches IPv4-mapped
 *  IPv6 addresses (::ffff:10.0.0.5) against the IPv4 ranges. */
const privateRanges = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network": 0.0.0.0 reaches the host itself
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12], // RFC 1918
  ['192.168.0.0', 16], // RFC 1918
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv6');
}

/** Whether an IP address (v4 or v6, without brackets) is one `deny` refuses. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return privateRanges.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The host of a URL as an IP address, when it is one ([::1] → ::1); URL has normalised it
 *  already (http://2130706433/ is http://127.0.0.1/). */
export function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) ? host : undefined;
}

/** The rule a refused notifyUrl broke, for the API's 400. */
export const PRIVATE_TARGET_RULE =
  'must not point at a loopback, link-local, private (RFC 1918), unique-local, carrier-grade NAT or unspecified address (WEBHOOK_PRIVATE_TARGETS=deny)';

/** What an attempt that never reached the merchant's endpoint stored, and the merchant is shown. */
export const TARGET_REFUSED = 'target refused';
