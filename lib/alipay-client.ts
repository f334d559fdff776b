// The one place an alipay-sdk client is configured, so every caller verifies the same way.
import { AlipaySdk } from 'alipay-sdk';

export interface AlipayClientOptions {
  appId: string;
  /** PKCS8 PEM; only the worker holds it. The API's client only verifies, and gets none. */
  privateKey?: string;
  alipayPublicKey: string;
  gatewayUrl?: string;
  timeoutMs?: number;
}

export function createAlipayClient(options: AlipayClientOptions): AlipaySdk {
  return new AlipaySdk({
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
