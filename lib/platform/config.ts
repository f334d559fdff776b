// Configuration from the environment, validated once at start. A bad value stops the process with
// a message that names the variable and says what is wrong with it.
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import type { DatabaseTimeouts } from './database.js';
import { API_KEYS_RULE, deriveApiKeys, formatApiKeys, MASTER_KEY_RULE, parseApiKeys, parseMasterKey, type ApiKeys } from './master-key.js';
import { DEFAULT_BARCODE_TIMINGS, DEFAULT_TIMINGS, type LatePaymentPolicy, type PaymentTimings } from '../payments/payment.js';
import type { ReconciliationSettings } from '../payments/reconciliation.js';
import type { WebhookPrivateTargets } from '../merchants/webhook-targets.js';
import { DEFAULT_WEBHOOK_SETTINGS, type WebhookSettings } from '../merchants/webhooks.js';
import { DEFAULT_LATE_REFUND_RETRY, type LateRefundRetryPolicy } from '../payments/activity-contracts.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Key mode: Alipay's public key (not the app's), SPKI PEM, checks its signatures. */
export interface AlipayKeyMode {
  mode: 'key';
  alipayPublicKey: string;
}

/** Certificate mode (公钥证书): what checking Alipay's signatures takes (PEM). */
export interface AlipayCertVerification {
  mode: 'cert';
  /** Alipay's public key certificate (alipayCertPublicKey_RSA2.crt), possibly followed by its issuers. */
  alipayPublicCert: string;
  /** Alipay's root certificate chain (alipayRootCert.crt). */
  alipayRootCert: string;
}

/** Certificate mode for an app that calls Alipay: its requests also name its own certificate. */
export interface AlipayCertMode extends AlipayCertVerification {
  /** The app's public key certificate (appCertPublicKey_<app id>.crt). */
  appCert: string;
}

/** How an Alipay app and Alipay recognise each other's signatures, besides the app's private key. */
export type AlipayCredentials = AlipayKeyMode | AlipayCertMode;

/** What checking Alipay's signatures takes: the API, which never calls Alipay, holds no more. */
export type AlipayVerification = AlipayKeyMode | AlipayCertVerification;

export interface AlipayConfig {
  gatewayUrl: string;
  appId: string;
  /** The app's private key, normalised to PKCS8 PEM whatever form it was given in. */
  privateKey: string;
  credentials: AlipayCredentials;
  sellerId?: string;
  notifyUrl: string;
}

/** How to reach Temporal. lib/platform/temporal-connection.ts turns it into the SDK's connection options. */
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

export interface Config {
  alipay: AlipayConfig;
  temporal: TemporalConfig;
  databaseUrl: string;
  databaseTimeouts: DatabaseTimeouts;
  port: number;
  /** The address the API listens on. */
  host: string;
  timings: PaymentTimings;
  answerTimeoutMs: number;
  /** How long the worker retries an Alipay answer it cannot place before the order decides. */
  unplaceableRetryMs: number;
  /** Money Alipay holds for an order we had already closed: refunded, or sent to review. */
  latePaymentPolicy: LatePaymentPolicy;
  /** How a late payment's refund is sent again after a refusal that can pass (the worker's). */
  lateRefundRetry: LateRefundRetryPolicy;
  rateLimits: RateLimits;
  cashierStreams: CashierStreamLimits;
  /** Express's 'trust proxy': which hops may say who the client is (X-Forwarded-For). */
  trustProxy: TrustProxy;
  /** Merchant webhooks: the answer timeout and the waits between attempts. */
  webhooks: WebhookSettings;
  /** WEBHOOK_PRIVATE_TARGETS: whether webhooks may go to loopback, link-local and private addresses. */
  webhookPrivateTargets: WebhookPrivateTargets;
  /** WEBHOOK_CONCURRENCY: webhook POSTs the worker makes at once, on their own task queue. */
  webhookConcurrency: number;
  /** The daily reconciliation with Alipay's trade bill. */
  reconciliation: ReconciliationConfig;
  /** The bearer token of the /ops endpoints; unset: they refuse every request. */
  opsToken?: string;
  /** DURAPAY_MASTER_KEY: the root key (lib/platform/master-key.ts), the worker's only: it opens the Alipay apps'
   *  private keys, the merchants' secrets and the payment codes the API sealed. */
  masterKey: Buffer;
  barcode: BarcodeSettings;
  /** A workflow bundle built beforehand (`npm run build:workflows`); unset: the worker bundles at start. */
  workflowBundlePath?: string;
  logLevel: string;
  /** How many workflows the worker keeps in memory between their tasks. */
  workerMaxCachedWorkflows: number;
  /** How many activities of the payment task queue the worker runs at once. */
  workerActivityConcurrency: number;
  /** Where buyers reach the API, the base of cashierUrl; unset: the API's own listen address. */
  publicBaseUrl?: string;
  /** The Alipay simulator (development): cashier pages link to its pay page. */
  simulatorUrl?: string;
  /** Where the worker serves /metrics (port 0: any free one); absent: it serves none. */
  workerMetrics?: ListenAddress;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Barcode payments: how long a create waits for the outcome, and how the buyer's confirmation is awaited. */
export interface BarcodeSettings {
  answerWithinMs: number;
  queryEveryMs: number;
  confirmWindowMs: number;
}

export interface ReconciliationConfig {
  /** When the daily Schedule runs, Beijing time (after Alipay publishes the day's bill, about 09:00). */
  timeOfDay: { hour: number; minute: number };
  /** How long to wait before asking again while Alipay says the bill does not exist yet. */
  billNotReadyWaitMs: number;
  /** How many times to ask in all before the day ends BILL_NOT_READY. */
  billNotReadyTries: number;
}

/** Requests allowed per minute, counted by every API process together (see README). */
export interface RateLimits {
  merchantPerMinute: number;
  ipPerMinute: number;
  /** Failed authentications on /v1 per client address; past it, the address gets 429. */
  authFailuresPerMinute: number;
}

/** Open cashier event streams allowed at once in one API process. */
export interface CashierStreamLimits {
  perToken: number;
  perAddress: number;
}

/** Off, the number of proxies in front of the API, or their addresses and subnets. Never "all". */
export type TrustProxy = false | number | string[];

/** The API verifies notifies but never calls Alipay, so it never holds the app's private key. */
export type ApiConfig = Omit<Config, 'alipay' | 'masterKey'> & {
  alipay: Omit<AlipayConfig, 'privateKey' | 'gatewayUrl' | 'credentials'> & { credentials: AlipayVerification };
  /** DURAPAY_API_KEYS, or derived from DURAPAY_MASTER_KEY: what the API holds instead of the master key. */
  apiKeys: ApiKeys;
};

type Env = Record<string, string | undefined>;

const durationPattern = /^(\d+)(ms|s|m|h)$/;
const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
}

/** The largest whole unit: 90000 → 90s, 120000 → 2m. */
function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like 500ms, 15s, 2m or 1h` });
    return z.NEVER;
  }
  return ms;
});

const requestsPerMinute = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a whole number of requests from 1 to 1000000' })
    .int('must be a whole number of requests from 1 to 1000000')
    .min(1, 'must be a whole number of requests from 1 to 1000000')
    .max(1_000_000, 'must be a whole number of requests from 1 to 1000000')
    .default(fallback);

const openStreams = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a whole number of streams from 1 to 10000' })
    .int('must be a whole number of streams from 1 to 10000')
    .min(1, 'must be a whole number of streams from 1 to 10000')
    .max(10_000, 'must be a whole number of streams from 1 to 10000')
    .default(fallback);

// Express's names for the private ranges proxies usually sit in.
const TRUST_PROXY_PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isTrustProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_PRESETS.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const trustProxy = z.string().transform((text, ctx): TrustProxy => {
  const value = text.trim().toLowerCase();
  if (value === 'off' || value === 'false') return false;
  if (value === 'on' || value === 'true') {
    // Every hop trusted means the client's own X-Forwarded-For decides its address.
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" would trust any client to name its own address in X-Forwarded-For and so escape the per-IP limit; give the number of proxies in front of the API (e.g. 1) or their addresses`,
    });
    return z.NEVER;
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops < 1 || hops > 100) {
      ctx.addIssue({ code: 'custom', message: `"${text}": a number of proxies must be from 1 to 100 (or off)` });
      return z.NEVER;
    }
    return hops;
  }
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.filter((entry) => !isTrustProxyEntry(entry));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `"${bad.join('", "')}" is not an IP address, a subnet like 10.0.0.0/8, loopback, linklocal or uniquelocal`,
    });
    return z.NEVER;
  }
  return entries;
});

