// `listen --forward-to <url>`: the engine's events, read from the events feed (GET /v1/events, a
// long poll), forwarded to a local receiver as webhooks signed with the listen secret. No public
// URL is needed: the CLI asks, the receiver only has to listen on localhost.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { webhookSignature } from '../lib/merchants/signing.js';
import { listenSecretFile, resolveDataDir } from '../lib/platform/data-dir.js';
import { CliError, EXIT } from './exit.js';
import { API_OPTIONS, apiErrorObject, call, jsonMode, notice, out, outJson, required, type Command, type Env, type Values } from './kit.js';

/** How long each long poll waits for an event (the feed allows 30). */
export const LISTEN_WAIT_SECONDS = 25;
const FORWARD_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

const LISTEN_SECRET = /^whsec_[A-Za-z0-9_-]{16,200}$/;

/** DURAPAY_LISTEN_SECRET, or the one kept in the data folder, made there (mode 600) on first use. */
export function listenSecret(env: Env): string {
  const given = env.DURAPAY_LISTEN_SECRET;
  if (given) {
    if (!LISTEN_SECRET.test(given)) throw new CliError('DURAPAY_LISTEN_SECRET: must be whsec_ followed by at least 16 letters, digits, _ or -');
    return given;
  }
  const dataDir = resolveDataDir(env);
  const file = listenSecretFile(dataDir);
  const read = (): string | undefined => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const kept = read();
  if (kept !== undefined) {
    if (!LISTEN_SECRET.test(kept)) throw new CliError(`${file} does not hold a listen secret (whsec_…): remove it and a new one is made`);
    return kept;
  }
  const secret = `whsec_${randomBytes(32).toString('base64url')}`;
  try {
    mkdirSync(dataDir, { recursive: true });
    // 'wx': two listeners started together keep the first one's secret.
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return listenSecret(env);
    throw new CliError(`cannot keep a listen secret in ${file} (${code ?? (error as Error).message}): set DURAPAY_LISTEN_SECRET=whsec_… instead`);
  }
  return secret;
}

export interface FeedEvent {
  id: string;
  type: string;
  apiVersion: string;
  created: number;
  data: unknown;
}

/** The body bytes of a webhook, exactly as durapay sends them: these keys, in this order. */
export function webhookBody(event: FeedEvent): string {
  return JSON.stringify({ id: event.id, type: event.type, apiVersion: event.apiVersion, created: event.created, data: event.data });
}

export type ForwardResult = { status: number } | { error: string };

/** One POST to the receiver, signed as durapay signs its webhooks; its status, or why there is none. */
export async function forwardEvent(url: string, event: FeedEvent, secret: string, signal?: AbortSignal): Promise<ForwardResult> {
  const body = webhookBody(event);
  const t = Math.floor(Date.now() / 1000);
  const timeout = AbortSignal.timeout(FORWARD_TIMEOUT_MS);
  try {
    const answer = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'durapay-event-id': event.id, 'durapay-signature': webhookSignature(secret, body, t) },
      body,
      redirect: 'manual',
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    await answer.arrayBuffer().catch(() => undefined);
    return { status: answer.status };
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') return { error: `no answer within ${FORWARD_TIMEOUT_MS / 1000} s` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { error: cause?.code ?? cause?.message ?? (error as Error).message };
  }
}

function forwardUrl(values: Values): string {
  const text = required(values, 'forward-to');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`--forward-to: "${text}" is not a URL like http://localhost:4000/hooks`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError('--forward-to: must be an http:// or https:// URL');
  return url.href;
}

function eventFilter(values: Values): Set<string> | undefined {
  const text = typeof values.events === 'string' ? values.events : undefined;
  if (text === undefined || text.trim() === '*') return undefined;
  const types = text.split(',').map((type) => type.trim()).filter(Boolean);
  if (types.length === 0) throw new CliError('--events: give event types separated by commas, e.g. payment.paid,refund.succeeded');
  return new Set(types);
}

const orderNo = (event: FeedEvent) => {
  const no = (event.data as { outTradeNo?: unknown } | null)?.outTradeNo;
  return typeof no === 'string' ? no : '-';
};

/** One line per event for people: time, type, id, order number, and how the forward went. */
function eventLine(event: FeedEvent, result: ForwardResult): string {
  const time = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
  const outcome = 'status' in result ? `[${result.status}]` : `[error: ${result.error}]`;
  return `${time}  ${event.type.padEnd(28)} ${event.id}  ${orderNo(event)}  -> ${outcome}`;
}

/** Errors the feed answers that another try may cure; any other refusal ends listen. */
const worthRetrying = (status: number) => status === 429 || status >= 500;

interface Page {
  events: FeedEvent[];
  nextCursor: string;
}

