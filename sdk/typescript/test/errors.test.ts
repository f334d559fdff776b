// Error answers become typed errors.
import { describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  ConflictError,
  Durapay,
  DurapayError,
  InvalidRequestError,
  NotFoundError,
  RateLimitError,
  TryAgainError,
} from '../src/index.js';

function answering(status: number, body: string, headers: Record<string, string> = {}) {
  return new Durapay({
    apiUrl: 'http://durapay.test',
    merchantId: 'mtest00001',
    secret: 'sk_test',
    fetch: async () => new Response(body, { status, headers: { 'content-type': 'application/json', ...headers } }),
  });
}
const errorBody = (code: string, details: unknown = null, requestId?: string) =>
  JSON.stringify({ error: { code, message: `${code} happened`, details, ...(requestId ? { requestId } : {}) } });

async function caught(promise: Promise<unknown>): Promise<DurapayError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DurapayError);
    return err as DurapayError;
  }
  throw new Error('no error was thrown');
}

describe('typed errors', () => {
  it('401 AUTH_* is an AuthenticationError with the code, message and request id', async () => {
    const err = await caught(answering(401, errorBody('AUTH_BAD_SIGNATURE'), { 'Request-Id': 'req_header' }).payments.get('x'));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: 'AUTH_BAD_SIGNATURE', message: 'AUTH_BAD_SIGNATURE happened', details: null, requestId: 'req_header' });
  });

  it('the body\'s requestId wins over the header', async () => {
    const err = await caught(answering(404, errorBody('NOT_FOUND', null, 'req_body'), { 'Request-Id': 'req_header' }).payments.get('x'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.requestId).toBe('req_body');
  });

  it('400, 413 and 415 are InvalidRequestErrors with their details', async () => {
    const details = [{ field: 'amount', rule: 'pattern' }];
    const err = await caught(answering(400, errorBody('INVALID_REQUEST', details)).payments.create({ outTradeNo: 'a', amount: 'x', subject: 's' }));
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.details).toEqual(details);
    expect(await caught(answering(413, errorBody('BAD_REQUEST')).payments.get('x'))).toBeInstanceOf(InvalidRequestError);
    expect(await caught(answering(415, errorBody('UNSUPPORTED_MEDIA_TYPE')).payments.get('x'))).toBeInstanceOf(InvalidRequestError);
  });

  it('409 is a ConflictError', async () => {
    const err = await caught(answering(409, errorBody('NOT_CANCELLABLE')).payments.cancel('x'));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.code).toBe('NOT_CANCELLABLE');
  });

  it('429 is a RateLimitError with Retry-After, else the details\' retryAfterSeconds', async () => {
    const limited = errorBody('RATE_LIMITED', { limit: 10, windowSeconds: 60, retryAfterSeconds: 12 });
    const fromHeader = (await caught(answering(429, limited, { 'Retry-After': '7' }).payments.get('x'))) as RateLimitError;
    expect(fromHeader).toBeInstanceOf(RateLimitError);
    expect(fromHeader.retryAfterSeconds).toBe(7);
    const fromDetails = (await caught(answering(429, limited).payments.get('x'))) as RateLimitError;
    expect(fromDetails.retryAfterSeconds).toBe(12);
  });

  it('503 is a TryAgainError', async () => {
    expect(await caught(answering(503, errorBody('TRY_AGAIN')).payments.get('x'))).toBeInstanceOf(TryAgainError);
  });

  it('anything else is the base DurapayError, even without a JSON body', async () => {
    const precreate = await caught(answering(502, errorBody('PRECREATE_FAILED')).payments.create({ outTradeNo: 'a', amount: '1.00', subject: 's' }));
    expect(precreate.constructor).toBe(DurapayError);
    expect(precreate.code).toBe('PRECREATE_FAILED');
    const proxy = await caught(answering(502, '<html>Bad Gateway</html>').payments.get('x'));
    expect(proxy.constructor).toBe(DurapayError);
    expect(proxy).toMatchObject({ status: 502, code: 'HTTP_502' });
    expect(proxy.message).toContain('Bad Gateway');
  });
});
