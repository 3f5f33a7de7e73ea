-- sqltrack ML governance, DuckDB flavour: pipeline stages, feature transformations and
-- fitted Spark models stored in the database. Needs 0002_datasets (models.dataset_id).
-- Documented in docs/schema.md.

CREATE TABLE sqltrack.pipeline_stages (
    run_id        TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    stage_index   INTEGER NOT NULL,
    stage_path    TEXT NOT NULL,
    stage_class   TEXT NOT NULL,
    class_path    TEXT NOT NULL,
    stage_uid     TEXT NOT NULL,
    stage_kind    TEXT NOT NULL CHECK (stage_kind IN ('estimator', 'model', 'transformer')),
    pipeline_uid  TEXT NOT NULL,
    PRIMARY KEY (run_id, stage_index)
);

CREATE TABLE sqltrack.feature_transformations (
    run_id         TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    source_column  TEXT NOT NULL,
    branch         INTEGER NOT NULL,
    step           INTEGER NOT NULL,
    stage_class    TEXT NOT NULL,
    stage_uid      TEXT NOT NULL,
    input_column   TEXT NOT NULL,
    output_column  TEXT NOT NULL,
    PRIMARY KEY (run_id, source_column, branch, step)
);

CREATE SEQUENCE sqltrack.model_id_seq START 1;
CREATE TABLE sqltrack.models (
    model_id        BIGINT PRIMARY KEY DEFAULT nextval('sqltrack.model_id_seq'),
    run_id          TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    name            TEXT NOT NULL,
    model_class     TEXT NOT NULL,
    spark_version   TEXT NOT NULL,
    archive_format  TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    chunk_count     INTEGER NOT NULL,
    dataset_id      BIGINT REFERENCES sqltrack.datasets (dataset_id),
    input_columns   JSON NOT NULL,
    input_schema    JSON,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    created_by      TEXT NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE sqltrack.model_chunks (
    model_id     BIGINT NOT NULL REFERENCES sqltrack.models (model_id),
    chunk_index  INTEGER NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (model_id, chunk_index)
);
