-- An aggregate's events by sequence: a consumer missing an aggregate's
-- predecessors asks whether the outbox still keeps them (then they are on
-- their way and it waits) before it starts the aggregate without them.
CREATE INDEX outbox_aggregate ON outbox (aggregate_type, aggregate_id, sequence);
