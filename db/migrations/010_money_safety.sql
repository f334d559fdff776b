-- Up Migration

-- What Alipay reported of the trade when an order went to REVIEW (trade number, status, total,
-- payment time): a resolution records Alipay's own payment time and amount, not its own clock.
ALTER TABLE payments ADD COLUMN alipay_report jsonb;

-- A refund an operator's resolution of a REVIEW order sends: what Alipay holds goes back.
ALTER TABLE refunds
  DROP CONSTRAINT refunds_kind_check,
  ADD CONSTRAINT refunds_kind_check CHECK (kind IN ('merchant', 'late_payment', 'review'));

-- A late payment is merged, never replaced by an older state: a second detector of the same
-- trade does not reset its refund, a refund given back stays given back, the request number and
-- the time it was first seen stay the first ones. Another trade under the same order number
-- (which Alipay never makes) does not overwrite the first.
CREATE FUNCTION merge_late_payment(held jsonb, news jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN held IS NULL THEN news
    WHEN news IS NULL OR held->>'tradeNo' IS DISTINCT FROM news->>'tradeNo' THEN held
    ELSE held || news
      || jsonb_build_object('detectedAt', held->'detectedAt')
      || CASE WHEN held ? 'outRequestNo' THEN jsonb_build_object('outRequestNo', held->'outRequestNo') ELSE '{}'::jsonb END
      || CASE WHEN held ? 'refundedBy' THEN jsonb_build_object('refundedBy', held->'refundedBy') ELSE '{}'::jsonb END
      || CASE WHEN held->>'refundStatus' = 'SUCCEEDED' THEN '{"refundStatus": "SUCCEEDED"}'::jsonb ELSE '{}'::jsonb END
  END
$$;

-- Down Migration
DROP FUNCTION merge_late_payment(jsonb, jsonb);
ALTER TABLE refunds
  DROP CONSTRAINT refunds_kind_check,
  ADD CONSTRAINT refunds_kind_check CHECK (kind IN ('merchant', 'late_payment'));
ALTER TABLE payments DROP COLUMN alipay_report;
