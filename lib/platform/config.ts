// Configuration from the environment, validated once at start. A bad value stops the process with
// a message that names the variable and says what is wrong with it.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { parseAlipayCredentials, parseAlipayVerification, parsePrivateKey, type AlipayCredentials, type AlipayVerification } from '../alipay/credentials.js';
import type { DatabaseTimeouts } from './database.js';
import { ConfigError, readSecret, requireSecret, SECRET_VARIABLES, type Env } from './environment.js';
import { API_KEYS_RULE, deriveApiKeys, formatApiKeys, MASTER_KEY_RULE, parseApiKeys, parseMasterKey, type ApiKeys } from './master-key.js';
import { DEFAULT_BARCODE_TIMINGS, DEFAULT_TIMINGS, type LatePaymentPolicy, type PaymentTimings } from '../payments/payment.js';
import type { ReconciliationSettings } from '../payments/reconciliation.js';
import type { WebhookPrivateTargets } from '../merchants/webhook-targets.js';
import { DEFAULT_WEBHOOK_SETTINGS, type WebhookSettings } from '../merchants/webhook-settings.js';
import { DEFAULT_LATE_REFUND_RETRY, type LateRefundRetryPolicy } from '../payments/activity-contracts.js';
import { parseTemporalSecurity, type TemporalConfig } from './temporal-connection.js';

export interface AlipayConfig {
  gatewayUrl: string;
  appId: string;
  /** The app's private key, normalised to PKCS8 PEM whatever form it was given in. */
  privateKey: string;
  credentials: AlipayCredentials;
  sellerId?: string;
  notifyUrl: string;
}

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
  /** WORKER_SHUTDOWN_GRACE: on SIGTERM, how long activities already running may take to finish. */
  workerShutdownGraceMs: number;
  /** The worker's version in Temporal's Worker Versioning (TEMPORAL_WORKER_*). */
  workerVersion: WorkerVersionConfig;
  /** Where buyers reach the API, the base of cashierUrl; unset: the API's own listen address. */
  publicBaseUrl?: string;
  /** The Alipay simulator (development): cashier pages link to its pay page. */
  simulatorUrl?: string;
  /** TEMPORAL_UI_URL: the Temporal UI, the base of the workflow links /ops answers with; unset: none. */
  temporalUiUrl?: string;
  /** Where the worker serves /metrics (port 0: any free one); absent: it serves none. */
  workerMetrics?: ListenAddress;
  /** The web console's sessions (api/console.ts). */
  console: ConsoleSettings;
}