/** Alipay's app ids are digits (16 today); the notify receiver refuses any other app_id unread. */
export const ALIPAY_APP_ID_PATTERN = /^\d{6,32}$/;
export const ALIPAY_APP_ID_RULE = 'an Alipay app id is digits only, e.g. 2021000000000000';

/** An http(s) URL that others are appended to: no query or fragment, no trailing slash. */
const baseUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL, e.g. https://pay.example.com' })
  .refine((text) => !/[?#]/.test(text), 'must not have a query or fragment')
  .transform((text) => text.replace(/\/+$/, ''));

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Only a loopback host keeps plain http traffic on this machine. URL has already normalised it. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(host);
  if (family === 0) return host === 'localhost';
  return loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

// Answers are only as trustworthy as the channel: a plain http gateway lets anyone on the path
// replay signed answers. Loopback http stays allowed for the simulator and tests.
// zod runs refinements after a failed url check too: one that does not parse is left to that check.
const gatewayUrlRule = z
  .url({ protocol: /^https?$/ })
  .refine((url) => {
    if (!URL.canParse(url)) return true;
    const { protocol, hostname } = new URL(url);
    return protocol === 'https:' || isLoopbackHost(hostname);
  }, 'must be an https:// URL (plain http only on loopback: 127.0.0.0/8, ::1, localhost)');

const notifyUrlRule = z
  .url({ protocol: /^https?$/ })
  .refine((url) => !URL.canParse(url) || new URL(url).pathname.endsWith('/alipay/notify'), 'must end with /alipay/notify');

/** What is wrong with an app's gateway or notify URL by the rules of ALIPAY_GATEWAY_URL and
 *  ALIPAY_NOTIFY_URL (for `npm run merchant -- app set`); undefined when nothing is. */
export function alipayUrlProblem(which: 'gateway' | 'notify', url: string): string | undefined {
  const result = (which === 'gateway' ? gatewayUrlRule : notifyUrlRule).safeParse(url);
  return result.success ? undefined : result.error.issues.map((issue) => issue.message).join('; ');
}

/** A port on every interface (9464), a host and port (127.0.0.1:9464, [::1]:9464), or off. */
const listenAddress = z.string().transform((text, ctx): ListenAddress | false => {
  const value = text.trim();
  if (value.toLowerCase() === 'off') return false;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]:|([A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2] ?? '0.0.0.0';
  if (!match || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a port (9464), a host and port (127.0.0.1:9464), 0 for any free port, or off` });
    return z.NEVER;
  }
  return { host, port };
});

const schema = z.object({
  // Which of these a process needs depends on its role: parseEnv checks presence.
  ALIPAY_GATEWAY_URL: gatewayUrlRule.optional(),
  // A preset for the gateway: production, or Alipay's sandbox (its new sandbox, 2022 onwards).
  ALIPAY_ENV: z.enum(['production', 'sandbox'], { error: 'must be production or sandbox (or set ALIPAY_GATEWAY_URL)' }).optional(),
  ALIPAY_APP_ID: z.string().regex(ALIPAY_APP_ID_PATTERN, ALIPAY_APP_ID_RULE).optional(),
  ALIPAY_SELLER_ID: z.string().regex(/^2088\d{12}$/, 'a seller id is 16 digits starting with 2088').optional(),
  ALIPAY_NOTIFY_URL: notifyUrlRule.optional(),
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('payments'),
  // Unset: TLS exactly when a certificate, CA, server name or API key is given.
  TEMPORAL_TLS: z
    .string()
    .transform((text, ctx) => {
      const value = { on: true, true: true, off: false, false: false }[text.trim().toLowerCase()];
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is neither on nor off` });
        return z.NEVER;
      }
      return value;
    })
    .optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be a host name, e.g. temporal.internal').optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL').optional(),
  // Every PostgreSQL call is bounded: an unreachable or stuck database gives the API a prompt 503
  // and an activity a failed attempt that Temporal retries, never a hang.
  DATABASE_CONNECT_TIMEOUT: duration.default(3_000),
  DATABASE_STATEMENT_TIMEOUT: duration.default(5_000),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // Every interface, as a container needs; `npm start` keeps its API on loopback.
  HOST: z.string().min(1).default('0.0.0.0'),
  // A precreated QR code lives at most 2 hours at Alipay.
  PAYMENT_TIMEOUT: duration
    .refine((ms) => ms <= 2 * 3_600_000, 'must be at most 2h, the life of an Alipay QR code')
    .default(DEFAULT_TIMINGS.orderTimeoutMs),
  PAYMENT_POLL_LADDER: z
    .string()
    .default(DEFAULT_TIMINGS.pollLadderMs.map((ms) => `${ms / 1000}s`).join(','))
    .transform((text, ctx) => {
      const steps = text.split(',').map(parseDuration);
      if (steps.length === 0 || steps.some((ms) => ms === undefined || ms <= 0)) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a comma-separated list of durations like 15s,30s,1m` });
        return z.NEVER;
      }
      // Faster polling only hammers Alipay and grows history; notifies carry the news sooner anyway.
      if (steps.some((ms) => ms! < 1000)) {
        ctx.addIssue({ code: 'custom', message: `"${text}": every step must be at least 1s` });
        return z.NEVER;
      }
      return steps as number[];
    }),
  // A waiting order continues as a new run past this many history events (Temporal warns at 10k).
  PAYMENT_HISTORY_LIMIT: z.coerce
    .number()
    .int('must be a whole number of events')
    .min(50, 'must be at least 50 events')
    .max(10_000, 'must be at most 10000 events (Temporal warns beyond)')
    .default(DEFAULT_TIMINGS.historyLimit),
  // Workflows the worker keeps in memory between their tasks; the rest are replayed from history
  // when their next task comes (a waiting order's is short). Bounds the worker's memory.
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int('must be a whole number of workflows')
    .min(50, 'must be at least 50 workflows')
    .max(100_000, 'must be at most 100000 workflows')
    .default(500),
  // Activities of the payment task queue (Alipay calls, ledger writes) the worker runs at once:
  // the SDK's default. Past it, activities wait in Temporal for a free slot.
  WORKER_ACTIVITY_CONCURRENCY: z.coerce
    .number({ error: 'must be a whole number of activities from 1 to 10000' })
    .int('must be a whole number of activities from 1 to 10000')
    .min(1, 'must be a whole number of activities from 1 to 10000')
    .max(10_000, 'must be a whole number of activities from 1 to 10000')
    .default(100),
  // An Alipay answer that cannot be placed (unknown code, unsigned body) is retried this long.
  ALIPAY_UNPLACEABLE_ANSWER_RETRY: duration.default(10 * 60_000),
  // How long a create or cancel waits for the workflow before answering 503 (retry is safe).
  API_ANSWER_TIMEOUT: duration.default(10_000),
  // A barcode create answers within this: PAID, FAILED, CLOSED, or AWAITING_PAYMENT while the buyer confirms.
  BARCODE_ANSWER_TIMEOUT: duration
    .refine((ms) => ms <= 60_000, 'must be at most 60s: a cashier is waiting')
    .default(DEFAULT_BARCODE_TIMINGS.answerWithinMs),
  // While the buyer confirms on the phone, Alipay is queried this often (its guide: every few seconds)…
  BARCODE_QUERY_INTERVAL: duration
    .refine((ms) => ms >= 1000, 'must be at least 1s')
    .default(DEFAULT_BARCODE_TIMINGS.queryEveryMs),
  // …for this long; then the payment is cancelled at Alipay.
  BARCODE_CONFIRM_WINDOW: duration
    .refine((ms) => ms <= 10 * 60_000, 'must be at most 10m')
    .default(DEFAULT_BARCODE_TIMINGS.confirmWindowMs),
  // A webhook counts as delivered only by a 2xx within this.
  WEBHOOK_TIMEOUT: duration
    .refine((ms) => ms <= 60_000, 'must be at most 60s')
    .default(DEFAULT_WEBHOOK_SETTINGS.timeoutMs),
  // The waits between webhook attempts; after the last one comes one more attempt, then failed.
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default(DEFAULT_WEBHOOK_SETTINGS.retryScheduleMs.map(formatDuration).join(','))
    .transform((text, ctx) => {
      const steps = text.split(',').map(parseDuration);
      if (steps.some((ms) => ms === undefined || ms <= 0)) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a comma-separated list of durations like 10s,1m,5m,30m,2h,6h,16h` });
        return z.NEVER;
      }
      // Each attempt adds to the delivery workflow's history; past this, fewer longer waits do better.
      if (steps.length > 50) {
        ctx.addIssue({ code: 'custom', message: `"${text}": at most 50 steps` });
        return z.NEVER;
      }
      return steps as number[];
    }),
  // A merchant names the notifyUrl: under deny the worker never posts into its own network.
  WEBHOOK_PRIVATE_TARGETS: z.enum(['deny', 'allow'], { error: 'must be deny or allow' }).default('deny'),
  // Webhook POSTs a worker makes at once, in slots of their own (task queue <TEMPORAL_TASK_QUEUE>-webhooks):
  // receivers that never answer hold these for WEBHOOK_TIMEOUT each, never the payments' slots.
  WEBHOOK_CONCURRENCY: z.coerce
    .number({ error: 'must be a whole number of requests from 1 to 1000' })
    .int('must be a whole number of requests from 1 to 1000')
    .min(1, 'must be a whole number of requests from 1 to 1000')
    .max(1000, 'must be a whole number of requests from 1 to 1000')
    .default(50),
  LATE_PAYMENT_POLICY: z.enum(['refund', 'review'], { error: 'must be refund or review' }).default('refund'),
  // A late payment's refund refused for a reason that can pass (a seller balance too low) is sent
  // again, first after this, doubling up to hourly…
  LATE_REFUND_RETRY_FIRST: duration.refine((ms) => ms >= 100, 'must be at least 100ms').default(DEFAULT_LATE_REFUND_RETRY.firstMs),
  // …for this long; then the order goes to REVIEW with the money Alipay holds.
  LATE_REFUND_RETRY_WINDOW: duration
    .refine((ms) => ms <= 30 * 86_400_000, 'must be at most 30d')
    .default(DEFAULT_LATE_REFUND_RETRY.windowMs),
  // Alipay publishes a day's bill the next morning, about 09:00 Beijing time.
  RECONCILIATION_TIME: z
    .string()
    .default('10:00')
    .transform((text, ctx) => {
      const match = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(text.trim());
      if (!match) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a time of day like 10:00 (24-hour, Beijing time)` });
        return z.NEVER;
      }
      return { hour: Number(match[1]), minute: Number(match[2]) };
    }),
  RECONCILIATION_BILL_WAIT: duration.default(30 * 60_000),
  RECONCILIATION_BILL_TRIES: z.coerce
    .number({ error: 'must be a whole number of tries from 1 to 100' })
    .int('must be a whole number of tries from 1 to 100')
    .min(1, 'must be a whole number of tries from 1 to 100')
    .max(100, 'must be a whole number of tries from 1 to 100')
    .default(8),
  // Far above what a till or Alipay's notify retries send; they stop floods, not integrations.
  RATE_LIMIT_MERCHANT_PER_MINUTE: requestsPerMinute(6000),
  RATE_LIMIT_IP_PER_MINUTE: requestsPerMinute(1200),
  AUTH_FAILURES_PER_MINUTE: requestsPerMinute(60),
  CASHIER_STREAMS_PER_TOKEN: openStreams(5),
  CASHIER_STREAMS_PER_ADDRESS: openStreams(20),
  // Off: the client is the TCP peer, so nobody can choose their address with a header.
  TRUST_PROXY: trustProxy.default(false),
  // Bundling the workflows at start costs the worker about 120 MB of memory it keeps; a bundle
  // built beforehand (npm run build:workflows) spares it.
  WORKFLOW_BUNDLE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Prometheus' default port for an exporter of this kind; the worker has no other HTTP port.
  WORKER_METRICS_PORT: listenAddress.default({ host: '0.0.0.0', port: 9464 }),
  // The base of the cashier links handed to buyers (cashierUrl): scheme, host and any path prefix.
  PUBLIC_BASE_URL: baseUrl.optional(),
  SIMULATOR_URL: baseUrl.optional(),
});

/** The secrets: each is read from NAME, or from the file NAME_FILE names. */
const SECRET_VARIABLES = [
  'ALIPAY_PRIVATE_KEY',
  'ALIPAY_PUBLIC_KEY',
  'ALIPAY_APP_CERT',
  'ALIPAY_PUBLIC_CERT',
  'ALIPAY_ROOT_CERT',
  'OPS_TOKEN',
  'DURAPAY_MASTER_KEY',
  'DURAPAY_API_KEYS',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_CA',
  'TEMPORAL_API_KEY',
] as const;
type SecretVariable = (typeof SECRET_VARIABLES)[number];

/** Every environment variable the API and the worker read, for checks of deployment files. */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(schema.shape),
  ...SECRET_VARIABLES.flatMap((name) => [name, `${name}_FILE`]),
];

/** Reads NAME, or the file named by NAME_FILE (the usual way to hand secrets to containers). */
function readSecret(env: Env, name: SecretVariable): string | undefined {
  const fileName = env[`${name}_FILE`];
  if (fileName) {
    try {
      return readFileSync(fileName, 'utf8');
    } catch (err) {
      throw new ConfigError(`${name}_FILE: cannot read ${fileName}: ${(err as Error).message}`);
    }
  }
  return env[name];
}

function base64Body(text: string): Buffer {
  const body = text.replace(/-----[A-Z ]+-----/g, '').replace(/\\n|\s+/g, '');
  return Buffer.from(body, 'base64');
}

function tryKey<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

/** Accepts PKCS1 or PKCS8, PEM or bare base64, and names the classic mix-ups. */
export function parsePrivateKey(name: string, text: string): string {
  const trimmed = text.trim().replace(/\\n/g, '\n');
  if (/PUBLIC KEY/.test(trimmed)) {
    throw new ConfigError(`${name}: this is a public key; it must be the app's RSA private key`);
  }
  const der = base64Body(trimmed);
  const key: KeyObject | undefined = trimmed.includes('-----BEGIN')
    ? tryKey(() => createPrivateKey(trimmed))
    : tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })) ??
      tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' }));
  if (!key) {
    // OpenSSL reads a PKCS8 body under a PKCS1 header, but not the other way round.
    const header = /-----BEGIN ([A-Z ]+)-----/.exec(trimmed)?.[1];
    const isPkcs1 = tryKey(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' })) !== undefined;
    if (header === 'PRIVATE KEY' && isPkcs1) {
      throw new ConfigError(`${name}: the PEM header says PKCS8 (PRIVATE KEY) but the key is PKCS1; use "-----BEGIN RSA PRIVATE KEY-----" or give the bare base64`);
    }
    throw new ConfigError(`${name}: not an RSA private key (expected PKCS1 or PKCS8, as PEM or bare base64)`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`${name}: an ${key.asymmetricKeyType} key; Alipay RSA2 needs an RSA key`);
  }
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Accepts an SPKI (or PKCS1) RSA public key, PEM or the bare base64 Alipay's console shows. */
export function parsePublicKey(name: string, text: string): string {
  const trimmed = text.trim().replace(/\\n/g, '\n');
  if (/PRIVATE KEY/.test(trimmed)) {
    throw new ConfigError(`${name}: this is a private key; it must be Alipay's public key`);
  }
  const der = base64Body(trimmed);
  const key = trimmed.includes('-----BEGIN')
    ? tryKey(() => createPublicKey(trimmed))
    : tryKey(() => createPublicKey({ key: der, format: 'der', type: 'spki' })) ??
      tryKey(() => createPublicKey({ key: der, format: 'der', type: 'pkcs1' }));
  if (!key || key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`${name}: not an RSA public key (expected SPKI or PKCS1, as PEM or bare base64)`);
  }
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';

/** PEM put in an environment variable often comes with literal \n for its line breaks. */
function pemText(text: string): string {
  return text.trim().replace(/\\n/g, '\n');
}

/** Every block must be a CERTIFICATE that parses; gives them back as plain PEM, without stray text. */
function parseCertificates(name: string, text: string): { certificates: X509Certificate[]; pem: string } {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) {
    throw new ConfigError(`${name}: not a PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  const certificates = blocks.map(([block, label], index) => {
    if (label !== 'CERTIFICATE') {
      throw new ConfigError(`${name}: block ${index + 1} is a ${label}; expected only CERTIFICATE blocks`);
    }
    const certificate = tryKey(() => new X509Certificate(block));
    if (!certificate) throw new ConfigError(`${name}: certificate ${index + 1} does not parse`);
    return certificate;
  });
  return { certificates, pem: `${blocks.map(([block]) => block).join('\n')}\n` };
}

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

/** TLS and API-key settings for Temporal. Error messages name variables and files, never contents. */
function parseTemporalSecurity(env: Env, parsed: z.output<typeof schema>): Pick<TemporalConfig, 'tls' | 'apiKey'> {
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

const CERTIFICATE_VARIABLES = ['ALIPAY_APP_CERT', 'ALIPAY_PUBLIC_CERT', 'ALIPAY_ROOT_CERT'] as const;

function isGiven(env: Env, name: SecretVariable): boolean {
  return Boolean(env[name]?.trim() || env[`${name}_FILE`]?.trim());
}

/** Key mode (ALIPAY_PUBLIC_KEY) or certificate mode (the certificate variables), never a mix. */
function alipayMode(env: Env): 'key' | 'cert' {
  const certificates = CERTIFICATE_VARIABLES.filter((name) => isGiven(env, name));
  if (certificates.length > 0 && isGiven(env, 'ALIPAY_PUBLIC_KEY')) {
    throw new ConfigError(
      `ALIPAY_PUBLIC_KEY: given together with ${certificates.join(', ')}; use either key mode (ALIPAY_PUBLIC_KEY) or certificate mode (${CERTIFICATE_VARIABLES.join(', ')}), not both`,
    );
  }
  return certificates.length > 0 ? 'cert' : 'key';
}

function expiry(name: string, certificate: X509Certificate): void {
  if (new Date(certificate.validTo) < new Date()) throw new ConfigError(`${name}: expired on ${certificate.validTo}`);
}

function holdsRsaKey(name: string, certificate: X509Certificate): void {
  const type = certificate.publicKey.asymmetricKeyType;
  if (type !== 'rsa') throw new ConfigError(`${name}: holds ${type ? `an ${type}` : 'a non-RSA'} key; Alipay RSA2 needs an RSA key`);
}

/**
 * A root: a CA that issued itself, whose own key verifies its signature. Node reads SM2 keys but
 * checks no SM2 signature of Alipay's chain (asymmetricKeyType is undefined for them): there the
 * names alone decide.
 */
function isSelfSignedCa(certificate: X509Certificate): boolean {
  if (!certificate.ca || !certificate.checkIssued(certificate)) return false;
  if (certificate.publicKey.asymmetricKeyType === undefined) return true;
  return tryKey(() => certificate.verify(certificate.publicKey)) ?? false;
}

/**
 * alipayRootCert.crt: Alipay's root certificates, each self-signed. alipay-sdk makes
 * alipay_root_cert_sn from the RSA ones alone (Alipay's chain also holds an SM2 root).
 */
function parseRootChain(text: string): { certificates: X509Certificate[]; pem: string } {
  const chain = parseCertificates('ALIPAY_ROOT_CERT', pemText(text));
  chain.certificates.forEach((certificate, index) => {
    if (!isSelfSignedCa(certificate)) {
      throw new ConfigError(
        `ALIPAY_ROOT_CERT: certificate ${index + 1} (${certificate.subject.replace(/\n/g, ', ')}) is not a self-signed root CA certificate; ALIPAY_ROOT_CERT must be Alipay's root certificate chain (alipayRootCert.crt), not Alipay's public key certificate or the app's`,
      );
    }
  });
  if (!chain.certificates.some((certificate) => certificate.publicKey.asymmetricKeyType === 'rsa')) {
    throw new ConfigError('ALIPAY_ROOT_CERT: holds no RSA root certificate, and alipay_root_cert_sn is made from those');
  }
  return chain;
}

