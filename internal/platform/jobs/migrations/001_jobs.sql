-- One row per periodic job, shared by every runner on this database: the
-- lease that lets one runner at a time run the job, and the record of its
-- runs. Times are unix microseconds; 0 means never (lease_until 0: released).
-- The next run is due when last_run_at + the job's period has passed and no
-- other owner's lease_until lies in the future.
CREATE TABLE jobs_leases (
    name        TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    lease_until BIGINT  NOT NULL,
    last_run_at BIGINT  NOT NULL,
    last_ok_at  BIGINT  NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT '',
    runs        BIGINT  NOT NULL DEFAULT 0,
    failures    BIGINT  NOT NULL DEFAULT 0
);
