-- Up Migration

-- The merchant-facing read model: one row per order, written only by activities.
CREATE TABLE payments (
  id              text PRIMARY KEY, -- the workflow id: payment:<appId>:<outTradeNo>
  app_id          text NOT NULL,
  out_trade_no    text NOT NULL,
  merchant_id     text,
  amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
  subject         text NOT NULL,
  status          text NOT NULL CHECK (status IN ('AWAITING_PAYMENT', 'PAID', 'CLOSED', 'PRECREATE_FAILED', 'REVIEW')),
  alipay_status   text CHECK (alipay_status IN ('WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED')),
  alipay_trade_no text,
  qr_code         text,
  expires_at      timestamptz NOT NULL,
  paid_amount_fen bigint,
  paid_at         timestamptz,
  reason          text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (app_id, out_trade_no)
);
CREATE INDEX payments_status_created_idx ON payments (status, created_at);

-- Everything that happened to an order, append-only.
CREATE TABLE payment_events (
  id          bigserial PRIMARY KEY,
  payment_id  text NOT NULL REFERENCES payments (id) DEFERRABLE INITIALLY DEFERRED,
  event_key   text NOT NULL UNIQUE, -- set by the workflow: an activity retry writes once
  type        text NOT NULL,
  data        jsonb NOT NULL DEFAULT '{}',
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_payment_idx ON payment_events (payment_id, id);

CREATE FUNCTION payment_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'payment_events is append-only';
END;
$$;
CREATE TRIGGER payment_events_append_only
  BEFORE UPDATE OR DELETE ON payment_events
  FOR EACH ROW EXECUTE FUNCTION payment_events_append_only();

-- Down Migration
DROP TABLE payment_events;
DROP FUNCTION payment_events_append_only();
DROP TABLE payments;
