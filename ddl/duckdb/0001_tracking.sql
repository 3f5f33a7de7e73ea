-- sqltrack tracking catalog, DuckDB flavour. Documented in docs/schema.md.
CREATE SCHEMA IF NOT EXISTS sqltrack;

CREATE TABLE sqltrack.schema_migrations (
    name        TEXT PRIMARY KEY,
    checksum    TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE sqltrack.experiment_id_seq START 1;
CREATE TABLE sqltrack.experiments (
    experiment_id  BIGINT PRIMARY KEY DEFAULT nextval('sqltrack.experiment_id_seq'),
    name           TEXT NOT NULL UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    created_by     TEXT NOT NULL
);

CREATE TABLE sqltrack.experiment_tags (
    experiment_id  BIGINT NOT NULL REFERENCES sqltrack.experiments (experiment_id),
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE sqltrack.runs (
    run_id         TEXT PRIMARY KEY CHECK (regexp_full_match(run_id, '[0-9a-f]{32}')),
    experiment_id  BIGINT NOT NULL REFERENCES sqltrack.experiments (experiment_id),
    run_name       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),
    user_name      TEXT NOT NULL,
    start_time     TIMESTAMPTZ NOT NULL,
    end_time       TIMESTAMPTZ,
    parent_run_id  TEXT,
    host_name      TEXT,
    source_name    TEXT,
    source_type    TEXT,
    git_commit     TEXT
);

CREATE TABLE sqltrack.params (
    run_id  TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE sqltrack.metrics (
    run_id       TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    key          TEXT NOT NULL,
    value        DOUBLE NOT NULL,
    step         BIGINT NOT NULL DEFAULT 0,
    "timestamp"  TIMESTAMPTZ NOT NULL
);

CREATE TABLE sqltrack.tags (
    run_id  TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE SEQUENCE sqltrack.artifact_id_seq START 1;
CREATE TABLE sqltrack.artifacts (
    artifact_id  BIGINT PRIMARY KEY DEFAULT nextval('sqltrack.artifact_id_seq'),
    run_id       TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    chunk_count  INTEGER NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    UNIQUE (run_id, name)
);

CREATE TABLE sqltrack.artifact_chunks (
    artifact_id  BIGINT NOT NULL REFERENCES sqltrack.artifacts (artifact_id),
    chunk_index  INTEGER NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (artifact_id, chunk_index)
);

-- The latest value of each metric of each run: highest step, then latest timestamp,
-- then largest value (MLflow's rule). A view, never a table kept in step.
CREATE VIEW sqltrack.latest_metrics AS
SELECT DISTINCT ON (run_id, key) run_id, key, value, step, "timestamp"
FROM sqltrack.metrics
ORDER BY run_id, key, step DESC, "timestamp" DESC, value DESC;
