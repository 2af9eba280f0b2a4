-- An order's live redemptions (the only look-up by order: ReleaseTx) are
-- found through promotions_redemptions_live, which leads with order_ref:
-- the index on order_ref alone only cost every redemption's insert.
DROP INDEX promotions_redemptions_order;
