// The one place that turns the validated TEMPORAL_* settings into SDK connection options, so the
// API's client (Connection, grpc-js) and the worker (NativeConnection, Rust core) connect alike;
// and where the TLS and API-key variables are read and checked (lib/platform/config.ts asks here).
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, readSecret, type Env, type SecretVariable } from './environment.js';
import { parseCertificates, PEM_BLOCK, pemText, tryKey } from './pem.js';

/** How to reach Temporal. temporalConnectionOptions turns it into the SDK's connection options. */
export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Absent: plain gRPC. Present (even empty): TLS, verified against the system's roots unless serverRootCA is set. */
  tls?: {
    /** mTLS: the client certificate (PEM, possibly followed by its chain) and its key (PKCS8 PEM). */
    clientCertPair?: { crt: string; key: string };
    /** PEM bundle of the CA(s) that signed the server's certificate. */
    serverRootCA?: string;
    serverNameOverride?: string;
  };
  /** Sent as "Authorization: Bearer …"; only ever with TLS. */
  apiKey?: string;
}

/** The variables that ask for a secured Temporal connection (each secret one also as NAME_FILE). */
export const TEMPORAL_SECURITY_VARIABLES = [
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_CA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_API_KEY',
] as const;

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';

function parseClientKey(name: string, text: string): KeyObject {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    // Neither the client (grpc-js) nor the worker (Rust core) takes a passphrase.
    throw new ConfigError(`${name}: the key is encrypted; give it unencrypted (e.g. openssl pkey -in key.pem -out plain.pem)`);
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  // `openssl ecparam -genkey` puts an EC PARAMETERS block before the key.
  const keyBlock = blocks.find(([, label]) => label!.endsWith('PRIVATE KEY'));
  if (!keyBlock && blocks[0]) {
    throw new ConfigError(`${name}: this is a ${blocks[0][1]}; it must be the client certificate's private key`);
  }
  const key = keyBlock ? tryKey(() => createPrivateKey(keyBlock[0])) : undefined;
  if (!key) throw new ConfigError(`${name}: not a PEM private key`);
  return key;
}