/** The issuer of `certificate` among `candidates`: named as its issuer, and its key verifies the signature. */
function issuerAmong(certificate: X509Certificate, candidates: readonly X509Certificate[]): X509Certificate | undefined {
  return candidates.find((candidate) => certificate.checkIssued(candidate) && (tryKey(() => certificate.verify(candidate.publicKey)) ?? false));
}

/** alipayCertPublicKey_RSA2.crt: Alipay's certificate first, then any CA between it and a root of ALIPAY_ROOT_CERT. */
function parseAlipayPublicCert(text: string, roots: readonly X509Certificate[]): string {
  const { certificates, pem } = parseCertificates('ALIPAY_PUBLIC_CERT', pemText(text));
  const [leaf, ...intermediates] = certificates as [X509Certificate, ...X509Certificate[]];
  if (isSelfSignedCa(leaf)) {
    throw new ConfigError("ALIPAY_PUBLIC_CERT: a self-signed root CA certificate; it must be Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)");
  }
  holdsRsaKey('ALIPAY_PUBLIC_CERT', leaf);
  expiry('ALIPAY_PUBLIC_CERT', leaf);
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth += 1) {
    if (issuerAmong(current, roots)) return pem;
    const next = issuerAmong(current, intermediates);
    if (!next) break;
    current = next;
  }
  throw new ConfigError(
    `ALIPAY_PUBLIC_CERT: not issued under ALIPAY_ROOT_CERT (no root there signed ${current.subject.replace(/\n/g, ', ')}, issued by ${current.issuer.replace(/\n/g, ', ')}); both must come from the same Alipay environment`,
  );
}

