-- Up Migration

-- One Alipay app per merchant (an ISV or a platform runs several). The environment-configured app
-- stays the default for merchants without one. The private key is only ever stored sealed
-- (lib/key-vault.ts: AES-256-GCM under a data key of its own, wrapped by the master key).
CREATE TABLE alipay_apps (
  app_id             text PRIMARY KEY CHECK (app_id ~ '^\d{6,32}$'),
  mode               text NOT NULL CHECK (mode IN ('key', 'cert')),
  private_key        jsonb NOT NULL,
  alipay_public_key  text,
  app_cert           text,
  alipay_public_cert text,
  alipay_root_cert   text,
  seller_id          text CHECK (seller_id ~ '^2088\d{12}$'),
  notify_url         text NOT NULL,
  gateway_url        text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK ((mode = 'key') = (alipay_public_key IS NOT NULL)),
  CHECK ((mode = 'cert') = (app_cert IS NOT NULL AND alipay_public_cert IS NOT NULL AND alipay_root_cert IS NOT NULL))
);

ALTER TABLE merchants ADD COLUMN alipay_app_id text REFERENCES alipay_apps (app_id);

-- Down Migration
ALTER TABLE merchants DROP COLUMN alipay_app_id;
DROP TABLE alipay_apps;
