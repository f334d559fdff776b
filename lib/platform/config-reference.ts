// What each environment variable means and what it defaults to, in words: the source of the
// configuration reference (docs/reference/configuration.md, written by `npm run docs:reference`).
// Keyed by the configuration schema's variables and the secrets (each also read from NAME_FILE), so
// a variable added to either without its line here does not compile.
import type { ConfigVariable } from './config.js';

export interface VariableReference {
  /** Markdown: what it is, its rules, who reads it. */
  meaning: string;
  /** Markdown: the value when unset. */
  default: string;
}

export const CONFIG_REFERENCE: Record<ConfigVariable, VariableReference> = {
  ALIPAY_GATEWAY_URL: { meaning: "Alipay's gateway, e.g. `https://openapi.alipay.com/gateway.do` or the sandbox's; must be `https://` (plain `http://` only on loopback: 127.0.0.0/8, `::1`, `localhost`)", default: "the simulator (with `npm start`)" },
  ALIPAY_ENV: { meaning: "`production` or `sandbox`: sets `ALIPAY_GATEWAY_URL` to `https://openapi.alipay.com/gateway.do` or `https://openapi-sandbox.dl.alipaydev.com/gateway.do` (both given must agree); with `npm start`, no simulator", default: "—" },
  ALIPAY_APP_ID: { meaning: "the Alipay app id", default: "simulator's" },
  ALIPAY_PRIVATE_KEY: { meaning: "the app's RSA private key: PKCS1 or PKCS8, PEM or bare base64. Only the worker needs it.", default: "generated dev key" },
  ALIPAY_PUBLIC_KEY: { meaning: "key mode: **Alipay's** public key (not the app's), PEM or bare base64. Not with the certificate variables", default: "simulator's" },
  ALIPAY_APP_CERT: { meaning: "[certificate mode](/operate/alipay-apps): the app's public key certificate (`appCertPublicKey_<app id>.crt`, PEM). Only the worker needs it", default: "—" },
  ALIPAY_PUBLIC_CERT: { meaning: "certificate mode: Alipay's public key certificate (`alipayCertPublicKey_RSA2.crt`, PEM, with the CA certificates that follow it in the file)", default: "—" },
  ALIPAY_ROOT_CERT: { meaning: "certificate mode: Alipay's root certificate chain (`alipayRootCert.crt`, PEM)", default: "—" },
  ALIPAY_SELLER_ID: { meaning: "the Alipay account's `2088…` seller id; notifies must carry this `seller_id`. Required unless the gateway is the simulator (a loopback URL) or the sandbox (`ALIPAY_ENV=sandbox` or its URL); the API, which names no gateway of its own, needs it unless its `ALIPAY_GATEWAY_URL` or `ALIPAY_ENV` says so", default: "—" },
  ALIPAY_NOTIFY_URL: { meaning: "the public URL Alipay posts notifies to, ending in `/alipay/notify`", default: "the local API" },
  TEMPORAL_ADDRESS: { meaning: "Temporal frontend `host:port`", default: "a local dev server (with `npm start`)" },
  TEMPORAL_NAMESPACE: { meaning: "namespace", default: "`default`" },
  TEMPORAL_TASK_QUEUE: { meaning: "task queue of the payment workflows", default: "`payments`" },
  TEMPORAL_WORKER_DEPLOYMENT: { meaning: "the worker's deployment in Temporal's Worker Versioning: letters, digits, `_` and `-`. Every workflow is pinned to the version (deployment and build id) that started it, so it only ever runs on workers of that build; see [Upgrades](/operate/upgrades)", default: "`durapay`" },
  TEMPORAL_WORKER_BUILD_ID: { meaning: "the worker's build id within its deployment, such as the image tag or the commit (an image tag's characters). A new build id is a new version, which takes new workflows once it is made current (`temporal worker deployment set-current-version`)", default: "derived from the workflow code (`workflows-` and 16 hex digits of its hash)" },
  TEMPORAL_WORKER_SET_CURRENT: { meaning: "`on` or `off`: the worker makes its own version current once Temporal lists it. When `off`, it does so only while the deployment has no current version (the first deploy), and otherwise logs the rollout command", default: "`off` (`on` with `npm start`)" },
  TEMPORAL_TLS: { meaning: "`on` or `off`. When unset, TLS is on as soon as any of the variables below is set. `off` together with any of them is refused.", default: "off" },
  TEMPORAL_TLS_CERT: { meaning: "client certificate for mTLS (PEM, optionally followed by its chain). Needs `TEMPORAL_TLS_KEY`.", default: "—" },
  TEMPORAL_TLS_KEY: { meaning: "the client certificate's private key (PEM, unencrypted). It must match the certificate.", default: "—" },
  TEMPORAL_TLS_CA: { meaning: "PEM bundle of the CA that signed the server's certificate", default: "the system's roots" },
  TEMPORAL_TLS_SERVER_NAME: { meaning: "the name to check in the server's certificate (and to send as SNI), when it differs from the host in `TEMPORAL_ADDRESS`", default: "the host of `TEMPORAL_ADDRESS`" },
  TEMPORAL_API_KEY: { meaning: "API key (Temporal Cloud, or a cluster with an authorizer). It is sent as `Authorization: Bearer …`, only over TLS, with the `temporal-namespace` header.", default: "—" },
  DATABASE_URL: { meaning: "`postgres://…` for durapay's read model", default: "embedded PostgreSQL (with `npm start`)" },
  DATABASE_CONNECT_TIMEOUT: { meaning: "how long the API and the worker wait for a PostgreSQL connection, new or free in the pool", default: "`3s`" },
  DATABASE_STATEMENT_TIMEOUT: { meaning: "PostgreSQL's `statement_timeout`; a server that sends nothing at all is given up on 1 s later. Past either timeout the API answers `503 TRY_AGAIN`, and an activity's write fails and Temporal retries it", default: "`5s`" },
  PORT: { meaning: "API port", default: "`3000`" },
  HOST: { meaning: "the address the API listens on", default: "`0.0.0.0` (`127.0.0.1` with `npm start`)" },
  PAYMENT_TIMEOUT: { meaning: "how long an order waits for payment (`15m`, `90s`, …; at most `2h`)", default: "`15m`" },
  PAYMENT_POLL_LADDER: { meaning: "gaps between the poll sweeper's status queries of a waiting QR order, each at least `1s`; the last one repeats. Polls are the fallback behind the notify: an order nobody scans costs at most 6 gateway calls over its 15 minutes, and Temporal nothing until its deadline", default: "`60s,120s,300s,600s`" },
  PAYMENT_HISTORY_LIMIT: { meaning: "history events after which a waiting order continues as a new run (50–10000)", default: "`2000`" },
  WEBHOOK_TIMEOUT: { meaning: "how long a merchant's endpoint has to answer a webhook with a `2xx` (at most `60s`)", default: "`10s`" },
  WEBHOOK_PRIVATE_TARGETS: { meaning: "`deny` or `allow`. Under `deny` a webhook never goes to a loopback, link-local (`169.254.0.0/16`, `fe80::/10`), RFC 1918, unique-local (`fc00::/7`), carrier-grade NAT (`100.64.0.0/10`) or unspecified address: a `notifyUrl` at such a literal address is refused at create (`400` naming `notifyUrl`), and a name is resolved once by the worker at each attempt, every address checked, and the connection made to the address checked (no second lookup); a refused attempt is recorded as `target refused` and retried like any failure", default: "`deny` (`allow` with `npm start`, which says so in its banner)" },
  WEBHOOK_CONCURRENCY: { meaning: "webhook POSTs a worker makes at once (1–1000), on a task queue of their own, `<TEMPORAL_TASK_QUEUE>-webhooks`: receivers slow to answer wait for these slots, never for those of payments and refunds", default: "`50`" },
  WEBHOOK_RETRY_SCHEDULE: { meaning: "waits between webhook attempts (at most 50); one attempt follows the last wait, then the event is `failed`", default: "`10s,1m,5m,30m,2h,6h,16h`" },
  LATE_PAYMENT_POLICY: { meaning: "`refund` or `review`: what to do with money paid for an order already closed (read by the API, carried by each order)", default: "`refund`" },
  LATE_REFUND_RETRY_FIRST: { meaning: "a late payment's refund that Alipay refuses for a reason that can pass (`ACQ.SELLER_BALANCE_NOT_ENOUGH`, a frozen trade, a system error) is sent again under the same `out_request_no` after this, then after twice as long each time, up to hourly; the order shows `latePayment.refundStatus: PENDING` and `lastRefusal` meanwhile (at least `100ms`; the worker's)", default: "`1m`" },
  LATE_REFUND_RETRY_WINDOW: { meaning: "for this long; a final refusal, or the window running out, sends the order to `REVIEW` with the refusal and the amount Alipay holds (at most `30d`)", default: "`24h`" },
  ALIPAY_UNPLACEABLE_ANSWER_RETRY: { meaning: "how long the worker retries an Alipay answer it cannot place before the order decides", default: "`10m`" },
  RATE_LIMIT_MERCHANT_PER_MINUTE: { meaning: "requests a merchant may make to `/v1` in a minute (1–1000000), counted by all API processes together in PostgreSQL (see [Rate limits](/integrate/rate-limits))", default: "`6000`" },
  RATE_LIMIT_IP_PER_MINUTE: { meaning: "requests a client address may make outside `/v1` (Alipay's notifies, cashier pages, health, readiness) in a minute (1–1000000), counted by all API processes together", default: "`1200`" },
  AUTH_FAILURES_PER_MINUTE: { meaning: "failed authentications on `/v1` (any `401`) a client address may have in a minute (1–1000000), counted by all API processes together; past it the address gets `429` until its minute ends, correctly signed requests included: at once from the process that counted the last failure, and from the others as soon as PostgreSQL's `NOTIFY` of the block reaches them (moments)", default: "`60`" },
  RATE_LIMIT_DB_WAIT: { meaning: "how long a rate-limit count waits for PostgreSQL (50ms–10s); past it, and for the next 5 s, each API process counts on its own, so an outage neither refuses nor holds up requests (the limits then hold per process)", default: "`500ms`" },
  CASHIER_STREAMS_PER_TOKEN: { meaning: "open status streams (`GET /pay/<token>/events`) one order may have at once in an API process (1–10000); one more gets `429 TOO_MANY_STREAMS` (see [Cashier page](/integrate/cashier))", default: "`5`" },
  CASHIER_STREAMS_PER_ADDRESS: { meaning: "open status streams one client address may have at once in an API process (1–10000); one more gets `429 TOO_MANY_STREAMS`", default: "`20`" },
  TRUST_PROXY: { meaning: "which proxies in front of the API may name the client in `X-Forwarded-For`: `off`, the number of proxies (`1` for one load balancer), or their addresses and subnets (`10.0.0.0/8,loopback`; also `linklocal`, `uniquelocal`). `on`/`true` is refused: any client could choose its address.", default: "`off`" },
  PUBLIC_BASE_URL: { meaning: "where buyers reach the API (scheme, host and any path prefix, no query): the base of each payment's `cashierUrl`", default: "the API's listen address (`localhost` for `0.0.0.0`)" },
  SIMULATOR_URL: { meaning: "the Alipay simulator's URL: cashier pages of open orders link to its pay page (development only)", default: "the simulator (with `npm start`)" },
  TEMPORAL_UI_URL: { meaning: "the Temporal UI operators open (scheme, host and any path prefix, no query): `GET /ops/payments/:paymentId/timeline` links the order's workflows there (`temporalUiUrl`)", default: "the embedded UI (with `npm start`); otherwise no link" },
  API_ANSWER_TIMEOUT: { meaning: "how long a create or cancel waits for its workflow before answering `503 TRY_AGAIN`", default: "`10s`" },
  DURAPAY_MASTER_KEY: { meaning: "the root key: 32 random bytes as 64 hex characters or base64 (`openssl rand -hex 32`). **The worker requires it** (and the merchant CLI's `app set` and `master-key` commands): it opens the Alipay apps' private keys, the merchants' secrets and the payment codes. The API accepts it for compatibility and derives what it needs, but should get `DURAPAY_API_KEYS` instead", default: "generated (with `npm start`)" },
  DURAPAY_API_KEYS: { meaning: "the API's keys, derived from the master key: the line `npm run --silent merchant -- master-key derive-api` prints (`durapay-api-keys-v1.…`). The API requires it or `DURAPAY_MASTER_KEY` (both given must agree); with neither it does not start. The worker ignores it", default: "derived (with `npm start`)" },
  BARCODE_ANSWER_TIMEOUT: { meaning: "how long a barcode create waits for the outcome before answering `AWAITING_PAYMENT` (at most `60s`)", default: "`10s`" },
  BARCODE_QUERY_INTERVAL: { meaning: "how often Alipay is queried while a buyer confirms (at least `1s`)", default: "`3s`" },
  BARCODE_CONFIRM_WINDOW: { meaning: "how long a buyer has to confirm before the payment is cancelled at Alipay (at most `10m`)", default: "`30s`" },
  OPS_TOKEN: { meaning: "bearer token of the `/ops` endpoints: at least 32 printable ASCII characters, no spaces (e.g. `openssl rand -hex 32`). Unset: `/ops` refuses every request; `npm start` generates one", default: "generated (with `npm start`)" },
  RECONCILIATION_TIME: { meaning: "when the daily reconciliation runs, `HH:MM` Beijing time", default: "`10:00`" },
  RECONCILIATION_BILL_WAIT: { meaning: "how long to wait before asking again while Alipay has no bill for the day yet", default: "`30m`" },
  RECONCILIATION_BILL_TRIES: { meaning: "how many times to ask in all before the day ends `BILL_NOT_READY` (1–100)", default: "`8`" },
  WORKFLOW_BUNDLE: { meaning: "the worker's workflow bundle built beforehand by `npm run build:workflows` (rebuild it with every deploy); unset, the worker bundles at start in a short-lived process of its own", default: "—" },
  LOG_LEVEL: { meaning: "pino level; the worker's Temporal SDK lines (its lifecycle, each workflow and activity task) show from `debug`", default: "`info`" },
  WORKER_METRICS_PORT: { meaning: "where the worker serves `GET /metrics`: a port on every interface (`9464`), a host and port (`127.0.0.1:9464`, `[::1]:9464`), `0` for any free port (the worker logs the URL), or `off`. Two workers on one host need two ports", default: "`9464` (`npm start`: on loopback, or any free port when 9464 is taken; the banner shows it)" },
  WORKER_ACTIVITY_CONCURRENCY: { meaning: "activities of the payment task queue (Alipay calls, ledger writes, refunds) a worker runs at once (1–10000); more wait in Temporal for a free slot", default: "`100`" },
  WORKER_SHUTDOWN_GRACE: {
    meaning:
      "on SIGTERM (a deploy, a scale-down) the worker takes no new task and lets the activities it runs (an Alipay call, a ledger write, a webhook POST) finish for this long; those still running are then cancelled and another worker makes them again (at most `10m`). An orchestrator's grace period must be longer",
    default: '`30s`',
  },
  WORKER_MAX_CACHED_WORKFLOWS: { meaning: "workflows a worker keeps in memory between their tasks; the others are replayed from their (short) history when their next task comes", default: "`500`" },
  CONSOLE_SESSION_IDLE: { meaning: "a [web console](/operate/console) session ends this long after its last request (`1m`–`24h`); the next request answers `401 SESSION_EXPIRED`", default: "`30m`" },
  CONSOLE_SESSION_MAX: { meaning: "a web console session ends this long after its login, however busy (`1m`–`720h`)", default: "`12h`" },
};

