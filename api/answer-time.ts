// Calls into workflows that a merchant waits on: bounded by API_ANSWER_TIMEOUT, and their
// rejections told apart by the failure type the workflow gave.
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { HttpError } from './errors.js';

export function failureType(err: unknown): string | undefined {
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

export function isDeadlineExceeded(err: unknown): boolean {
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  // gRPC DEADLINE_EXCEEDED (4), directly or as the cause of the SDK's own error.
  const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
  return code === 4;
}

/** A merchant never waits on a stuck worker: past the answer time, 503 and a safe retry. */
export async function answerWithin<T>(client: Client, timeoutMs: number, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await client.withDeadline(Date.now() + timeoutMs, call);
  } catch (err) {
    if (!isDeadlineExceeded(err)) throw err;
    throw new HttpError('TRY_AGAIN', `the workflow did not answer the ${what} within ${timeoutMs} ms; the same request can be retried safely`);
  }
}
