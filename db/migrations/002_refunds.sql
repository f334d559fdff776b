-- Up Migration

-- Refunds, reserved before Alipay is called: PENDING and SUCCEEDED amounts count against what
-- was paid, so the sum never exceeds it; a FAILED refund releases its amount.
CREATE TABLE refunds (
  payment_id         text NOT NULL REFERENCES payments (id),
  out_request_no     text NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('merchant', 'late_payment')),
  amount_fen         bigint NOT NULL CHECK (amount_fen > 0),
  status             text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
  reason             text,
  failure_reason     text,
  alipay_fund_change text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  settled_at         timestamptz,
  PRIMARY KEY (payment_id, out_request_no)
);

ALTER TABLE payments
  ADD COLUMN refunded_amount_fen bigint NOT NULL DEFAULT 0 CHECK (refunded_amount_fen >= 0),
  ADD COLUMN late_payment jsonb,
  DROP CONSTRAINT payments_status_check,
  ADD CONSTRAINT payments_status_check CHECK (status IN
    ('AWAITING_PAYMENT', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'PRECREATE_FAILED', 'REVIEW')),
  ADD CONSTRAINT payments_refunds_within_paid CHECK (refunded_amount_fen <= coalesce(paid_amount_fen, 0));

-- Down Migration
ALTER TABLE payments
  DROP CONSTRAINT payments_refunds_within_paid,
  DROP CONSTRAINT payments_status_check,
  ADD CONSTRAINT payments_status_check CHECK (status IN ('AWAITING_PAYMENT', 'PAID', 'CLOSED', 'PRECREATE_FAILED', 'REVIEW')),
  DROP COLUMN late_payment,
  DROP COLUMN refunded_amount_fen;
DROP TABLE refunds;
