-- Up Migration

-- Merchants of this engine. Their secrets are kept as given: an HMAC can only be checked with the
-- secret itself. A rotated API secret stays valid until previous_secret_expires_at.
CREATE TABLE merchants (
  id                         text PRIMARY KEY CHECK (id ~ '^m[a-z0-9]{9}$'),
  name                       text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  api_secret                 text NOT NULL,
  previous_api_secret        text,
  previous_secret_expires_at timestamptz,
  webhook_secret             text NOT NULL,
  status                     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at                 timestamptz NOT NULL DEFAULT now()
);

-- Nonces seen within the timestamp window, shared by every API process; older ones are deleted.
CREATE TABLE merchant_nonces (
  merchant_id text NOT NULL REFERENCES merchants (id),
  nonce       text NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX merchant_nonces_seen_idx ON merchant_nonces (seen_at);

-- Orders belong to a merchant; the number Alipay knows is derived from the merchant and the
-- merchant's own number, so two merchants may use the same number on one Alipay app.
ALTER TABLE payments ADD COLUMN alipay_out_trade_no text;
UPDATE payments SET alipay_out_trade_no = out_trade_no;
ALTER TABLE payments
  ALTER COLUMN alipay_out_trade_no SET NOT NULL,
  ALTER COLUMN merchant_id SET NOT NULL,
  ADD COLUMN notify_url text,
  DROP CONSTRAINT payments_app_id_out_trade_no_key,
  ADD CONSTRAINT payments_merchant_order_key UNIQUE (merchant_id, out_trade_no),
  ADD CONSTRAINT payments_alipay_order_key UNIQUE (app_id, alipay_out_trade_no);
CREATE INDEX payments_merchant_created_idx ON payments (merchant_id, created_at DESC, id DESC);

-- Down Migration
DROP INDEX payments_merchant_created_idx;
ALTER TABLE payments
  DROP CONSTRAINT payments_alipay_order_key,
  DROP CONSTRAINT payments_merchant_order_key,
  ADD CONSTRAINT payments_app_id_out_trade_no_key UNIQUE (app_id, out_trade_no),
  ALTER COLUMN merchant_id DROP NOT NULL,
  DROP COLUMN notify_url,
  DROP COLUMN alipay_out_trade_no;
DROP TABLE merchant_nonces;
DROP TABLE merchants;
