-- sqltrack durable write path: journal delivery progress, refused records and run leases.
-- Documented in docs/schema.md ("The write path").

-- How far each process's journal has been delivered: records up to delivered_seq are in
-- the store. Delivery updates this row in the same transaction as the records it writes,
-- so a replayed journal is written exactly once.
CREATE TABLE sqltrack.journal_progress (
    journal_id     TEXT PRIMARY KEY,
    host_name      TEXT NOT NULL,
    process_id     BIGINT NOT NULL,
    delivered_seq  BIGINT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Records a call acknowledged that the store refused on delivery (a param another
-- process set to another value, a point for a run that had ended): kept, never dropped.
CREATE TABLE sqltrack.journal_rejections (
    journal_id   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    run_id       TEXT NOT NULL,
    record       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    rejected_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (journal_id, seq)
);

-- The heartbeat of the process that runs a run: refreshed while it lives; a RUNNING run
-- whose lease expired belongs to a process that is gone.
CREATE TABLE sqltrack.run_leases (
    run_id         TEXT PRIMARY KEY REFERENCES sqltrack.runs (run_id),
    host_name      TEXT NOT NULL,
    process_id     BIGINT NOT NULL,
    process_start  TEXT,
    heartbeat_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);

-- Each run's state as a person means it: CRASHED when the run is RUNNING but the lease
-- of its process expired (MLflow would show such a run RUNNING forever).
CREATE VIEW sqltrack.run_liveness AS
SELECT r.run_id, r.status,
       CASE WHEN r.status = 'RUNNING' AND l.expires_at < current_timestamp THEN 'CRASHED'
            ELSE r.status END AS state,
       l.host_name, l.process_id, l.heartbeat_at, l.expires_at
FROM sqltrack.runs r
LEFT JOIN sqltrack.run_leases l ON l.run_id = r.run_id;
