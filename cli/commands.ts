// The merchant CLI's commands: what each takes, and which API call it makes.
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import QRCode from 'qrcode';
import { TIMESTAMP_TOLERANCE_SECONDS } from '../lib/merchants/signing.js';
import { callApi, parseApiUrl, type ApiAnswer } from './api-client.js';
import { merchantCredentials, opsToken, webhookSecret } from './credentials.js';
import { CliError, EXIT } from './exit.js';
import { explainWebhookSignature } from './webhook-verify.js';

type Env = Record<string, string | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  synopsis: string;
  summary: string;
  /** Names of the positional arguments, all required. */
  positionals: string[];
  options: Options;
  run(values: Values, positionals: string[], env: Env): Promise<number>;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

/** Every command that calls the API takes these. */
export const API_OPTIONS: Options = {
  api: { type: 'string' },
  merchant: { type: 'string' },
  secret: { type: 'string' },
};

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const err = (text: string) => process.stderr.write(`durapay: ${text}\n`);

function optional(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function required(values: Values, name: string): string {
  const value = optional(values, name);
  if (value === undefined || value === '') throw new CliError(`--${name} is required`);
  return value;
}

function wholeNumber(values: Values, name: string, what: string): number | undefined {
  const value = optional(values, name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`--${name}: must be a whole number of ${what}`);
  return Number(value);
}

const orderPath = (outTradeNo: string) => `/v1/payments/${encodeURIComponent(outTradeNo)}`;

/** The API's answer on stdout as it came (pretty JSON); an HTTP error also says so on stderr. */
function report(answer: ApiAnswer, method: string): number {
  if (answer.json !== undefined) out(JSON.stringify(answer.json, null, 2));
  else if (answer.text) out(answer.text);
  if (answer.ok) return EXIT.ok;
  err(`HTTP ${answer.status} from ${method} ${answer.url}`);
  return EXIT.refused;
}

/** Calls the API as the merchant the flags, the environment or the dev merchant file name. */
async function call(values: Values, env: Env, method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer> {
  const base = parseApiUrl(optional(values, 'api') || env.DURAPAY_API_URL || DEFAULT_API_URL);
  const credentials = merchantCredentials({ merchant: optional(values, 'merchant'), secret: optional(values, 'secret') }, env);
  return callApi(base, credentials, method, path, body);
}

/** Calls an /ops endpoint with the operators' token. */
async function callOps(values: Values, env: Env, method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer> {
  const base = parseApiUrl(optional(values, 'api') || env.DURAPAY_API_URL || DEFAULT_API_URL);
  return callApi(base, { opsToken: opsToken(optional(values, 'token'), env) }, method, path, body);
}

/** Every operator command takes these. */
const OPS_OPTIONS: Options = {
  api: { type: 'string' },
  token: { type: 'string' },
};
const opsPaymentPath = (paymentId: string, action: string) => `/ops/payments/${encodeURIComponent(paymentId)}/${action}`;

/** A QR code only for an order that can still be paid: an old one would only confuse a buyer. */
function payableQrCode(json: unknown): string | undefined {
  const order = json as { status?: unknown; qrCode?: unknown } | undefined;
  return order?.status === 'AWAITING_PAYMENT' && typeof order.qrCode === 'string' && order.qrCode ? order.qrCode : undefined;
}

export const COMMANDS: Record<string, Command> = {
  create: {
    synopsis: 'create --order <no> --amount <yuan> --subject <text> [--auth-code <code>] [--timeout-minutes <n>] [--notify-url <url>] [--no-qr]',
    summary: "create a payment, print it and its QR code; with --auth-code, charge the buyer's payment code (barcode)",
    positionals: [],
    options: {
      ...API_OPTIONS,
      order: { type: 'string' },
      amount: { type: 'string' },
      subject: { type: 'string' },
      'timeout-minutes': { type: 'string' },
      'notify-url': { type: 'string' },
      'auth-code': { type: 'string' },
      'no-qr': { type: 'boolean' },
    },
    async run(values, _positionals, env) {
      const timeoutMinutes = wholeNumber(values, 'timeout-minutes', 'minutes');
      const notifyUrl = optional(values, 'notify-url');
      const authCode = optional(values, 'auth-code');
      // Amounts stay the strings the merchant typed: the API owns their rules.
      const body = {
        outTradeNo: required(values, 'order'),
        amount: required(values, 'amount'),
        subject: required(values, 'subject'),
        ...(timeoutMinutes !== undefined && { timeoutMinutes }),
        ...(notifyUrl !== undefined && { notifyUrl }),
        ...(authCode !== undefined && { method: 'barcode', authCode }),
      };
      const answer = await call(values, env, 'POST', '/v1/payments', body);
      const code = report(answer, 'POST');
      const qrCode = answer.ok && !values['no-qr'] ? payableQrCode(answer.json) : undefined;
      if (qrCode) out(await QRCode.toString(qrCode, { type: 'terminal', small: true }));
      return code;
    },
  },

  show: {
    synopsis: 'show <no>',
    summary: 'show a payment',
    positionals: ['no'],
    options: API_OPTIONS,
    async run(values, [no], env) {
      return report(await call(values, env, 'GET', orderPath(no!)), 'GET');
    },
  },

  cancel: {
    synopsis: 'cancel <no>',
    summary: 'cancel an unpaid payment',
    positionals: ['no'],
    options: API_OPTIONS,
    async run(values, [no], env) {
      return report(await call(values, env, 'POST', `${orderPath(no!)}/cancel`), 'POST');
    },
  },

  list: {
    synopsis: 'list [--status <S>] [--created-from <time>] [--created-to <time>] [--limit <n>] [--cursor <c>]',
    summary: "list payments, newest first; pass the answer's nextCursor as --cursor for the next page",
    positionals: [],
    options: {
      ...API_OPTIONS,
      status: { type: 'string' },
      'created-from': { type: 'string' },
      'created-to': { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
    async run(values, _positionals, env) {
      const query = new URLSearchParams();
      for (const [flag, param] of [
        ['status', 'status'],
        ['created-from', 'createdFrom'],
        ['created-to', 'createdTo'],
        ['limit', 'limit'],
        ['cursor', 'cursor'],
      ] as const) {
        const value = optional(values, flag);
        if (value !== undefined) query.set(param, value);
      }
      const search = query.size > 0 ? `?${query}` : '';
      return report(await call(values, env, 'GET', `/v1/payments${search}`), 'GET');
    },
  },

  refund: {
    synopsis: 'refund <no> --request <outRequestNo> --amount <yuan> [--reason <text>]',
    summary: 'refund some or all of a paid payment; the same --request again never refunds twice',
    positionals: ['no'],
    options: { ...API_OPTIONS, request: { type: 'string' }, amount: { type: 'string' }, reason: { type: 'string' } },
    async run(values, [no], env) {
      const reason = optional(values, 'reason');
      const body = {
        outRequestNo: required(values, 'request'),
        amount: required(values, 'amount'),
        ...(reason !== undefined && { reason }),
      };
      return report(await call(values, env, 'POST', `${orderPath(no!)}/refunds`, body), 'POST');
    },
  },

  refunds: {
    synopsis: 'refunds <no>',
    summary: "list a payment's refunds, oldest first",
    positionals: ['no'],
    options: API_OPTIONS,
    async run(values, [no], env) {
      return report(await call(values, env, 'GET', `${orderPath(no!)}/refunds`), 'GET');
    },
  },

  'ops-list': {
    synopsis: 'ops-list --status <S> [--older-than-minutes <n>] [--merchant-id <id>] [--limit <n>]',
    summary: 'operators: list orders by status from the workflows, e.g. --status REVIEW',
    positionals: [],
    options: { ...OPS_OPTIONS, status: { type: 'string' }, 'older-than-minutes': { type: 'string' }, 'merchant-id': { type: 'string' }, limit: { type: 'string' } },
    async run(values, _positionals, env) {
      const query = new URLSearchParams({ status: required(values, 'status') });
      for (const [flag, name] of [['older-than-minutes', 'olderThanMinutes'], ['merchant-id', 'merchantId'], ['limit', 'limit']] as const) {
        const value = optional(values, flag);
        if (value !== undefined) query.set(name, value);
      }
      return report(await callOps(values, env, 'GET', `/ops/payments?${query}`), 'GET');
    },
  },

  'ops-query-now': {
    synopsis: 'ops-query-now <paymentId> [--note <text>] [--operator <name>]',
    summary: 'operators: ask Alipay about a waiting order now (paymentId as ops-list shows it)',
    positionals: ['paymentId'],
    options: { ...OPS_OPTIONS, note: { type: 'string' }, operator: { type: 'string' } },
    async run(values, [paymentId], env) {
      const note = optional(values, 'note');
      const operator = optional(values, 'operator');
      const body = { ...(note !== undefined && { note }), ...(operator !== undefined && { operator }) };
      return report(await callOps(values, env, 'POST', opsPaymentPath(paymentId!, 'query-now'), body), 'POST');
    },
  },

  'ops-resolve': {
    synopsis: 'ops-resolve <paymentId> --outcome PAID|CLOSED --note <why> [--operator <name>]',
    summary: 'operators: decide a REVIEW order after checking',
    positionals: ['paymentId'],
    options: { ...OPS_OPTIONS, outcome: { type: 'string' }, note: { type: 'string' }, operator: { type: 'string' } },
    async run(values, [paymentId], env) {
      const operator = optional(values, 'operator');
      const body = { outcome: required(values, 'outcome'), note: required(values, 'note'), ...(operator !== undefined && { operator }) };
      return report(await callOps(values, env, 'POST', opsPaymentPath(paymentId!, 'resolve-review'), body), 'POST');
    },
  },

  'webhook-verify': {
    synopsis: "webhook-verify --signature '<Durapay-Signature header>' --body-file <file> [--secret <webhookSecret>] [--tolerance <s>]",
    summary: 'check a webhook the way a receiver must: prints "valid", or exits 1 with the reason',
    positionals: [],
    options: {
      secret: { type: 'string' },
      signature: { type: 'string' },
      'body-file': { type: 'string' },
      tolerance: { type: 'string' },
    },
    async run(values, _positionals, env) {
      const secret = webhookSecret(optional(values, 'secret'), env);
      // Accept the header line as copied from a log, name included.
      const header = required(values, 'signature').replace(/^\s*durapay-signature\s*:\s*/i, '');
      const file = required(values, 'body-file');
      const toleranceSeconds = wholeNumber(values, 'tolerance', 'seconds') ?? TIMESTAMP_TOLERANCE_SECONDS;
      let body: Buffer;
      try {
        body = readFileSync(file); // the raw bytes: a re-encoded body would not verify
      } catch (error) {
        throw new CliError(`--body-file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const verdict = explainWebhookSignature(secret, header, body, toleranceSeconds);
      out(verdict.valid ? 'valid' : `invalid: ${verdict.reason}`);
      return verdict.valid ? EXIT.ok : EXIT.refused;
    },
  },
};
