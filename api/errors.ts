// Every error leaves the API as JSON { error: { code, message, details, requestId } } with its own status.
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import { isDatabaseUnavailable } from '../lib/platform/database.js';
import { ERROR_CODES, type ErrorCode } from './error-codes.js';

/** An error answer: its status comes from the table of error codes. */
export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.status = ERROR_CODES[code].statuses[0];
  }
}

/** One 400 that names every offending field and the rule it broke. */
export function invalidRequest(error: ZodError): HttpError {
  return invalidFields(error.issues.map((issue) => ({ field: issue.path.join('.') || '(body)', rule: issue.message })));
}

/** The same 400 as a schema's, for a rule checked after it. */
export function invalidField(field: string, rule: string): HttpError {
  return invalidFields([{ field, rule }]);
}

function invalidFields(details: { field: string; rule: string }[]): HttpError {
  const message = details.map((d) => `${d.field}: ${d.rule}`).join('; ');
  return new HttpError('INVALID_REQUEST', message, details);
}

/** The error object every answer carries; `status` only for body-parser's own (413, 415). */
function send(res: Response, error: HttpError, status = error.status): void {
  res.status(status).json({ error: { code: error.code, message: error.message, details: error.details ?? null, requestId: res.locals.requestId as string } });
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof HttpError) {
      send(res, err);
      return;
    }
    // body-parser's errors carry their status (bad JSON, too large, wrong charset).
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : undefined;
    if (status) {
      send(res, new HttpError(err.type === 'entity.parse.failed' ? 'INVALID_JSON' : 'BAD_REQUEST', err.message), status);
      return;
    }
    // Nothing was decided without PostgreSQL: create and cancel are idempotent, reads change nothing.
    if (isDatabaseUnavailable(err)) {
      logger.warn({ err, method: req.method, path: req.path, ...res.locals.orderLog }, 'PostgreSQL unavailable');
      send(res, new HttpError('TRY_AGAIN', 'the payment records are unavailable right now (PostgreSQL did not answer); the same request can be retried safely'));
      return;
    }
    logger.error({ err, method: req.method, path: req.path, ...res.locals.orderLog }, 'request failed');
    send(res, new HttpError('INTERNAL', 'internal error'));
  };
}