/** appCertPublicKey_<app id>.crt: Alipay's certificate of the app's own public key. */
function parseAppCert(text: string, privateKey: string): string {
  const { certificates, pem } = parseCertificates('ALIPAY_APP_CERT', pemText(text));
  const leaf = certificates[0]!;
  holdsRsaKey('ALIPAY_APP_CERT', leaf);
  if (!leaf.checkPrivateKey(createPrivateKey(privateKey))) {
    throw new ConfigError("ALIPAY_APP_CERT: does not match ALIPAY_PRIVATE_KEY (the certificate's public key is not this private key's); it must be the certificate Alipay issued for this app's key");
  }
  expiry('ALIPAY_APP_CERT', leaf);
  return pem;
}

/** What the API needs to check Alipay's signatures, in either mode. */
function parseAlipayVerification(env: Env): AlipayVerification {
  if (alipayMode(env) === 'key') {
    return { mode: 'key', alipayPublicKey: parsePublicKey('ALIPAY_PUBLIC_KEY', requireSecret(env, 'ALIPAY_PUBLIC_KEY')) };
  }
  const roots = parseRootChain(requireSecret(env, 'ALIPAY_ROOT_CERT'));
  return {
    mode: 'cert',
    alipayPublicCert: parseAlipayPublicCert(requireSecret(env, 'ALIPAY_PUBLIC_CERT'), roots.certificates),
    alipayRootCert: roots.pem,
  };
}

