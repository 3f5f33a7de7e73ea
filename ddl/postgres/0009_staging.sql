-- sqltrack dataset staging: the writer of every staging area, so that the staging of a
-- writer that is gone is removed at once. Documented in docs/schema.md.
CREATE TABLE sqltrack.staging_writers (
    staging        TEXT PRIMARY KEY,   -- sqltrack_data.<staging> table or <db>.staging/<staging>/
    run_id         TEXT NOT NULL,
    dataset_name   TEXT NOT NULL,
    host_name      TEXT NOT NULL,
    process_id     BIGINT NOT NULL,
    process_start  TEXT,
    started_at     TIMESTAMPTZ NOT NULL,
    heartbeat_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    published_at   TIMESTAMPTZ
);
