// The merchant CLI's commands: what each takes, and which API call it makes.
import { readFileSync } from 'node:fs';
import QRCode from 'qrcode';
import { TIMESTAMP_TOLERANCE_SECONDS } from '../lib/merchants/signing.js';
import { completionScript, commandFlags, SHELLS, type Shell } from './completion.js';
import { webhookSecret } from './credentials.js';
import { ENDPOINT_COMMANDS } from './endpoints.js';
import { CliError, EXIT } from './exit.js';
import {
  API_OPTIONS,
  call,
  callOps,
  jsonMode,
  optional,
  orderPath,
  out,
  outJson,
  OPS_OPTIONS,
  report,
  required,
  wholeNumber,
  type Command,
} from './kit.js';
import { LISTEN_COMMAND } from './listen.js';
import { SIMULATOR_COMMANDS } from './trigger.js';
import { explainWebhookSignature } from './webhook-verify.js';

export { DEFAULT_API_URL, type Command, type Values } from './kit.js';

const opsPaymentPath = (paymentId: string, action: string) => `/ops/payments/${encodeURIComponent(paymentId)}/${action}`;

/** A QR code only for an order that can still be paid: an old one would only confuse a buyer. */
function payableQrCode(json: unknown): string | undefined {
  const order = json as { status?: unknown; qrCode?: unknown } | undefined;
  return order?.status === 'AWAITING_PAYMENT' && typeof order.qrCode === 'string' && order.qrCode ? order.qrCode : undefined;
}

interface TimelineAnswer {
  paymentId: string;
  outTradeNo: string;
  merchantId: string | null;
  status: string;
  amount: string;
  temporalUiUrl: string | null;
  traceId: string | null;
  historyAvailable: boolean;
  workflows: { workflowId: string; historyAvailable: boolean; temporalUiUrl: string | null }[];
  entries: { at: string; source: string; type: string; summary: string }[];
}

/** An order's timeline for people: a header, then one line per entry, oldest first. */
export function formatTimeline(timeline: TimelineAnswer): string {
  const lines = [
    `order ${timeline.outTradeNo} of ${timeline.merchantId ?? '(no merchant)'}: ${timeline.status}, ${timeline.amount}`,
    `workflow  ${timeline.paymentId}${timeline.historyAvailable ? '' : ' (history no longer in Temporal)'}`,
    `trace     ${timeline.traceId ?? '-'}`,
    `temporal  ${timeline.temporalUiUrl ?? '- (set TEMPORAL_UI_URL on the API for links)'}`,
  ];
  for (const workflow of timeline.workflows.slice(1)) {
    lines.push(`          ${workflow.workflowId}${workflow.historyAvailable ? '' : ' (history no longer in Temporal)'}`);
  }
  lines.push('');
  const width = Math.max(6, ...timeline.entries.map((e) => e.source.length));
  lines.push(`${'time'.padEnd(24)}  ${'source'.padEnd(width)}  what`);
  for (const entry of timeline.entries) lines.push(`${entry.at.padEnd(24)}  ${entry.source.padEnd(width)}  ${entry.summary}`);
  if (timeline.entries.length === 0) lines.push('(nothing recorded)');
  return lines.join('\n');
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
      const code = report(answer, 'POST', values);
      const qrCode = answer.ok && !values['no-qr'] && !jsonMode(values) ? payableQrCode(answer.json) : undefined;
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
      return report(await call(values, env, 'GET', orderPath(no!)), 'GET', values);
    },
  },

  cancel: {
    synopsis: 'cancel <no>',
    summary: 'cancel an unpaid payment',
    positionals: ['no'],
    options: API_OPTIONS,
    async run(values, [no], env) {
      return report(await call(values, env, 'POST', `${orderPath(no!)}/cancel`), 'POST', values);
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
      return report(await call(values, env, 'GET', `/v1/payments${search}`), 'GET', values);
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
      return report(await call(values, env, 'POST', `${orderPath(no!)}/refunds`, body), 'POST', values);
    },
  },

  refunds: {
    synopsis: 'refunds <no>',
    summary: "list a payment's refunds, oldest first",
    positionals: ['no'],
    options: API_OPTIONS,
    async run(values, [no], env) {
      return report(await call(values, env, 'GET', `${orderPath(no!)}/refunds`), 'GET', values);
    },
  },

  ...SIMULATOR_COMMANDS,
  listen: LISTEN_COMMAND,
  ...ENDPOINT_COMMANDS,

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
      return report(await callOps(values, env, 'GET', `/ops/payments?${query}`), 'GET', values);
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
      return report(await callOps(values, env, 'POST', opsPaymentPath(paymentId!, 'query-now'), body), 'POST', values);
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
      return report(await callOps(values, env, 'POST', opsPaymentPath(paymentId!, 'resolve-review'), body), 'POST', values);
    },
  },

  'ops-timeline': {
    synopsis: 'ops-timeline <paymentId>',
    summary: "operators: an order's story in time order: ledger, webhook attempts, Alipay calls, reconciliation findings",
    positionals: ['paymentId'],
    options: OPS_OPTIONS,
    async run(values, [paymentId], env) {
      const answer = await callOps(values, env, 'GET', opsPaymentPath(paymentId!, 'timeline'));
      if (!answer.ok || jsonMode(values)) return report(answer, 'GET', values);
      out(formatTimeline(answer.json as TimelineAnswer));
      return EXIT.ok;
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
      if (jsonMode(values)) outJson(verdict);
      else out(verdict.valid ? 'valid' : `invalid: ${verdict.reason}`);
      return verdict.valid ? EXIT.ok : EXIT.refused;
    },
  },

  completion: {
    synopsis: `completion ${SHELLS.join('|')}`,
    summary: 'print a shell completion script for durapay: source <(npx durapay completion bash)',
    positionals: ['shell'],
    completes: SHELLS,
    options: {},
    async run(values, [shell]) {
      if (!(SHELLS as readonly string[]).includes(shell!)) throw new CliError(`completion: no script for "${shell}"; one of ${SHELLS.join(', ')}`);
      if (jsonMode(values)) {
        outJson({ shell, commands: Object.fromEntries(Object.entries(COMMANDS).map(([name, command]) => [name, commandFlags(command)])) });
      } else {
        process.stdout.write(completionScript(shell as Shell, COMMANDS));
      }
      return EXIT.ok;
    },
  },
};
