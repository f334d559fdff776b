-- Up Migration

-- Merchant API and webhook secrets rest sealed (lib/key-vault.ts: AES-256-GCM under a data key of
-- their own, wrapped by the merchant-secrets key derived from the master key), bound to the
-- merchant and the secret's purpose. SQL cannot reach the key, so the rows already here are sealed
-- by a step in JavaScript that each process runs right after migrating (sealMerchantSecretsAtRest
-- in lib/merchants.ts), which then empties the clear columns. They stay, nullable, for that step
-- (and for an engine of the version before during a rolling upgrade); a later migration drops them.
ALTER TABLE merchants
  ADD COLUMN api_secret_sealed          jsonb,
  ADD COLUMN previous_api_secret_sealed jsonb,
  ADD COLUMN webhook_secret_sealed      jsonb,
  ALTER COLUMN api_secret DROP NOT NULL,
  ALTER COLUMN webhook_secret DROP NOT NULL,
  ADD CONSTRAINT merchants_api_secret_present CHECK (api_secret IS NOT NULL OR api_secret_sealed IS NOT NULL),
  ADD CONSTRAINT merchants_webhook_secret_present CHECK (webhook_secret IS NOT NULL OR webhook_secret_sealed IS NOT NULL);

-- Down Migration
-- Sealed secrets cannot be opened here: going down needs the clear columns filled first.
ALTER TABLE merchants
  DROP CONSTRAINT merchants_webhook_secret_present,
  DROP CONSTRAINT merchants_api_secret_present,
  ALTER COLUMN webhook_secret SET NOT NULL,
  ALTER COLUMN api_secret SET NOT NULL,
  DROP COLUMN webhook_secret_sealed,
  DROP COLUMN previous_api_secret_sealed,
  DROP COLUMN api_secret_sealed;
