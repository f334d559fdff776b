// The one place that turns the validated TEMPORAL_* settings into SDK connection options, so the
// API's client (Connection, grpc-js) and the worker (NativeConnection, Rust core) connect alike.
import type { TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from './config.js';

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
