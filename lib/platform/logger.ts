import { pino, type Logger } from 'pino';
import { currentRequestId } from './request-context.js';
import { currentTraceIds } from './tracing.js';

/** JSON logs; anything that looks like a key or secret is redacted wherever it appears. A line
 *  written for a request (lib/platform/request-context.ts) carries its requestId. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    mixin() {
      const requestId = currentRequestId();
      const traceIds = currentTraceIds();
      return { ...(requestId === undefined ? {} : { requestId }), ...traceIds };
    },
    redact: {
      paths: [
        'privateKey', '*.privateKey', '*.*.privateKey', 'alipayPublicKey', '*.alipayPublicKey', 'sign', '*.sign', 'password', '*.password',
        'apiKey', '*.apiKey', '*.*.apiKey', 'clientCertPair.key', '*.clientCertPair.key', '*.*.clientCertPair.key', '*.*.*.clientCertPair.key',
        // The buyer's payment code is a bearer credential (and masterKey seals it).
        'authCode', '*.authCode', '*.*.authCode', 'auth_code', '*.auth_code', '*.*.auth_code', 'masterKey', '*.masterKey',
        // What the API holds instead of the master key (lib/platform/master-key.ts).
        'apiKeys', '*.apiKeys', 'merchantSecrets', '*.merchantSecrets',
      ],
      censor: '[redacted]',
    },
  });
}

/** A value someone else chose, cut to `max` characters for a log line: its length is still told. */
export function cutShort(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} characters)`;
}
