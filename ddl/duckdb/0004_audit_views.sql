-- sqltrack audit views, DuckDB flavour. Documented in docs/schema.md.
-- Needs 0002_datasets and 0003_ml_governance. Derived facts are views, never tables
-- kept in step by Python.

-- One row per run and lineage artifact: a dataset the run logged ('dataset'), a model it
-- stored with the dataset it was trained on ('model'), or the run alone when it has
-- neither ('run').
CREATE VIEW sqltrack.run_lineage AS
WITH base AS (
    SELECT r.experiment_id, e.name AS experiment_name, r.run_id, r.run_name, r.parent_run_id,
           r.user_name, r.status, r.start_time, r.end_time, r.git_commit, r.source_name
    FROM sqltrack.runs r
    JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id
)
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'dataset' AS lineage_kind,
       d.dataset_id, d.name AS dataset_name, d.table_name, d.row_count, d.fingerprint,
       CAST(NULL AS BIGINT) AS model_id, CAST(NULL AS TEXT) AS model_name,
       CAST(NULL AS TEXT) AS model_class
FROM base b
JOIN sqltrack.datasets d ON d.run_id = b.run_id
UNION ALL
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'model',
       m.dataset_id, d.name, d.table_name, d.row_count, d.fingerprint,
       m.model_id, m.name, m.model_class
FROM base b
JOIN sqltrack.models m ON m.run_id = b.run_id
LEFT JOIN sqltrack.datasets d ON d.dataset_id = m.dataset_id
UNION ALL
SELECT b.experiment_id, b.experiment_name, b.run_id, b.run_name, b.parent_run_id, b.user_name,
       b.status, b.start_time, b.end_time, b.git_commit, b.source_name,
       'run',
       CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT),
       CAST(NULL AS TEXT),
       CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM base b
WHERE NOT EXISTS (SELECT 1 FROM sqltrack.datasets d WHERE d.run_id = b.run_id)
  AND NOT EXISTS (SELECT 1 FROM sqltrack.models m WHERE m.run_id = b.run_id);

-- One row per run: params, latest metrics and tags as JSON objects. Non-finite metric
-- values are the JSON strings "NaN", "Infinity" and "-Infinity" (as PostgreSQL's jsonb
-- writes them), so the objects are valid JSON and CAST(metrics->>'k' AS DOUBLE PRECISION)
-- gives the number back on both backends.
CREATE VIEW sqltrack.run_summary AS
SELECT r.experiment_id, e.name AS experiment_name, r.run_id, r.run_name, r.user_name,
       r.status, r.start_time, r.end_time,
       epoch(r.end_time) - epoch(r.start_time) AS duration_seconds,
       r.git_commit,
       COALESCE(p.params, CAST('{}' AS JSON)) AS params,
       COALESCE(m.metrics, CAST('{}' AS JSON)) AS metrics,
       COALESCE(t.tags, CAST('{}' AS JSON)) AS tags
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
