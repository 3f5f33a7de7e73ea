-- sqltrack datasets catalog, DuckDB flavour. Documented in docs/schema.md.
-- The data itself lives in ordinary tables sqltrack_data.ds_<run_id>_<name>.
CREATE SCHEMA IF NOT EXISTS sqltrack_data;

CREATE SEQUENCE sqltrack.dataset_id_seq START 1;
CREATE TABLE sqltrack.datasets (
    dataset_id    BIGINT PRIMARY KEY DEFAULT nextval('sqltrack.dataset_id_seq'),
    run_id        TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    name          TEXT NOT NULL,
    table_name    TEXT NOT NULL UNIQUE,
    row_count     BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    spark_schema  JSON NOT NULL,
    fingerprint   TEXT NOT NULL,
    ordered       BOOLEAN NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    created_by    TEXT NOT NULL,
    UNIQUE (run_id, name)
);

-- Lineage: every dataset with the run, experiment and user that logged it.
CREATE VIEW sqltrack.dataset_lineage AS
SELECT d.dataset_id, d.name AS dataset_name, d.table_name, d.row_count, d.size_bytes,
       d.fingerprint, d.created_at, d.created_by,
       r.run_id, r.run_name, r.status AS run_status, r.user_name, r.start_time, r.end_time,
       e.experiment_id, e.name AS experiment_name
FROM sqltrack.datasets d
JOIN sqltrack.runs r ON r.run_id = d.run_id
JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id;
