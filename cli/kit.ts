// What every command is made of: the command table's shape, its flags, the signed call to the API
// and the two ways of printing (for people, and --json for programs).
import type { ParseArgsConfig } from 'node:util';
import { callApi, parseApiUrl, type ApiAnswer, type CallOptions, type HttpMethod } from './api-client.js';
import { merchantCredentials, opsToken } from './credentials.js';
import { CliError, EXIT } from './exit.js';

export type Env = Record<string, string | undefined>;
export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  synopsis: string;
  summary: string;
  /** Names of the positional arguments, all required. */
  positionals: string[];
  options: Options;
  /** What a shell may complete the first positional argument with (trigger's event types). */
  completes?: readonly string[];
  run(values: Values, positionals: string[], env: Env): Promise<number>;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

/** Every command that calls the API takes these. */
export const API_OPTIONS: Options = {
  api: { type: 'string' },
  merchant: { type: 'string' },
  secret: { type: 'string' },
};

/** Every operator command takes these. */
export const OPS_OPTIONS: Options = {
  api: { type: 'string' },
  token: { type: 'string' },
};

/** Every command takes --json (and --help); main adds them to each command's options. */
export const COMMON_OPTIONS: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean' },
};

export const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
export const err = (text: string) => process.stderr.write(`durapay: ${text}\n`);

export const jsonMode = (values: Values) => values.json === true;

/** One compact JSON document (or one line of a stream) on stdout. */
export const outJson = (value: unknown) => out(JSON.stringify(value));

/** The JSON form of an error on stderr: {"error": {code, message, …}}. */
export const errJson = (error: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ error })}\n`);

/** The code --json gives a CliError, by its exit code. */
export function cliErrorCode(exitCode: number): string {
  if (exitCode === EXIT.usage) return 'USAGE';
  if (exitCode === EXIT.unreachable) return 'UNREACHABLE';
  if (exitCode === EXIT.refused) return 'REFUSED';
  return 'UNEXPECTED';
}

/** A line for people on stderr: in --json mode, the same as one JSON object (key: what it is). */
export function notice(values: Values, key: string, text: string, fields: Record<string, unknown> = {}): void {
  if (jsonMode(values)) process.stderr.write(`${JSON.stringify({ [key]: { message: text, ...fields } })}\n`);
  else err(text);
}

/** A result: pretty JSON for people, compact for --json. */
export function printResult(values: Values, value: unknown): void {
  out(jsonMode(values) ? JSON.stringify(value) : JSON.stringify(value, null, 2));
}

export function optional(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function required(values: Values, name: string): string {
  const value = optional(values, name);
  if (value === undefined || value === '') throw new CliError(`--${name} is required`);
  return value;
}

export function wholeNumber(values: Values, name: string, what: string): number | undefined {
  const value = optional(values, name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`--${name}: must be a whole number of ${what}`);
  return Number(value);
}

/**
 * The API's answer: on stdout as it came (pretty JSON), an HTTP error also said on stderr; with
 * --json, a success is compact JSON on stdout and an error is {"error": {…, httpStatus}} on stderr.
 */
export function report(answer: ApiAnswer, method: string, values: Values): number {
  if (jsonMode(values)) {
    if (answer.ok) {
      outJson(answer.json !== undefined ? answer.json : { text: answer.text });
      return EXIT.ok;
    }
    errJson(apiErrorObject(answer, method));
    return EXIT.refused;
  }
  if (answer.json !== undefined) out(JSON.stringify(answer.json, null, 2));
  else if (answer.text) out(answer.text);
  if (answer.ok) return EXIT.ok;
  err(`HTTP ${answer.status} from ${method} ${answer.url}`);
  return EXIT.refused;
}

/** The API's own {"error": {…}} with the HTTP status, or one made up for an answer that is not JSON. */
export function apiErrorObject(answer: ApiAnswer, method: string): Record<string, unknown> {
  const error = (answer.json as { error?: unknown } | undefined)?.error;
  if (error && typeof error === 'object' && !Array.isArray(error)) return { ...(error as Record<string, unknown>), httpStatus: answer.status };
  return { code: `HTTP_${answer.status}`, message: `HTTP ${answer.status} from ${method} ${answer.url}`, httpStatus: answer.status };
}

/** A refusal the API made, as the message of a CliError (exit 1), for commands that go on after a call. */
export function refusedBy(answer: ApiAnswer, method: string, what: string): CliError {
  const error = apiErrorObject(answer, method);
  return new CliError(`${what}: ${String(error.code)}: ${String(error.message)}`, EXIT.refused);
}

export function apiBase(values: Values, env: Env): URL {
  return parseApiUrl(optional(values, 'api') || env.DURAPAY_API_URL || DEFAULT_API_URL);
}

/** Calls the API as the merchant the flags, the environment or the dev merchant file name. */
export async function call(values: Values, env: Env, method: HttpMethod, path: string, body?: unknown, options?: CallOptions): Promise<ApiAnswer> {
  const base = apiBase(values, env);
  const credentials = merchantCredentials({ merchant: optional(values, 'merchant'), secret: optional(values, 'secret') }, env);
  return callApi(base, credentials, method, path, body, options);
}

/** Calls an /ops endpoint with the operators' token. */
export async function callOps(values: Values, env: Env, method: HttpMethod, path: string, body?: unknown): Promise<ApiAnswer> {
  return callApi(apiBase(values, env), { opsToken: opsToken(optional(values, 'token'), env) }, method, path, body);
}

export const orderPath = (outTradeNo: string) => `/v1/payments/${encodeURIComponent(outTradeNo)}`;
