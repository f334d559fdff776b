// A TLS front for the Temporal dev server, which serves plain gRPC only: it terminates TLS
// (optionally requiring a client certificate signed by a given CA), optionally requires an API key
// the way Temporal Cloud does, and forwards each gRPC call to the dev server. It records what every
// call carried, so tests can see who connected and with what.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface TlsFrontOptions {
  /** host:port of the plain dev server */
  upstream: string;
  cert: string;
  key: string;
  /** When set, clients must present a certificate this CA signed (mTLS). */
  clientCa?: string;
  /** When set, every call must carry "authorization: Bearer <apiKey>"; others get UNAUTHENTICATED. */
  apiKey?: string;
}

export interface SeenCall {
  /** gRPC method, e.g. temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo */
  method: string;
  authorization?: string;
  namespace?: string;
  /** CN of the client certificate of the connection, if any. */
  clientCertCN?: string;
  rejected: boolean;
}

export interface TlsFront {
  address: string;
  calls: SeenCall[];
  /** TLS handshakes the front refused (e.g. no or untrusted client certificate). */
  tlsErrors: string[];
  close(): Promise<void>;
}

const GRPC_UNAUTHENTICATED = '16';
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export async function startTlsFront(options: TlsFrontOptions): Promise<TlsFront> {
  const calls: SeenCall[] = [];
  const tlsErrors: string[] = [];
  const upstream = http2.connect(`http://${options.upstream}`);
  upstream.on('error', () => {}); // surfaces on the forwarded calls
  const sessions = new Set<http2.ServerHttp2Session>();

  const server = http2.createSecureServer({
    cert: options.cert,
    key: options.key,
    ...(options.clientCa && { ca: options.clientCa, requestCert: true, rejectUnauthorized: true }),
  });
  server.on('tlsClientError', (err) => tlsErrors.push(err.message));
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });

  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const socket = stream.session?.socket as TLSSocket | undefined;
    const peer = socket?.getPeerCertificate?.();
    const call: SeenCall = {
      method: String(headers[':path']).replace(/^\//, ''),
      authorization: headers.authorization as string | undefined,
      namespace: headers['temporal-namespace'] as string | undefined,
      clientCertCN: peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : undefined,
      rejected: false,
    };
    calls.push(call);
    if (options.apiKey && call.authorization !== `Bearer ${options.apiKey}`) {
      call.rejected = true;
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': GRPC_UNAUTHENTICATED, 'grpc-message': 'missing or wrong API key' },
        { endStream: true },
      );
      return;
    }

    const forwarded = Object.fromEntries(Object.entries(headers).filter(([name]) => name !== ':scheme' && name !== ':authority'));
    const request = upstream.request(forwarded);
    request.on('error', () => {
      if (!stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
    });
    stream.on('close', () => {
      if (!request.closed) request.close(NGHTTP2_CANCEL);
    });
    stream.pipe(request);

    let trailers: http2.IncomingHttpHeaders = {};
    request.on('response', (responseHeaders, flags) => {
      if (stream.closed) return;
      // A gRPC error often comes as headers that end the stream ("trailers-only").
      const endsHere = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      stream.respond(responseHeaders, endsHere ? { endStream: true } : { waitForTrailers: true });
      if (endsHere) return;
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      request.on('trailers', (received) => (trailers = received));
      request.pipe(stream);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    calls,
    tlsErrors,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.destroy();
      await closed;
      upstream.close();
    },
  };
}