function parseClientCertPair(crtText: string, keyText: string): { crt: string; key: string } {
  const { certificates, pem } = parseCertificates('TEMPORAL_TLS_CERT', crtText);
  const leaf = certificates[0]!;
  const key = parseClientKey('TEMPORAL_TLS_KEY', keyText);
  if (!leaf.checkPrivateKey(key)) {
    throw new ConfigError("TEMPORAL_TLS_KEY: does not belong to TEMPORAL_TLS_CERT (the certificate's public key is not this key's)");
  }
  if (new Date(leaf.validTo) < new Date()) {
    throw new ConfigError(`TEMPORAL_TLS_CERT: expired on ${leaf.validTo}`);
  }
  // Servers check a client certificate's extended key usage: a server-only certificate is refused.
  const usages = leaf.keyUsage as string[] | undefined;
  if (usages && usages.length > 0 && !usages.includes(EKU_CLIENT_AUTH) && !usages.includes(EKU_ANY)) {
    throw new ConfigError('TEMPORAL_TLS_CERT: not a client certificate (its extended key usage lacks clientAuth)');
  }
  return { crt: pem, key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

function parseApiKey(text: string): string {
  const key = text.trim();
  if (/^bearer\s/i.test(key)) {
    throw new ConfigError('TEMPORAL_API_KEY: give the key alone; "Bearer " is added when it is sent');
  }
  // It travels as an HTTP/2 header value.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new ConfigError('TEMPORAL_API_KEY: must be one token of printable ASCII characters, without spaces');
  }
  return key;
}

/** TLS and API-key settings for Temporal. Error messages name variables and files, never contents.
 *  `parsed`: TEMPORAL_TLS and TEMPORAL_TLS_SERVER_NAME as the configuration's schema read them. */
export function parseTemporalSecurity(
  env: Env,
  parsed: { TEMPORAL_TLS?: boolean; TEMPORAL_TLS_SERVER_NAME?: string },
): Pick<TemporalConfig, 'tls' | 'apiKey'> {
  const optional = (name: SecretVariable) => {
    const value = readSecret(env, name);
    return value?.trim() ? value : undefined;
  };
  const crtText = optional('TEMPORAL_TLS_CERT');
  const keyText = optional('TEMPORAL_TLS_KEY');
  const caText = optional('TEMPORAL_TLS_CA');
  const apiKeyText = optional('TEMPORAL_API_KEY');
  if (crtText && !keyText) throw new ConfigError('TEMPORAL_TLS_KEY: required with TEMPORAL_TLS_CERT (or TEMPORAL_TLS_KEY_FILE)');
  if (keyText && !crtText) throw new ConfigError('TEMPORAL_TLS_CERT: required with TEMPORAL_TLS_KEY (or TEMPORAL_TLS_CERT_FILE)');

  const clientCertPair = crtText && keyText ? parseClientCertPair(pemText(crtText), pemText(keyText)) : undefined;
  const serverRootCA = caText ? parseCertificates('TEMPORAL_TLS_CA', pemText(caText)).pem : undefined;
  const serverNameOverride = parsed.TEMPORAL_TLS_SERVER_NAME;
  const apiKey = apiKeyText ? parseApiKey(apiKeyText) : undefined;

  const needTls = [
    clientCertPair && 'TEMPORAL_TLS_CERT',
    serverRootCA && 'TEMPORAL_TLS_CA',
    serverNameOverride && 'TEMPORAL_TLS_SERVER_NAME',
    apiKey && 'TEMPORAL_API_KEY',
  ].filter(Boolean);
  if (parsed.TEMPORAL_TLS === false && needTls.length > 0) {
    const why = apiKey ? ' (an API key must never cross the network in clear)' : '';
    throw new ConfigError(`TEMPORAL_TLS: off, but ${needTls.join(', ')} need${needTls.length === 1 ? 's' : ''} TLS${why}`);
  }
  if (!(parsed.TEMPORAL_TLS ?? needTls.length > 0)) return {};
  return {
    tls: {
      ...(clientCertPair && { clientCertPair }),
      ...(serverRootCA && { serverRootCA }),
      ...(serverNameOverride && { serverNameOverride }),
    },
    ...(apiKey && { apiKey }),
  };
}

/** What Connection.connect and NativeConnection.connect both accept. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
}

export function temporalConnectionOptions(temporal: TemporalConfig): TemporalConnectionOptions {
  const { address, tls, apiKey, namespace } = temporal;
  if (!tls) return { address };
  const pair = tls.clientCertPair;
  return {
    address,
    // An empty object still means TLS, verified against the system's roots.
    tls: {
      ...(pair && { clientCertPair: { crt: Buffer.from(pair.crt), key: Buffer.from(pair.key) } }),
      ...(tls.serverRootCA && { serverRootCACertificate: Buffer.from(tls.serverRootCA) }),
      ...(tls.serverNameOverride && { serverNameOverride: tls.serverNameOverride }),
    },
    // Temporal Cloud routes API-key calls by this header. The SDK adds it to calls that name a
    // namespace; set on the connection (as Temporal's Cloud examples do), it covers the others too.
    ...(apiKey && { apiKey, metadata: { 'temporal-namespace': namespace } }),
  };
}

/** For logs: how the connection is made, never with what. */
export function describeTemporalConnection(temporal: TemporalConfig) {
  const auth = [temporal.tls?.clientCertPair && 'client certificate', temporal.apiKey && 'API key'].filter(Boolean);
  return {
    address: temporal.address,
    namespace: temporal.namespace,
    tls: temporal.tls ? 'on' : 'off',
    auth: auth.length > 0 ? auth.join(' + ') : 'none',
  };
}