/** What the worker needs: the verification, and in certificate mode the app's own certificate. */
function parseAlipayCredentials(env: Env, privateKey: string): AlipayCredentials {
  const verification = parseAlipayVerification(env);
  const ownPublicKey = createPublicKey(privateKey);
  if (verification.mode === 'key') {
    if (ownPublicKey.equals(createPublicKey(verification.alipayPublicKey))) {
      throw new ConfigError("ALIPAY_PUBLIC_KEY: this is the app's own public key; it must be Alipay's public key (shown beside it in the Alipay console)");
    }
    return verification;
  }
  const appCert = parseAppCert(requireSecret(env, 'ALIPAY_APP_CERT'), privateKey);
  if (ownPublicKey.equals(new X509Certificate(verification.alipayPublicCert).publicKey)) {
    throw new ConfigError("ALIPAY_PUBLIC_CERT: holds the app's own public key; it must be Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)");
  }
  return { ...verification, appCert };
}

/** An Alipay app's key and credentials from the texts of its files (`npm run merchant -- app set`),
 *  checked as at start; the messages name the variable each file would go in. */
export function parseAlipayAppFiles(files: {
  privateKey: string;
  alipayPublicKey?: string;
  appCert?: string;
  alipayPublicCert?: string;
  alipayRootCert?: string;
}): { privateKey: string; credentials: AlipayCredentials } {
  const privateKey = parsePrivateKey('ALIPAY_PRIVATE_KEY', files.privateKey);
  const env: Env = {
    ALIPAY_PUBLIC_KEY: files.alipayPublicKey,
    ALIPAY_APP_CERT: files.appCert,
    ALIPAY_PUBLIC_CERT: files.alipayPublicCert,
    ALIPAY_ROOT_CERT: files.alipayRootCert,
  };
  return { privateKey, credentials: parseAlipayCredentials(env, privateKey) };
}

