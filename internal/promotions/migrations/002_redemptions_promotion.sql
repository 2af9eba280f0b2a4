-- The live redemptions of a promotion: a promotion without limits is not
-- counted in promotions_counters, its uses and the discount it gave are
-- these rows (counter.go, "counted").
CREATE INDEX promotions_redemptions_promotion ON promotions_redemptions (promotion_id) WHERE released_at IS NULL;
