-- Up Migration

-- The outbox of merchant webhooks: written in the same transaction as the ledger change that
-- causes them, so no event is lost or invented. The id is the event's for good: every retry and
-- every resend carries it, so merchants can deduplicate on it.
CREATE TABLE webhook_events (
  id           text PRIMARY KEY, -- evt_…
  payment_id   text NOT NULL REFERENCES payments (id),
  sequence     integer NOT NULL CHECK (sequence > 0), -- per order: delivered in this order
  type         text NOT NULL,
  -- json, not jsonb: the merchant-facing resource keeps its field order, byte for byte on every attempt.
  payload      json NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- no_endpoint: the order has no notifyUrl; the event is listed and never sent.
  status       text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'no_endpoint')),
  delivered_at timestamptz,
  UNIQUE (payment_id, sequence)
);
CREATE INDEX webhook_events_pending_idx ON webhook_events (payment_id, sequence) WHERE status = 'pending';

-- Every delivery attempt, as the delivery workflow saw it.
CREATE TABLE webhook_attempts (
  id           bigserial PRIMARY KEY,
  event_id     text NOT NULL REFERENCES webhook_events (id),
  attempt_key  text NOT NULL UNIQUE, -- set by the workflow: an activity retry writes once
  attempted_at timestamptz NOT NULL,
  status_code  integer,
  latency_ms   integer,
  error        text,
  delivered    boolean NOT NULL
);
CREATE INDEX webhook_attempts_event_idx ON webhook_attempts (event_id, id);

-- Down Migration
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
