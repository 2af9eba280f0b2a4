-- Issue #16: the coupons entered on a cart, and what an order was priced
-- and checked with (promotions and their versions, rate table and region
-- rule versions, tax facts: JSON), its buyer's identity where a region
-- requires one (masked JSON, never the number) with a keyed hash of the
-- number, and when personal data was anonymised by the retention job.
ALTER TABLE orders_carts ADD COLUMN coupons TEXT NOT NULL DEFAULT '[]';
ALTER TABLE orders_orders ADD COLUMN pricing TEXT;
ALTER TABLE orders_orders ADD COLUMN identity TEXT;
ALTER TABLE orders_orders ADD COLUMN identity_hash TEXT;
ALTER TABLE orders_orders ADD COLUMN anonymised_at BIGINT;
