// Webhook endpoints: where the engine sends each merchant's events besides an order's own
// notifyUrl (/v1/webhook-endpoints). A new endpoint's secret is printed once, when it is made.
import { CliError } from './exit.js';
import { API_OPTIONS, call, optional, report, required, wholeNumber, type Command, type Values } from './kit.js';

const endpointPath = (id: string) => `/v1/webhook-endpoints/${encodeURIComponent(id)}`;

/** --events payment.paid,refund.succeeded, or * for every type. */
function eventList(values: Values): string[] {
  const text = required(values, 'events');
  const types = text.split(',').map((type) => type.trim()).filter(Boolean);
  if (types.length === 0) throw new CliError('--events: give event types separated by commas, or *');
  return types;
}

export const ENDPOINT_COMMANDS: Record<string, Command> = {
  'endpoint-create': {
    synopsis: 'endpoint-create --url <url> --events <type,type|*> [--description <text>]',
    summary: "add a webhook endpoint for these event types (* for all); prints it with its secret, shown this once",
    positionals: [],
    options: { ...API_OPTIONS, url: { type: 'string' }, events: { type: 'string' }, description: { type: 'string' } },
    async run(values, _positionals, env) {
      const description = optional(values, 'description');
      const body = { url: required(values, 'url'), events: eventList(values), ...(description !== undefined && { description }) };
      // No idempotency key: the same command again would add a second endpoint.
      return report(await call(values, env, 'POST', '/v1/webhook-endpoints', body, { repeatSafe: false }), 'POST', values);
    },
  },

  'endpoint-list': {
    synopsis: 'endpoint-list',
    summary: 'list the webhook endpoints, oldest first (never their secrets)',
    positionals: [],
    options: API_OPTIONS,
    async run(values, _positionals, env) {
      return report(await call(values, env, 'GET', '/v1/webhook-endpoints'), 'GET', values);
    },
  },

  'endpoint-get': {
    synopsis: 'endpoint-get <id>',
    summary: 'show a webhook endpoint',
    positionals: ['id'],
    options: API_OPTIONS,
    async run(values, [id], env) {
      return report(await call(values, env, 'GET', endpointPath(id!)), 'GET', values);
    },
  },

  'endpoint-update': {
    synopsis: 'endpoint-update <id> [--url <url>] [--events <type,type|*>] [--description <text>] [--enable|--disable]',
    summary: "change a webhook endpoint's URL, event types or description, or turn it off and on",
    positionals: ['id'],
    options: {
      ...API_OPTIONS,
      url: { type: 'string' },
      events: { type: 'string' },
      description: { type: 'string' },
      enable: { type: 'boolean' },
      disable: { type: 'boolean' },
    },
    async run(values, [id], env) {
      if (values.enable && values.disable) throw new CliError('--enable and --disable: give one of them');
      const url = optional(values, 'url');
      const description = optional(values, 'description');
      const body = {
        ...(url !== undefined && { url }),
        ...(values.events !== undefined && { events: eventList(values) }),
        ...(description !== undefined && { description }),
        ...(values.enable && { enabled: true }),
        ...(values.disable && { enabled: false }),
      };
      if (Object.keys(body).length === 0) throw new CliError('endpoint-update: nothing to change; give --url, --events, --description, --enable or --disable');
      return report(await call(values, env, 'PATCH', endpointPath(id!), body), 'PATCH', values);
    },
  },

  'endpoint-delete': {
    synopsis: 'endpoint-delete <id>',
    summary: 'delete a webhook endpoint: it receives nothing more',
    positionals: ['id'],
    options: API_OPTIONS,
    async run(values, [id], env) {
      return report(await call(values, env, 'DELETE', endpointPath(id!)), 'DELETE', values);
    },
  },

  'endpoint-rotate-secret': {
    synopsis: 'endpoint-rotate-secret <id> [--grace-seconds <n>]',
    summary: "a new secret for a webhook endpoint, printed once; the old one also signs for --grace-seconds (default 86400, at most 604800)",
    positionals: ['id'],
    options: { ...API_OPTIONS, 'grace-seconds': { type: 'string' } },
    async run(values, [id], env) {
      const graceSeconds = wholeNumber(values, 'grace-seconds', 'seconds');
      const body = graceSeconds === undefined ? {} : { graceSeconds };
      // Not repeat-safe either: a second rotation would end the first one's new secret.
      return report(await call(values, env, 'POST', `${endpointPath(id!)}/rotate-secret`, body, { repeatSafe: false }), 'POST', values);
    },
  },

  'endpoint-test': {
    synopsis: 'endpoint-test <id>',
    summary: 'send a signed ping event to a webhook endpoint',
    positionals: ['id'],
    options: API_OPTIONS,
    async run(values, [id], env) {
      return report(await call(values, env, 'POST', `${endpointPath(id!)}/test`), 'POST', values);
    },
  },

  'endpoint-deliveries': {
    synopsis: 'endpoint-deliveries <id> [--limit <n>]',
    summary: "a webhook endpoint's deliveries, newest first, each with its attempts (--limit 1..100, default 20)",
    positionals: ['id'],
    options: { ...API_OPTIONS, limit: { type: 'string' } },
    async run(values, [id], env) {
      const limit = wholeNumber(values, 'limit', 'deliveries');
      const search = limit === undefined ? '' : `?limit=${limit}`;
      return report(await call(values, env, 'GET', `${endpointPath(id!)}/deliveries${search}`), 'GET', values);
    },
  },

  'endpoint-resend': {
    synopsis: 'endpoint-resend <id> <eventId>',
    summary: 'deliver an event to a webhook endpoint again',
    positionals: ['id', 'eventId'],
    options: API_OPTIONS,
    async run(values, [id, eventId], env) {
      return report(await call(values, env, 'POST', `${endpointPath(id!)}/deliveries/${encodeURIComponent(eventId!)}/resend`), 'POST', values);
    },
  },
};
