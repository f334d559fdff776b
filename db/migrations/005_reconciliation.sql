-- Up Migration

-- One reconciliation per app and Beijing day, as its latest run left it. A re-run overwrites it.
CREATE TABLE reconciliations (
  app_id                text NOT NULL,
  bill_date             date NOT NULL,
  status                text NOT NULL CHECK (status IN ('RUNNING', 'DONE', 'BILL_NOT_READY', 'FAILED')),
  run_id                text NOT NULL, -- the Temporal run that wrote it
  reason                text,          -- why BILL_NOT_READY or FAILED
  bill_rows             integer,
  gateway_payment_count integer,
  gateway_payment_fen   bigint,
  local_payment_count   integer,
  local_payment_fen     bigint,
  gateway_refund_count  integer,
  gateway_refund_fen    bigint,
  local_refund_count    integer,
  local_refund_fen      bigint,
  mismatch_count        integer,
  started_at            timestamptz NOT NULL DEFAULT now(),
  finished_at           timestamptz,
  PRIMARY KEY (app_id, bill_date)
);

-- What each run found. Kept per run; the API shows the latest run's.
CREATE TABLE reconciliation_mismatches (
  id                 bigserial PRIMARY KEY,
  app_id             text NOT NULL,
  bill_date          date NOT NULL,
  run_id             text NOT NULL,
  type               text NOT NULL CHECK (type IN ('missing_local', 'missing_gateway', 'amount_mismatch', 'status_mismatch', 'refund_mismatch')),
  payment_id         text,          -- null: durapay has no such order
  out_trade_no       text NOT NULL, -- Alipay's out_trade_no (商户订单号)
  out_request_no     text,          -- the refund's, for refund mismatches
  alipay_trade_no    text,
  local_amount_fen   bigint,
  gateway_amount_fen bigint,
  detail             text NOT NULL,
  dispatched_at      timestamptz     -- when it was signalled to its order (or left for an operator)
);
CREATE INDEX reconciliation_mismatches_run_idx ON reconciliation_mismatches (run_id, id);
CREATE INDEX reconciliation_mismatches_pending_idx ON reconciliation_mismatches (run_id, payment_id) WHERE dispatched_at IS NULL;

-- The bill's rows while a run compares them: written in bulk, read once, then deleted. Unlogged:
-- a crash loses only what the run downloads again.
CREATE UNLOGGED TABLE reconciliation_bill_rows (
  app_id          text NOT NULL,
  bill_date       date NOT NULL,
  run_id          text NOT NULL,
  line            integer NOT NULL, -- in the detail file, for messages
  kind            text NOT NULL CHECK (kind IN ('payment', 'refund')),
  alipay_trade_no text NOT NULL,
  out_trade_no    text NOT NULL,
  out_request_no  text,
  amount_fen      bigint NOT NULL CHECK (amount_fen >= 0), -- the payment's, or the refund's, as a positive amount
  fee_fen         bigint,
  completed_at    timestamptz
);
CREATE INDEX reconciliation_bill_rows_run_idx ON reconciliation_bill_rows (run_id, kind, out_trade_no);

-- When Alipay says a refund was made (gmt_refund_pay): the day its bill lists it.
ALTER TABLE refunds ADD COLUMN alipay_refunded_at timestamptz;

-- A day's payments and refunds, read by every reconciliation.
CREATE INDEX payments_app_paid_idx ON payments (app_id, paid_at) WHERE paid_at IS NOT NULL;
CREATE INDEX refunds_succeeded_at_idx ON refunds ((coalesce(alipay_refunded_at, settled_at))) WHERE status = 'SUCCEEDED';

-- Down Migration
DROP INDEX refunds_succeeded_at_idx;
DROP INDEX payments_app_paid_idx;
ALTER TABLE refunds DROP COLUMN alipay_refunded_at;
DROP TABLE reconciliation_bill_rows;
DROP TABLE reconciliation_mismatches;
DROP TABLE reconciliations;
