// An order's first step as one local activity: claim the order number in the read model, ask
// Alipay for the QR code, record it. Each part is idempotent (the claim and the event by key,
// precreate by out_trade_no at Alipay), so a retry repeats them safely; one local activity instead
// of three saves two worker round trips on every create.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FAILURE, type AlipayActivities, type LedgerActivities, type OrderOpeningActivities } from '../lib/payments/activity-contracts.js';
import { isDatabaseUnavailable } from '../lib/platform/database.js';

/** Alipay is retried this long (or this often) for a QR code before the order fails; the
 *  read model is retried for as long as it takes. */
export const PRECREATE_GIVE_UP = { attempts: 5, ms: 30_000 };

/** Our own PostgreSQL out: ends this attempt at once and never counts against Alipay; the
 *  workflow schedules a fresh one (workflows/payment.ts). */
async function inReadModel<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!isDatabaseUnavailable(err)) throw err;
    throw ApplicationFailure.nonRetryable(`the read model is unavailable: ${(err as Error).message}`, FAILURE.readModelUnavailable);
  }
}

export function createOrderOpeningActivities(ledger: LedgerActivities, alipay: AlipayActivities): OrderOpeningActivities {
  return {
    async openOrder({ claim, precreate, issued }) {
      const claimed = await inReadModel(() => ledger.openPayment(claim));
      if (!claimed.opened) return claimed;
      let qrCode: string;
      try {
        ({ qrCode } = await alipay.precreateTrade(precreate));
      } catch (err) {
        const { attempt, scheduledTimestampMs } = Context.current().info;
        const givenUp = attempt >= PRECREATE_GIVE_UP.attempts || Date.now() - scheduledTimestampMs >= PRECREATE_GIVE_UP.ms;
        if (err instanceof ApplicationFailure && !err.nonRetryable && givenUp) {
          throw ApplicationFailure.create({ message: err.message, type: err.type ?? undefined, details: err.details as unknown[], nonRetryable: true });
        }
        throw err;
      }
      await inReadModel(() =>
        ledger.recordPaymentEvent({
          ...issued,
          data: { ...issued.data, qrCode },
          change: { status: 'AWAITING_PAYMENT', qrCode },
        }),
      );
      return { opened: true, qrCode };
    },
  };
}
