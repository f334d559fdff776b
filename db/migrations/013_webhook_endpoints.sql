-- Up Migration

-- Webhook endpoints a merchant manages through the API: every order's events reach each enabled
-- endpoint whose events match, beside the order's own notifyUrl. The signing secret rests sealed
-- (lib/platform/key-vault.ts) under the merchant-secrets key, bound to the endpoint; during a
-- rotation's grace period the previous one signs too. A deleted endpoint keeps its row (and its
-- deliveries' history) with deleted_at set, and is never shown or sent to again.
CREATE TABLE webhook_endpoints (
  id                         text PRIMARY KEY, -- we_ + 24 hex digits
  merchant_id                text NOT NULL REFERENCES merchants (id),
  url                        text NOT NULL,
  events                     text[] NOT NULL CHECK (cardinality(events) > 0),
  description                text,
  enabled                    boolean NOT NULL DEFAULT true,
  secret_sealed              jsonb NOT NULL,
  previous_secret_sealed     jsonb,
  previous_secret_expires_at timestamptz,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  deleted_at                 timestamptz
);
CREATE INDEX webhook_endpoints_merchant_idx ON webhook_endpoints (merchant_id, created_at, id) WHERE deleted_at IS NULL;

-- Events get the merchant they belong to (a ping has no order), and a place in the merchant's feed
-- (GET /v1/events): the writing transaction's id and the row's own position. A reader only takes
-- rows of transactions older than its snapshot's xmin, all of them finished, so a transaction that
-- commits late can never slip in behind a cursor that already passed it.
ALTER TABLE webhook_events
  ALTER COLUMN payment_id DROP NOT NULL,
  ADD COLUMN merchant_id text REFERENCES merchants (id),
  ADD COLUMN writer_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ADD COLUMN position    bigint GENERATED ALWAYS AS IDENTITY,
  ADD CONSTRAINT webhook_events_order_or_ping CHECK (payment_id IS NOT NULL OR type = 'ping');
UPDATE webhook_events e SET merchant_id = p.merchant_id FROM payments p WHERE p.id = e.payment_id;

-- A worker of the version before (during a rolling upgrade) inserts events without the merchant.
CREATE FUNCTION webhook_events_fill_merchant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.merchant_id IS NULL THEN
    SELECT merchant_id INTO NEW.merchant_id FROM payments WHERE id = NEW.payment_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER webhook_events_fill_merchant BEFORE INSERT ON webhook_events
  FOR EACH ROW EXECUTE FUNCTION webhook_events_fill_merchant();
ALTER TABLE webhook_events ALTER COLUMN merchant_id SET NOT NULL;
CREATE INDEX webhook_events_feed_idx ON webhook_events (merchant_id, writer_xid, position);

-- One event to one endpoint. webhook_events.status stays the order's notifyUrl delivery; each
-- endpoint's deliveries go one after the other per order, by the event's sequence, independent of
-- every other endpoint's. cancelled: the endpoint was disabled or deleted before it got through.
CREATE TABLE webhook_deliveries (
  endpoint_id  text NOT NULL REFERENCES webhook_endpoints (id),
  event_id     text NOT NULL REFERENCES webhook_events (id),
  payment_id   text REFERENCES payments (id), -- the event's order; null for a ping
  sequence     integer NOT NULL,              -- the event's sequence in its order; 0 for a ping
  status       text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (payment_id, endpoint_id, sequence) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_recent_idx ON webhook_deliveries (endpoint_id, created_at DESC, sequence DESC, event_id DESC);

-- An attempt at an endpoint names it; null: the order's notifyUrl.
ALTER TABLE webhook_attempts ADD COLUMN endpoint_id text REFERENCES webhook_endpoints (id);

-- Down Migration
ALTER TABLE webhook_attempts DROP COLUMN endpoint_id;
DROP TABLE webhook_deliveries;
DROP INDEX webhook_events_feed_idx;
DROP TRIGGER webhook_events_fill_merchant ON webhook_events;
DROP FUNCTION webhook_events_fill_merchant();
DELETE FROM webhook_events WHERE payment_id IS NULL;
ALTER TABLE webhook_events
  DROP CONSTRAINT webhook_events_order_or_ping,
  DROP COLUMN position,
  DROP COLUMN writer_xid,
  DROP COLUMN merchant_id,
  ALTER COLUMN payment_id SET NOT NULL;
DROP TABLE webhook_endpoints;