export const LISTEN_COMMAND: Command = {
  synopsis: 'listen --forward-to <url> [--events <type,type|*>]',
  summary: "forward the engine's events to a local URL as webhooks signed with the listen secret, until Ctrl-C",
  positionals: [],
  options: { ...API_OPTIONS, 'forward-to': { type: 'string' }, events: { type: 'string' } },
  async run(values, _positionals, env) {
    const target = forwardUrl(values);
    const wanted = eventFilter(values);
    const secret = listenSecret(env);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    // Once: a second Ctrl-C ends the process at once, even mid-page.
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await listen(values, env, { target, wanted, secret, signal: stop.signal });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

async function listen(
  values: Values,
  env: Env,
  { target, wanted, secret, signal }: { target: string; wanted: Set<string> | undefined; secret: string; signal: AbortSignal },
): Promise<number> {
  let backoffMs = 1_000;
  let failing = false;

  /** One page of the feed after the cursor (or from now, without one); undefined when stopped. */
  async function page(cursor: string | undefined, waitSeconds: number): Promise<Page | undefined> {
    const query = new URLSearchParams({ ...(cursor !== undefined && { after: cursor }), waitSeconds: String(waitSeconds) });
    for (;;) {
      if (signal.aborted) return undefined;
      let why: string;
      try {
        const answer = await call(values, env, 'GET', `/v1/events?${query}`, undefined, { signal });
        if (answer.ok) {
          const body = answer.json as Partial<Page> | undefined;
          if (!Array.isArray(body?.events) || typeof body?.nextCursor !== 'string') {
            throw new CliError(`GET /v1/events answered without events and nextCursor: is this durapay's API at ${answer.url}?`, EXIT.refused);
          }
          if (failing) notice(values, 'recovered', 'the events feed answers again; listening');
          failing = false;
          backoffMs = 1_000;
          return body as Page;
        }
        if (!worthRetrying(answer.status)) {
          const error = apiErrorObject(answer, 'GET');
          throw new CliError(`the events feed refused: ${String(error.code)}: ${String(error.message)}`, EXIT.refused);
        }
        why = `it answered HTTP ${answer.status}`;
      } catch (error) {
        if (signal.aborted) return undefined;
        if (!(error instanceof CliError) || error.exitCode !== EXIT.unreachable) throw error;
        why = error.message;
      }
      failing = true;
      notice(values, 'retrying', `the events feed is not available (${why}); trying again in ${backoffMs / 1000} s`, { inSeconds: backoffMs / 1000 });
      try {
        await sleep(backoffMs, undefined, { signal });
      } catch {
        return undefined;
      }
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  // The feed starts when the first call begins: the ready line comes once that call is answered,
  // so whatever happens after it is forwarded.
  const first = await page(undefined, 0);
  if (!first) return stopped(values);
  let cursor = first.nextCursor;
  const types = wanted ? [...wanted] : ['*'];
  if (jsonMode(values)) outJson({ ready: { forwardTo: target, listenSecret: secret, events: types } });
  else {
    out(`Ready. Forwarding events to ${target}; your listen secret is ${secret} (Ctrl-C to stop)`);
    if (wanted) out(`Only ${types.join(', ')}.`);
  }
  // The feed gives each event once; should it give one again, it is said, not forwarded twice.
  const forwarded = new Set<string>();
  const handle = async (events: FeedEvent[]) => {
    for (const event of events) {
      if (forwarded.has(event.id)) {
        notice(values, 'repeated', `the events feed gave ${event.id} (${event.type}) again: not forwarded twice`, { eventId: event.id });
        continue;
      }
      forwarded.add(event.id);
      // The ids of the last 10 000 events are enough to recognise a repeat from a page or two back.
      if (forwarded.size > 10_000) forwarded.delete(forwarded.values().next().value!);
      if (wanted && !wanted.has(event.type)) continue;
      const forward = await forwardEvent(target, event, secret);
      if (jsonMode(values)) outJson({ event, forward });
      else out(eventLine(event, forward));
    }
  };
  await handle(first.events);
  for (;;) {
    const asked = Date.now();
    const next = await page(cursor, LISTEN_WAIT_SECONDS);
    if (!next) return stopped(values);
    // A feed that answers an empty page at once (not a long poll) is asked again after a pause, not in a loop.
    if (next.events.length === 0 && Date.now() - asked < 1_000) {
      await sleep(1_000, undefined, { signal }).catch(() => undefined);
    }
    // Every event of the page is forwarded (attempted) before the cursor moves past it; a page in
    // hand is finished even after Ctrl-C, so nothing read is dropped unsaid.
    await handle(next.events);
    cursor = next.nextCursor;
    if (signal.aborted) return stopped(values);
  }
}

function stopped(values: Values): number {
  notice(values, 'stopped', 'stopped');
  return EXIT.ok;
}