/** How long a console session lasts: without a request, and at most after its login. */
export interface ConsoleSettings {
  sessionIdleMs: number;
  sessionMaxMs: number;
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
  /** How long a count may wait for PostgreSQL before the process counts on its own for a while. */
  databaseWaitMs: number;
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

export interface WorkerVersionConfig {
  deploymentName: string;
  /** Unset: derived from the workflow code (worker/versions.ts). */
  buildId?: string;
  /** Make this version current once it polls (npm start, tests); otherwise only when the deployment has none. */
  setCurrent: boolean;
}

/** A switch: on/true or off/false. */
const onOff = z.string().transform((text, ctx) => {
  const value = { on: true, true: true, off: false, false: false }[text.trim().toLowerCase()];
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is neither on nor off` });
    return z.NEVER;
  }
  return value;
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
  // Worker Versioning: a worker serves one version of its deployment; pinned runs finish on it.
  TEMPORAL_WORKER_DEPLOYMENT: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, _ and - (at most 100)').default('durapay'),
  // Unset: derived from the workflow code, so a changed workflow is a new version.
  TEMPORAL_WORKER_BUILD_ID: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'an image tag: letters, digits, _ . and - (at most 128), not starting with . or -').optional(),
  TEMPORAL_WORKER_SET_CURRENT: onOff.default(false),
  // Unset: TLS exactly when a certificate, CA, server name or API key is given.
  TEMPORAL_TLS: onOff.optional(),
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
  // On SIGTERM the worker stops taking tasks and lets the activities it runs (an Alipay call, a
  // ledger write) finish for this long before they are cancelled (and retried by another worker).
  WORKER_SHUTDOWN_GRACE: duration.refine((ms) => ms <= 10 * 60_000, 'must be at most 10m').default(30_000),
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
  RATE_LIMIT_DB_WAIT: duration.refine((ms) => ms >= 50 && ms <= 10_000, 'must be from 50ms to 10s').default(500),
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
  // The Temporal UI operators open: /ops answers link an order's workflows there.
  TEMPORAL_UI_URL: baseUrl.optional(),
  // A console session ends this long after its last request…
  CONSOLE_SESSION_IDLE: duration.refine((ms) => ms >= 60_000 && ms <= 24 * 3_600_000, 'must be from 1m to 24h').default(30 * 60_000),
  // …or this long after its login, whichever comes first.
  CONSOLE_SESSION_MAX: duration.refine((ms) => ms >= 60_000 && ms <= 30 * 24 * 3_600_000, 'must be from 1m to 720h').default(12 * 3_600_000),
});

/** A variable of the API and the worker: in the schema, or a secret (each also read from NAME_FILE). */
export type ConfigVariable = keyof typeof schema.shape | (typeof SECRET_VARIABLES)[number];

/** Every environment variable the API and the worker read, for checks of deployment files. */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(schema.shape),
  ...SECRET_VARIABLES.flatMap((name) => [name, `${name}_FILE`]),
];

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
    workerVersion: {
      deploymentName: parsed.TEMPORAL_WORKER_DEPLOYMENT,
      ...(parsed.TEMPORAL_WORKER_BUILD_ID ? { buildId: parsed.TEMPORAL_WORKER_BUILD_ID } : {}),
      setCurrent: parsed.TEMPORAL_WORKER_SET_CURRENT,
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
    workerShutdownGraceMs: parsed.WORKER_SHUTDOWN_GRACE,
    unplaceableRetryMs: parsed.ALIPAY_UNPLACEABLE_ANSWER_RETRY,
    latePaymentPolicy: parsed.LATE_PAYMENT_POLICY,
    lateRefundRetry: { firstMs: parsed.LATE_REFUND_RETRY_FIRST, maxMs: DEFAULT_LATE_REFUND_RETRY.maxMs, windowMs: parsed.LATE_REFUND_RETRY_WINDOW },
    rateLimits: {
      merchantPerMinute: parsed.RATE_LIMIT_MERCHANT_PER_MINUTE,
      ipPerMinute: parsed.RATE_LIMIT_IP_PER_MINUTE,
      authFailuresPerMinute: parsed.AUTH_FAILURES_PER_MINUTE,
      databaseWaitMs: parsed.RATE_LIMIT_DB_WAIT,
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
    ...(parsed.TEMPORAL_UI_URL ? { temporalUiUrl: parsed.TEMPORAL_UI_URL } : {}),
    ...(parsed.WORKER_METRICS_PORT ? { workerMetrics: parsed.WORKER_METRICS_PORT } : {}),
    logLevel: parsed.LOG_LEVEL,
    console: { sessionIdleMs: parsed.CONSOLE_SESSION_IDLE, sessionMaxMs: parsed.CONSOLE_SESSION_MAX },
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

/** What `npm run migrate` needs: the database, and a key that seals merchants' secrets stored in
 *  clear (the worker's DURAPAY_MASTER_KEY or the API's DURAPAY_API_KEYS, whichever this step holds). */
export function loadMigrateConfig(env: Env = process.env): { databaseUrl: string; merchantSecrets: Buffer; logLevel: string } {
  const parsed = parseEnv(env, ['DATABASE_URL']);
  const keys = parseApiKeysVariable(env);
  if (!keys) {
    throw new ConfigError(
      "DURAPAY_MASTER_KEY: required (or DURAPAY_MASTER_KEY_FILE, or the API's DURAPAY_API_KEYS): migrate seals the merchants' secrets an older database holds in clear",
    );
  }
  return { databaseUrl: parsed.DATABASE_URL!, merchantSecrets: keys.merchantSecrets, logLevel: parsed.LOG_LEVEL };
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
