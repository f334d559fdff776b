-- Up Migration

-- Barcode payments (付款码): the cashier scans the buyer's payment code. The code itself is a
-- bearer credential and is never stored: only its masked form and a keyed fingerprint, which tells
-- a repeated create with the same code from one with another code.
ALTER TABLE payments
  ADD COLUMN method text NOT NULL DEFAULT 'qr' CHECK (method IN ('qr', 'barcode')),
  ADD COLUMN auth_code_masked text,
  ADD COLUMN auth_code_fingerprint text,
  ADD COLUMN alipay_sub_code text,
  DROP CONSTRAINT payments_status_check,
  ADD CONSTRAINT payments_status_check CHECK (status IN
    ('AWAITING_PAYMENT', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'PRECREATE_FAILED', 'FAILED', 'REVIEW')),
  ADD CONSTRAINT payments_barcode_has_code CHECK ((method = 'barcode') = (auth_code_fingerprint IS NOT NULL));

-- Down Migration
ALTER TABLE payments
  DROP CONSTRAINT payments_barcode_has_code,
  DROP CONSTRAINT payments_status_check,
  ADD CONSTRAINT payments_status_check CHECK (status IN
    ('AWAITING_PAYMENT', 'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'PRECREATE_FAILED', 'REVIEW')),
  DROP COLUMN alipay_sub_code,
  DROP COLUMN auth_code_fingerprint,
  DROP COLUMN auth_code_masked,
  DROP COLUMN method;