function parseEnv(env: Env, required: readonly (keyof z.input<typeof schema>)[]) {
  // Empty variables count as unset (compose files and shells often pass NAME=).
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = schema.safeParse(present);
  const problems = result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  for (const name of required) {
    if (!present[name]) problems.push(`${name}: required`);
  }
  if (!result.success || problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

function requireSecret(env: Env, name: SecretVariable): string {
  const value = readSecret(env, name);
  if (!value?.trim()) throw new ConfigError(`${name}: required (or ${name}_FILE naming a file that holds it)`);
  return value;
}

/** At least 32 characters of printable ASCII without spaces (e.g. `openssl rand -hex 32`). */
function parseOpsToken(env: Env): string | undefined {
  const text = readSecret(env, 'OPS_TOKEN');
  if (text === undefined || text.trim() === '') return undefined;
  const token = text.trim();
  if (/^bearer\s/i.test(token)) throw new ConfigError('OPS_TOKEN: give the token alone; clients send it as "Authorization: Bearer <token>"');
  if (!/^[\x21-\x7e]+$/.test(token)) throw new ConfigError('OPS_TOKEN: must be one token of printable ASCII characters, without spaces');
  if (token.length < 32) throw new ConfigError(`OPS_TOKEN: must be at least 32 characters (it has ${token.length}); e.g. openssl rand -hex 32`);
  if (token.length > 512) throw new ConfigError('OPS_TOKEN: must be at most 512 characters');
  return token;
}

/** 32 random bytes, hex or base64; the message never shows the value. */
export function parseMasterKeyVariable(env: Env): Buffer | undefined {
  const text = readSecret(env, 'DURAPAY_MASTER_KEY');
  if (text === undefined || text.trim() === '') return undefined;
  const key = parseMasterKey(text);
  if (!key) throw new ConfigError(`DURAPAY_MASTER_KEY: ${MASTER_KEY_RULE}`);
  return key;
}

/** The worker's DURAPAY_MASTER_KEY: required, it opens the merchants' webhook secrets. */
function requireMasterKey(env: Env): Buffer {
  const key = parseMasterKeyVariable(env);
  if (!key) {
    throw new ConfigError(
      "DURAPAY_MASTER_KEY: required (or DURAPAY_MASTER_KEY_FILE): the worker opens the merchants' secrets, the Alipay apps' private keys and the payment codes with it; e.g. openssl rand -hex 32",
    );
  }
  return key;
}

/** The API's keys: DURAPAY_API_KEYS, or derived from DURAPAY_MASTER_KEY (accepted for compatibility);
 *  both given must agree. The messages never show a key. */
export function parseApiKeysVariable(env: Env): ApiKeys | undefined {
  const text = readSecret(env, 'DURAPAY_API_KEYS');
  const given = text === undefined || text.trim() === '' ? undefined : parseApiKeys(text);
  if (text?.trim() && !given) throw new ConfigError(`DURAPAY_API_KEYS: ${API_KEYS_RULE}`);
  const masterKey = parseMasterKeyVariable(env);
  const derived = masterKey && deriveApiKeys(masterKey);
  if (given && derived && formatApiKeys(given) !== formatApiKeys(derived)) {
    throw new ConfigError('DURAPAY_API_KEYS: not the keys DURAPAY_MASTER_KEY derives; give the API DURAPAY_API_KEYS alone');
  }
  return given ?? derived;
}

function requireApiKeys(env: Env): ApiKeys {
  const keys = parseApiKeysVariable(env);
  if (!keys) {
    throw new ConfigError(
      "DURAPAY_API_KEYS: required (or DURAPAY_API_KEYS_FILE; or DURAPAY_MASTER_KEY, which the API need not hold): the API checks merchants' signatures and seals payment codes with them; `npm run merchant -- master-key derive-api` prints them",
    );
  }
  return keys;
}

function common(env: Env, parsed: z.output<typeof schema>) {
  const opsToken = parseOpsToken(env);
  return {
    temporal: {
      address: parsed.TEMPORAL_ADDRESS,
      namespace: parsed.TEMPORAL_NAMESPACE,
      taskQueue: parsed.TEMPORAL_TASK_QUEUE,
      ...parseTemporalSecurity(env, parsed),
    },
    databaseUrl: parsed.DATABASE_URL!,
    databaseTimeouts: { connectTimeoutMs: parsed.DATABASE_CONNECT_TIMEOUT, statementTimeoutMs: parsed.DATABASE_STATEMENT_TIMEOUT },
    port: parsed.PORT,
    host: parsed.HOST,
    timings: {
      orderTimeoutMs: parsed.PAYMENT_TIMEOUT,
      pollLadderMs: parsed.PAYMENT_POLL_LADDER,
      historyLimit: parsed.PAYMENT_HISTORY_LIMIT,
    },
    answerTimeoutMs: parsed.API_ANSWER_TIMEOUT,
    workerMaxCachedWorkflows: parsed.WORKER_MAX_CACHED_WORKFLOWS,
    workerActivityConcurrency: parsed.WORKER_ACTIVITY_CONCURRENCY,
    unplaceableRetryMs: parsed.ALIPAY_UNPLACEABLE_ANSWER_RETRY,
    latePaymentPolicy: parsed.LATE_PAYMENT_POLICY,
    lateRefundRetry: { firstMs: parsed.LATE_REFUND_RETRY_FIRST, maxMs: DEFAULT_LATE_REFUND_RETRY.maxMs, windowMs: parsed.LATE_REFUND_RETRY_WINDOW },
    rateLimits: {
      merchantPerMinute: parsed.RATE_LIMIT_MERCHANT_PER_MINUTE,
      ipPerMinute: parsed.RATE_LIMIT_IP_PER_MINUTE,
      authFailuresPerMinute: parsed.AUTH_FAILURES_PER_MINUTE,
    },
    cashierStreams: { perToken: parsed.CASHIER_STREAMS_PER_TOKEN, perAddress: parsed.CASHIER_STREAMS_PER_ADDRESS },
    trustProxy: parsed.TRUST_PROXY,
    webhooks: { timeoutMs: parsed.WEBHOOK_TIMEOUT, retryScheduleMs: parsed.WEBHOOK_RETRY_SCHEDULE },
    webhookPrivateTargets: parsed.WEBHOOK_PRIVATE_TARGETS,
    webhookConcurrency: parsed.WEBHOOK_CONCURRENCY,
    reconciliation: {
      timeOfDay: parsed.RECONCILIATION_TIME,
      billNotReadyWaitMs: parsed.RECONCILIATION_BILL_WAIT,
      billNotReadyTries: parsed.RECONCILIATION_BILL_TRIES,
    },
    ...(opsToken ? { opsToken } : {}),
    barcode: {
      answerWithinMs: parsed.BARCODE_ANSWER_TIMEOUT,
      queryEveryMs: parsed.BARCODE_QUERY_INTERVAL,
      confirmWindowMs: parsed.BARCODE_CONFIRM_WINDOW,
    },
    ...(parsed.WORKFLOW_BUNDLE ? { workflowBundlePath: parsed.WORKFLOW_BUNDLE } : {}),
    ...(parsed.PUBLIC_BASE_URL ? { publicBaseUrl: parsed.PUBLIC_BASE_URL } : {}),
    ...(parsed.SIMULATOR_URL ? { simulatorUrl: parsed.SIMULATOR_URL } : {}),
    ...(parsed.WORKER_METRICS_PORT ? { workerMetrics: parsed.WORKER_METRICS_PORT } : {}),
    logLevel: parsed.LOG_LEVEL,
  };
}

/** What every reconciliation run is given, whether the Schedule or an operator starts it. */
export function reconciliationSettings(config: Pick<Config, 'reconciliation' | 'latePaymentPolicy'> & { alipay: { appId: string } }): ReconciliationSettings {
  return {
    appId: config.alipay.appId,
    billNotReadyWaitMs: config.reconciliation.billNotReadyWaitMs,
    billNotReadyTries: config.reconciliation.billNotReadyTries,
    latePaymentPolicy: config.latePaymentPolicy,
  };
}

/** The worker's configuration: it calls Alipay, so it needs the app's private key. */
/** The gateways ALIPAY_ENV names. */
export const ALIPAY_GATEWAYS = {
  production: 'https://openapi.alipay.com/gateway.do',
  sandbox: 'https://openapi-sandbox.dl.alipaydev.com/gateway.do',
} as const;

/** ALIPAY_GATEWAY_URL, or the gateway ALIPAY_ENV names; both given must agree. */
function gatewayUrl(parsed: z.output<typeof schema>): string {
  const preset = parsed.ALIPAY_ENV && ALIPAY_GATEWAYS[parsed.ALIPAY_ENV];
  const given = parsed.ALIPAY_GATEWAY_URL;
  if (given && preset && given !== preset) {
    throw new ConfigError(`ALIPAY_GATEWAY_URL: ${given} is not the ${parsed.ALIPAY_ENV} gateway ALIPAY_ENV names (${preset}); set one of the two`);
  }
  const url = given ?? preset;
  if (!url) throw new ConfigError('invalid configuration:\n  ALIPAY_GATEWAY_URL: required (or ALIPAY_ENV=production or sandbox)');
  return url;
}

/** Alipay's sandbox gateways: the new one ALIPAY_ENV=sandbox names, and the old one. */
const SANDBOX_GATEWAY_HOSTS = new Set([new URL(ALIPAY_GATEWAYS.sandbox).hostname, 'openapi.alipaydev.com']);

/**
 * Without a seller id, no notify's seller_id is checked against ours, so it is required unless the
 * gateway is the simulator (on loopback) or Alipay's sandbox. The API, which calls no gateway, is
 * held to it unless its ALIPAY_GATEWAY_URL or ALIPAY_ENV says simulator or sandbox: its orders
 * carry the seller id the worker checks.
 */
function requireSellerId(parsed: z.output<typeof schema>, gateway: string | undefined): void {
  if (parsed.ALIPAY_SELLER_ID) return;
  const host = gateway ? new URL(gateway).hostname : undefined;
  const testGateway = parsed.ALIPAY_ENV === 'sandbox' || (host !== undefined && (isLoopbackHost(host) || SANDBOX_GATEWAY_HOSTS.has(host)));
  if (testGateway) return;
  throw new ConfigError(
    `invalid configuration:\n  ALIPAY_SELLER_ID: required with ${gateway ? `the gateway ${gateway}` : 'no ALIPAY_GATEWAY_URL or ALIPAY_ENV to say it is the sandbox'} (the 2088… seller id of the Alipay account; only the simulator and the sandbox go without)`,
  );
}

export function loadConfig(env: Env = process.env): Config {
  const parsed = parseEnv(env, ['ALIPAY_APP_ID', 'ALIPAY_NOTIFY_URL', 'DATABASE_URL']);
  const privateKey = parsePrivateKey('ALIPAY_PRIVATE_KEY', requireSecret(env, 'ALIPAY_PRIVATE_KEY'));
  const gateway = gatewayUrl(parsed);
  requireSellerId(parsed, gateway);
  return {
    ...common(env, parsed),
    alipay: {
      gatewayUrl: gateway,
      appId: parsed.ALIPAY_APP_ID!,
      privateKey,
      credentials: parseAlipayCredentials(env, privateKey),
      sellerId: parsed.ALIPAY_SELLER_ID,
      notifyUrl: parsed.ALIPAY_NOTIFY_URL!,
    },
    masterKey: requireMasterKey(env),
  };
}

export function loadApiConfig(env: Env = process.env): ApiConfig {
  const parsed = parseEnv(env, ['ALIPAY_APP_ID', 'ALIPAY_NOTIFY_URL', 'DATABASE_URL']);
  requireSellerId(parsed, parsed.ALIPAY_GATEWAY_URL ?? (parsed.ALIPAY_ENV && ALIPAY_GATEWAYS[parsed.ALIPAY_ENV]));
  return {
    ...common(env, parsed),
    alipay: {
      appId: parsed.ALIPAY_APP_ID!,
      credentials: parseAlipayVerification(env),
      sellerId: parsed.ALIPAY_SELLER_ID,
      notifyUrl: parsed.ALIPAY_NOTIFY_URL!,
    },
    apiKeys: requireApiKeys(env),
  };
}
