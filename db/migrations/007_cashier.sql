-- Up Migration

-- The buyer's cashier page, GET /pay/:token: an unguessable token per order, so the page never
-- takes an order number. Written once, with the row, by the activity that claims the order; orders
-- claimed before have none and no page.
ALTER TABLE payments ADD COLUMN cashier_token text CONSTRAINT payments_cashier_token_key UNIQUE;

-- Down Migration
ALTER TABLE payments DROP COLUMN cashier_token;
