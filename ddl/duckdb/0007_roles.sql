-- sqltrack roles, DuckDB flavour: the columns and views of 0007_roles on PostgreSQL, so
-- both backends keep one schema. Documented in docs/schema.md ("Roles and who did it").
--
-- A DuckDB file has no logins, no privileges and no triggers: whoever may write the file
-- may change anything in it. db_user and end_db_user stay NULL (DuckDB's session_user is
-- the constant 'duckdb', which would name nobody), role_grants stays empty, and the
-- refusals of the PostgreSQL flavour do not exist here. Tamper evidence on DuckDB comes
-- from the hash chain, access control from the file's permissions.

ALTER TABLE sqltrack.runs ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.runs ADD COLUMN end_db_user TEXT;
ALTER TABLE sqltrack.artifacts ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.datasets ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.models ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.journal_rejections ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.ledger ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.ledger_digests ADD COLUMN db_user TEXT;

CREATE TABLE sqltrack.role_grants (
    role_name   TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('reader', 'writer')),
    granted_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    granted_by  TEXT NOT NULL
);

-- Who did it, in the lineage views (new columns go last, as on PostgreSQL).
CREATE OR REPLACE VIEW sqltrack.dataset_lineage AS
SELECT d.dataset_id, d.name AS dataset_name, d.table_name, d.row_count, d.size_bytes,
       d.fingerprint, d.created_at, d.created_by,
       r.run_id, r.run_name, r.status AS run_status, r.user_name, r.start_time, r.end_time,
       e.experiment_id, e.name AS experiment_name,
       d.db_user, r.db_user AS run_db_user
FROM sqltrack.datasets d
JOIN sqltrack.runs r ON r.run_id = d.run_id
JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id;

CREATE OR REPLACE VIEW sqltrack.run_lineage AS
WITH base AS (
    SELECT r.experiment_id, e.name AS experiment_name, r.run_id, r.run_name, r.parent_run_id,
           r.user_name, r.status, r.start_time, r.end_time, r.git_commit, r.source_name,
           r.db_user
    FROM sqltrack.runs r
    JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id
)
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'dataset' AS lineage_kind,
       d.dataset_id, d.name AS dataset_name, d.table_name, d.row_count, d.fingerprint,
       CAST(NULL AS BIGINT) AS model_id, CAST(NULL AS TEXT) AS model_name,
       CAST(NULL AS TEXT) AS model_class,
       b.db_user
FROM base b
JOIN sqltrack.datasets d ON d.run_id = b.run_id
UNION ALL
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'model',
       m.dataset_id, d.name, d.table_name, d.row_count, d.fingerprint,
       m.model_id, m.name, m.model_class,
       b.db_user
FROM base b
JOIN sqltrack.models m ON m.run_id = b.run_id
LEFT JOIN sqltrack.datasets d ON d.dataset_id = m.dataset_id
UNION ALL
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'run',
       CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT),
       CAST(NULL AS TEXT),
       CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       b.db_user
FROM base b
WHERE NOT EXISTS (SELECT 1 FROM sqltrack.datasets d WHERE d.run_id = b.run_id)
  AND NOT EXISTS (SELECT 1 FROM sqltrack.models m WHERE m.run_id = b.run_id);

CREATE OR REPLACE VIEW sqltrack.run_summary AS
SELECT r.experiment_id, e.name AS experiment_name, r.run_id, r.run_name, r.user_name,
       r.status, r.start_time, r.end_time,
       epoch(r.end_time) - epoch(r.start_time) AS duration_seconds,
       r.git_commit,
       COALESCE(p.params, CAST('{}' AS JSON)) AS params,
       COALESCE(m.metrics, CAST('{}' AS JSON)) AS metrics,
       COALESCE(t.tags, CAST('{}' AS JSON)) AS tags,
       r.db_user
FROM sqltrack.runs r
JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id
LEFT JOIN (
    SELECT run_id, json_group_object(key, value) AS params
    FROM sqltrack.params GROUP BY run_id
) p ON p.run_id = r.run_id
LEFT JOIN (
    SELECT run_id,
           json_group_object(key, CASE
               WHEN isnan(value) THEN to_json('NaN')
               WHEN value = CAST('Infinity' AS DOUBLE) THEN to_json('Infinity')
               WHEN value = CAST('-Infinity' AS DOUBLE) THEN to_json('-Infinity')
               ELSE to_json(value) END) AS metrics
    FROM sqltrack.latest_metrics GROUP BY run_id
) m ON m.run_id = r.run_id
LEFT JOIN (
    SELECT run_id, json_group_object(key, value) AS tags
    FROM sqltrack.tags GROUP BY run_id
) t ON t.run_id = r.run_id;
