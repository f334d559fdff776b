// How the workflows read what their activities reported, and the words they record for it.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { FAILURE, type AlipayRefusal } from '../lib/payments/activity-contracts.js';
import type { TradeReport } from '../lib/payments/payment.js';

/** The failure an activity reported, through the ActivityFailure that wraps it. */
function activityCause(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? cause : undefined;
}

/** The type of the failure an activity reported, if it reported one. */
export function failureType(err: unknown): string | undefined {
  return activityCause(err)?.type ?? undefined;
}

export function isUnplaceable(err: unknown): boolean {
  return activityCause(err)?.type === FAILURE.alipayUnplaceable;
}

/** An answer that could not be placed, whether or not its bounded retry has run out. */
export function isUnexpectedAnswer(err: unknown): boolean {
  const type = activityCause(err)?.type;
  return type === FAILURE.alipayUnplaceable || type === FAILURE.alipayUnexpected;
}

export function alipayRefusal(err: unknown): AlipayRefusal | undefined {
  const cause = activityCause(err);
  return cause?.type === FAILURE.alipayRejected ? (cause.details?.[0] as AlipayRefusal) : undefined;
}

export function errorMessage(err: unknown): string {
  const cause = activityCause(err);
  if (cause) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

export function latePaymentReason(trade: TradeReport, status: string): string {
  return `late payment: Alipay reports trade ${trade.tradeNo ?? '(no trade_no)'} paid ${trade.totalAmount ?? '?'} after the order became ${status}; refund or settle it by hand`;
}