/** Variables of `npm start` and the tools around the engine, not of the API and the worker. */
export const TOOL_VARIABLES: Record<string, VariableReference> = {
  DURAPAY_DATA_DIR: { meaning: "where `npm start` keeps embedded state", default: "`.data`" },
  TEMPORAL_MODE: {
    meaning:
      "`npm start`: `dev`, the Temporal CLI's dev server on a SQLite file in the data folder (with its UI); or `cluster`, a Temporal server built from its Go module, its persistence and advanced visibility in the stack's PostgreSQL (databases `temporal` and `temporal_visibility`, 4 history shards), namespace `durapay` (7 days' retention), with Temporal's UI server beside it. Either only without `TEMPORAL_ADDRESS`",
    default: '`dev`',
  },
  TEMPORAL_CLI: {
    meaning: "`npm start`: the Temporal CLI to run the dev server with, checked first (then `temporal` on PATH, the per-user cache, and a build from its Go module)",
    default: "—",
  },
  DURAPAY_API_URL: { meaning: "the merchant CLI (`npm run cli`): the API it talks to, as `--api <url>`", default: "`http://127.0.0.1:3000`" },
  DURAPAY_CPU_PROFILE_DIR: { meaning: "`npm run bench`: write a CPU profile (`node --cpu-prof`) of each engine process into this folder", default: "— (no profile)" },
};
