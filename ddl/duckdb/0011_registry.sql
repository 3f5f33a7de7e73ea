-- sqltrack model registry and deployments, DuckDB flavour. Needs 0003_ml_governance
-- (models) and 0002_datasets. Documented in docs/schema.md ("Model registry and deployments").
--
-- Registered models with immutable, numbered versions; aliases whose every change is an
-- append-only event; deployments as append-only events per target. What is current (the
-- aliases, what is live) is a view over the events, never a table kept in step.
--
-- A DuckDB file has no logins and no triggers: db_user stays NULL (DuckDB's session_user is
-- the constant 'duckdb', which names nobody), and "immutable" and "append-only" are what
-- sqltrack does, not what the engine enforces; whoever may write the file may change it.
-- On PostgreSQL, triggers enforce both and the database writes db_user itself.

CREATE TABLE sqltrack.registered_models (
    name         TEXT PRIMARY KEY,
    description  TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    user_name    TEXT NOT NULL,
    db_user      TEXT
);

CREATE TABLE sqltrack.registered_model_tags (
    name       TEXT NOT NULL REFERENCES sqltrack.registered_models (name),
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    set_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    user_name  TEXT NOT NULL,
    db_user    TEXT,
    PRIMARY KEY (name, key)
);

-- One row per version, numbered 1, 2, ... per registered model; never changed. It points at
-- a stored model (and so at its run) and keeps the model's sha256 and its training data's
-- fingerprint as they were verified when the version was created.
CREATE TABLE sqltrack.model_versions (
    name                 TEXT NOT NULL REFERENCES sqltrack.registered_models (name),
    version              INTEGER NOT NULL CHECK (version >= 1),
    model_id             BIGINT NOT NULL REFERENCES sqltrack.models (model_id),
    run_id               TEXT NOT NULL REFERENCES sqltrack.runs (run_id),
    source               TEXT NOT NULL,
    description          TEXT,
    model_sha256         TEXT NOT NULL,
    dataset_id           BIGINT REFERENCES sqltrack.datasets (dataset_id),
    dataset_fingerprint  TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    user_name            TEXT NOT NULL,
    db_user              TEXT,
    PRIMARY KEY (name, version),
    UNIQUE (name, model_id)
);

-- Every change of an alias: set (from_version NULL), moved, or removed (to_version NULL).
-- seq numbers the changes of one alias 1, 2, ...; two writers racing on an alias collide
-- on the primary key instead of both recording the same from_version.
CREATE TABLE sqltrack.model_alias_events (
    name          TEXT NOT NULL REFERENCES sqltrack.registered_models (name),
    alias         TEXT NOT NULL,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    from_version  INTEGER,
    to_version    INTEGER,
    reason        TEXT,
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    user_name     TEXT NOT NULL,
    db_user       TEXT,
    PRIMARY KEY (name, alias, seq),
    FOREIGN KEY (name, to_version) REFERENCES sqltrack.model_versions (name, version),
    CHECK (from_version IS NOT NULL OR to_version IS NOT NULL)
);

CREATE VIEW sqltrack.model_aliases AS
SELECT e.name, e.alias, e.to_version AS version, e.changed_at AS set_at, e.user_name,
       e.db_user
FROM sqltrack.model_alias_events e
WHERE e.to_version IS NOT NULL
  AND e.seq = (SELECT max(x.seq) FROM sqltrack.model_alias_events x
               WHERE x.name = e.name AND x.alias = e.alias);

-- Every deploy and undeploy, per target (seq 1, 2, ... per target, as for aliases). A
-- deploy to a live target replaces what was live; an undeploy names what it took down.
CREATE SEQUENCE sqltrack.deployment_event_id_seq START 1;
CREATE TABLE sqltrack.deployment_events (
    event_id    BIGINT PRIMARY KEY DEFAULT nextval('sqltrack.deployment_event_id_seq'),
    target      TEXT NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    action      TEXT NOT NULL CHECK (action IN ('deploy', 'undeploy')),
    kind        TEXT NOT NULL CHECK (kind IN ('sql_view', 'mlflow_dir', 'sagemaker', 'azureml',
                                              'vertexai', 'databricks', 'external')),
    model_name  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    alias       TEXT,
    config      JSON NOT NULL,
    reason      TEXT,
    event_time  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    user_name   TEXT NOT NULL,
    db_user     TEXT,
    UNIQUE (target, seq),
    FOREIGN KEY (model_name, version) REFERENCES sqltrack.model_versions (name, version)
);

-- One row per deployment (deploy event) with how it ended: the target's next event, if
-- any, is its undeploy or its replacement. Live = no next event.
CREATE VIEW sqltrack.deployments AS
SELECT d.event_id AS deployment_id, d.target, d.kind, d.model_name, d.version, d.alias,
       d.config, d.reason, d.event_time AS deployed_at, d.user_name AS deployed_by,
       d.db_user AS deployed_db_user,
       CASE WHEN n.event_id IS NULL THEN 'live'
            WHEN n.action = 'undeploy' THEN 'undeployed'
            ELSE 'replaced' END AS status,
       n.event_time AS ended_at, n.user_name AS ended_by, n.db_user AS ended_db_user,
       n.reason AS end_reason,
       v.run_id, v.model_id, v.model_sha256, v.dataset_id, ds.table_name, ds.row_count,
       v.dataset_fingerprint AS fingerprint
FROM sqltrack.deployment_events d
LEFT JOIN sqltrack.deployment_events n ON n.target = d.target AND n.seq = d.seq + 1
JOIN sqltrack.model_versions v ON v.name = d.model_name AND v.version = d.version
LEFT JOIN sqltrack.datasets ds ON ds.dataset_id = v.dataset_id
WHERE d.action = 'deploy';

CREATE VIEW sqltrack.live_deployments AS
SELECT target, kind, model_name, version, alias, config, deployed_at, deployed_by,
       deployed_db_user, run_id, model_id, model_sha256, dataset_id, table_name, row_count,
       fingerprint
FROM sqltrack.deployments
WHERE status = 'live';
