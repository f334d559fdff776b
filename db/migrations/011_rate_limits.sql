-- Up Migration

-- Rate-limit counts shared by every API process (api/rate-limit-store.ts): one row per key
-- (the limit's name and value, then the merchant or the client address, e.g. "ip/1200/192.0.2.1"),
-- a fixed window from the key's first request. Counts need no durability: unlogged, and rows whose window ended are deleted.
CREATE UNLOGGED TABLE rate_limit_counts (
  key       text PRIMARY KEY,
  hits      integer NOT NULL,
  resets_at timestamptz NOT NULL
);
CREATE INDEX rate_limit_counts_resets_idx ON rate_limit_counts (resets_at);

-- Every change to a merchant (created, disabled, enabled, secret rotated, Alipay app set; by the
-- CLI, the library or by hand) tells every API process, which then forgets what it cached of it.
CREATE FUNCTION durapay_merchant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('durapay_merchant_changed', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END;
$$;
CREATE TRIGGER merchants_changed AFTER INSERT OR UPDATE OR DELETE ON merchants
  FOR EACH ROW EXECUTE FUNCTION durapay_merchant_changed();

-- Down Migration
DROP TRIGGER merchants_changed ON merchants;
DROP FUNCTION durapay_merchant_changed();
DROP TABLE rate_limit_counts;
