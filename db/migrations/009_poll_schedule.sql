-- Up Migration

-- The poll ladder of a waiting QR order, kept in the read model so that the worker's poll sweeper
-- (worker/poll-sweeper.ts) asks Alipay at each step without waking the order's workflow: only an
-- answer with news reaches Temporal. Set by the activity that claims the order; orders claimed
-- before (whose workflows poll on their own timers) have none.
ALTER TABLE payments
  ADD COLUMN poll_ladder_ms integer[],
  ADD COLUMN poll_step integer NOT NULL DEFAULT 0,
  ADD COLUMN next_poll_at timestamptz;

-- The sweeper's only question: which waiting orders are due.
CREATE INDEX payments_next_poll_at ON payments (next_poll_at) WHERE next_poll_at IS NOT NULL AND status = 'AWAITING_PAYMENT';

-- Down Migration
DROP INDEX payments_next_poll_at;
ALTER TABLE payments DROP COLUMN next_poll_at, DROP COLUMN poll_step, DROP COLUMN poll_ladder_ms;
