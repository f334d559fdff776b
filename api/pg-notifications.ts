// One PostgreSQL connection per API process that LISTENs for what other processes announce
// (NOTIFY): a merchant changed, a client address blocked. It reconnects on its own; while it is not
// listening, what depends on it (caches) must not trust what it holds, so `listening` says so and
// every (re)connection is announced: whatever was missed meanwhile is unknown.
import pg from 'pg';
import type { Logger } from 'pino';

export const CHANNELS = {
  /** Payload: the merchant's id (sent by a trigger on merchants, db/migrations/011_rate_limits.sql). */
  merchantChanged: 'durapay_merchant_changed',
  /** Payload: JSON {key, until}: a client address over the failed-authentication limit until then (epoch ms). */
  authBlocked: 'durapay_auth_blocked',
} as const;

type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];
type Handler = (payload: string) => void;

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

export class PgNotifications {
  #client: pg.Client | undefined;
  #listening = false;
  #closed = false;
  #retryMs = RECONNECT_MIN_MS;
  #timer: NodeJS.Timeout | undefined;
  readonly #handlers = new Map<Channel, Handler[]>();
  readonly #stateHandlers: ((listening: boolean) => void)[] = [];

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
    private readonly connectTimeoutMs = 5_000,
  ) {}

  /** True while every notification sent now will arrive. */
  get listening(): boolean {
    return this.#listening;
  }

  on(channel: Channel, handler: Handler): void {
    this.#handlers.set(channel, [...(this.#handlers.get(channel) ?? []), handler]);
  }

  /** Called with true once listening (again), with false when the connection is lost. */
  onState(handler: (listening: boolean) => void): void {
    this.#stateHandlers.push(handler);
  }

  /** Connects; resolves once listening or once the first attempt failed (it then keeps trying). */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: this.connectTimeoutMs, keepAlive: true });
    this.#client = client;
    client.on('notification', (message) => {
      for (const handler of this.#handlers.get(message.channel as Channel) ?? []) handler(message.payload ?? '');
    });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client));
    try {
      await client.connect();
      for (const channel of Object.values(CHANNELS)) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      this.#lost(client, err);
      return;
    }
    if (this.#closed || this.#client !== client) return;
    this.#retryMs = RECONNECT_MIN_MS;
    this.#setListening(true);
  }

  #lost(client: pg.Client, err?: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#setListening(false);
    if (this.#closed) return;
    this.logger.warn({ err, retryInMs: this.#retryMs }, 'PostgreSQL notifications: connection lost; caches are bypassed until it is back');
    this.#timer = setTimeout(() => void this.#connect(), this.#retryMs);
    this.#timer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, RECONNECT_MAX_MS);
  }

  #setListening(listening: boolean): void {
    if (this.#listening === listening) return;
    this.#listening = listening;
    for (const handler of this.#stateHandlers) handler(listening);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    this.#setListening(false);
    await client?.end().catch(() => {});
  }
}
