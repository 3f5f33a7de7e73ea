-- sqltrack roles, PostgreSQL flavour: who did it (the database login on every event) and
-- what a non-owner role may change (triggers; the privileges come from `sqltrack db grant`).
-- Documented in docs/schema.md ("Roles and who did it").
--
-- The owner of the tables (the role that ran `sqltrack db upgrade`, and its members and
-- superusers) passes every guard: it keeps full rights. Every other role (the writers
-- and readers of `sqltrack db grant`) is held to what sqltrack itself does.

-- 1. Who did it: the database login (session_user, which SET ROLE does not change) beside
-- the user sqltrack was told about. Rows written before this migration keep NULL: their
-- login was never recorded. The DEFAULT is set after ADD COLUMN so that old rows are not
-- filled with the login of whoever runs the upgrade.
ALTER TABLE sqltrack.runs ADD COLUMN db_user TEXT, ADD COLUMN end_db_user TEXT;
ALTER TABLE sqltrack.runs ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.artifacts ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.artifacts ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.datasets ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.datasets ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.models ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.models ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.journal_rejections ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.journal_rejections ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.ledger ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.ledger ALTER COLUMN db_user SET DEFAULT session_user;
ALTER TABLE sqltrack.ledger_digests ADD COLUMN db_user TEXT;
ALTER TABLE sqltrack.ledger_digests ALTER COLUMN db_user SET DEFAULT session_user;

-- The roles `sqltrack db grant` gave access, so that later dataset tables are shared with
-- them (see share_dataset_table) and an auditor can read who may do what.
CREATE TABLE sqltrack.role_grants (
    role_name   TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('reader', 'writer')),
    granted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    granted_by  TEXT NOT NULL DEFAULT session_user
);

-- True when the current role may act as the owner of the table `rel` (superusers too).
-- (PL/pgSQL, not SQL: its plan is cached, where a SQL function is planned at every call.)
CREATE FUNCTION sqltrack.acts_as_owner(rel oid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = rel),
                       'MEMBER');
END
$$;

-- The login is written by the database, never taken from the client: a value the INSERT
-- names is replaced. On UPDATE (a dataset overwritten) it becomes the overwriter's.
CREATE FUNCTION sqltrack.stamp_db_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.db_user := session_user;
    RETURN NEW;
END
$$;

-- Generic guard: refuses UPDATE, DELETE and TRUNCATE of a table for every role but its
-- owner. For append-only records (params, metrics, chunks, the ledger, ...):
--   CREATE TRIGGER t_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON <table>
--       FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE FUNCTION sqltrack.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('sqltrack: %s on %I.%I refused for role %s: its rows are written once '
                         'and never changed or deleted', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
                         current_user),
        HINT = 'log a new run instead; only the store owner may change stored records';
END
$$;

-- Rows of a table with a run_id column are added to RUNNING runs only (statement level,
-- over the transition table `added`: the distinct runs of a batch, then one index lookup
-- per run, not one per metric point). A run that does not exist is left to the foreign key.
CREATE FUNCTION sqltrack.require_running_run() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid text;
    status text;
BEGIN
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NULL;
    END IF;
    FOR rid IN SELECT DISTINCT a.run_id FROM added a LOOP
        SELECT r.status INTO status FROM sqltrack.runs r WHERE r.run_id = rid;
        IF status <> 'RUNNING' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'insufficient_privilege',
                MESSAGE = format('sqltrack: run %s is %s, not RUNNING; role %s may not add '
                                 'rows to %I.%I of an ended run', rid, status, current_user,
                                 TG_TABLE_SCHEMA, TG_TABLE_NAME),
                HINT = 'log to a running run (start a new run)';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- Chunks (artifact_chunks, model_chunks) are added to the artifacts or models of RUNNING
-- runs only. TG_ARGV[0]: the parent table in schema sqltrack; TG_ARGV[1]: the key column.
CREATE FUNCTION sqltrack.require_running_parent() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT r.run_id, r.status FROM sqltrack.runs r WHERE r.run_id IN '
                   '(SELECT p.run_id FROM sqltrack.%I p WHERE p.%I IN '
                   '(SELECT DISTINCT a.%I FROM added a)) AND r.status <> ''RUNNING'' LIMIT 1',
                   TG_ARGV[0], TG_ARGV[1], TG_ARGV[1])
        INTO bad;
    IF bad.run_id IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('sqltrack: run %s is %s, not RUNNING; role %s may not add rows to '
                             '%I.%I of an ended run', bad.run_id, bad.status, current_user,
                             TG_TABLE_SCHEMA, TG_TABLE_NAME),
            HINT = 'log to a running run (start a new run)';
    END IF;
    RETURN NULL;
END
$$;

-- An UPDATE that sqltrack itself makes, and nothing more: the columns named in TG_ARGV
-- never change, and with TG_ARGV[0] = 'while_running' the row's run must be RUNNING
-- (artifacts finished writing, datasets overwritten while their run runs). Tags take any
-- value at any time (MLflow sets tags on ended runs), but keep their run and key.
CREATE FUNCTION sqltrack.guard_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text;
    status text;
    first int := 0;
BEGIN
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF TG_ARGV[0] = 'while_running' THEN
        first := 1;
        SELECT r.status INTO status FROM sqltrack.runs r WHERE r.run_id = OLD.run_id;
        IF status IS DISTINCT FROM 'RUNNING' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'insufficient_privilege',
                MESSAGE = format('sqltrack: run %s is %s, not RUNNING; role %s may not change '
                                 'its rows of %I.%I', OLD.run_id, status, current_user,
                                 TG_TABLE_SCHEMA, TG_TABLE_NAME),
                HINT = 'the records of an ended run are final; log a new run instead';
        END IF;
    END IF;
    FOR i IN first .. TG_NARGS - 1 LOOP
        col := TG_ARGV[i];
        IF (to_jsonb(OLD) -> col) IS DISTINCT FROM (to_jsonb(NEW) -> col) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'insufficient_privilege',
                MESSAGE = format('sqltrack: role %s may not change column %s of %I.%I',
                                 current_user, col, TG_TABLE_SCHEMA, TG_TABLE_NAME),
                HINT = 'only the store owner may change stored records';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

-- A run changes once: RUNNING -> FINISHED / FAILED / KILLED, setting status and end_time
-- (end_db_user records the login that ended it). An ended run never changes, so it can
-- never be reopened; nothing else of a run changes while it runs.
CREATE FUNCTION sqltrack.guard_run_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ending boolean := OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING';
    kept text[] := ARRAY['status', 'end_time'];
BEGIN
    IF ending THEN
        NEW.end_db_user := session_user;
        kept := array_append(kept, 'end_db_user');
    END IF;
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF OLD.status <> 'RUNNING' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('sqltrack: run %s is %s: role %s may not change an ended run '
                             '(its status, end time or any other column)', OLD.run_id,
                             OLD.status, current_user),
            HINT = 'an ended run is final; start a new run. Tags may still be set';
    END IF;
    IF (to_jsonb(NEW) - kept) IS DISTINCT FROM (to_jsonb(OLD) - kept) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('sqltrack: role %s may only end run %s (set its status and '
                             'end_time), not change its other columns', current_user,
                             OLD.run_id),
            HINT = 'only the store owner may change stored records';
    END IF;
    RETURN NEW;
END
$$;

-- Every role sqltrack db grant gave access reads every dataset table, also those logged
-- after the grant by a writer (PostgreSQL's default privileges only cover tables the
-- granting role creates): the role publishing the table, which owns it, shares it in the
-- same transaction, and gives the store owner SELECT WITH GRANT OPTION so that a reader
-- granted later can be given it too.
CREATE FUNCTION sqltrack.share_dataset_table() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t regclass := to_regclass(NEW.table_name);
    owner_role name;
    grantee record;
BEGIN
    IF t IS NULL THEN
        RETURN NULL;  -- a catalog row without its table has nothing to share
    END IF;
    SELECT pg_get_userbyid(c.relowner) INTO owner_role FROM pg_class c WHERE c.oid = TG_RELID;
    IF NOT pg_has_role(current_user, owner_role, 'MEMBER') THEN
        EXECUTE format('GRANT SELECT ON %s TO %I WITH GRANT OPTION', t, owner_role);
    END IF;
    FOR grantee IN
        SELECT g.role_name FROM sqltrack.role_grants g JOIN pg_roles p ON p.rolname = g.role_name
        ORDER BY g.role_name
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO %I', t, grantee.role_name);
    END LOOP;
    RETURN NULL;
END
$$;

-- 2. The guards, table by table (what sqltrack itself writes is in sqltrack/roles.py).
CREATE TRIGGER runs_db_user BEFORE INSERT ON sqltrack.runs
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER runs_update BEFORE UPDATE ON sqltrack.runs
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_run_update();
CREATE TRIGGER runs_guard BEFORE DELETE OR TRUNCATE ON sqltrack.runs
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

CREATE TRIGGER experiments_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.experiments
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER experiment_tags_update BEFORE UPDATE ON sqltrack.experiment_tags
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_update('experiment_id', 'key');
CREATE TRIGGER experiment_tags_guard BEFORE DELETE OR TRUNCATE ON sqltrack.experiment_tags
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

CREATE TRIGGER params_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.params
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER params_running AFTER INSERT ON sqltrack.params
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();

CREATE TRIGGER metrics_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.metrics
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER metrics_running AFTER INSERT ON sqltrack.metrics
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();

CREATE TRIGGER tags_update BEFORE UPDATE ON sqltrack.tags
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_update('run_id', 'key');
CREATE TRIGGER tags_guard BEFORE DELETE OR TRUNCATE ON sqltrack.tags
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

CREATE TRIGGER artifacts_db_user BEFORE INSERT ON sqltrack.artifacts
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER artifacts_update BEFORE UPDATE ON sqltrack.artifacts
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_update(
        'while_running', 'artifact_id', 'run_id', 'name', 'media_type', 'created_at', 'db_user');
CREATE TRIGGER artifacts_guard BEFORE DELETE OR TRUNCATE ON sqltrack.artifacts
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER artifacts_running AFTER INSERT ON sqltrack.artifacts
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();
CREATE TRIGGER artifact_chunks_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.artifact_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER artifact_chunks_running AFTER INSERT ON sqltrack.artifact_chunks
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_parent('artifacts', 'artifact_id');

CREATE TRIGGER datasets_db_user BEFORE INSERT OR UPDATE ON sqltrack.datasets
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER datasets_update BEFORE UPDATE ON sqltrack.datasets
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_update('while_running', 'dataset_id', 'run_id', 'name');
CREATE TRIGGER datasets_guard BEFORE DELETE OR TRUNCATE ON sqltrack.datasets
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER datasets_running AFTER INSERT ON sqltrack.datasets
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();
CREATE TRIGGER datasets_share AFTER INSERT OR UPDATE OF table_name ON sqltrack.datasets
    FOR EACH ROW EXECUTE FUNCTION sqltrack.share_dataset_table();

CREATE TRIGGER pipeline_stages_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.pipeline_stages
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER pipeline_stages_running AFTER INSERT ON sqltrack.pipeline_stages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();
CREATE TRIGGER feature_transformations_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.feature_transformations
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER feature_transformations_running AFTER INSERT ON sqltrack.feature_transformations
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();

CREATE TRIGGER models_db_user BEFORE INSERT ON sqltrack.models
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER models_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.models
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER models_running AFTER INSERT ON sqltrack.models
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_run();
CREATE TRIGGER model_chunks_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.model_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER model_chunks_running AFTER INSERT ON sqltrack.model_chunks
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.require_running_parent('models', 'model_id');

CREATE TRIGGER journal_rejections_db_user BEFORE INSERT ON sqltrack.journal_rejections
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER journal_rejections_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.journal_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER schema_migrations_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

-- The hash chain (migration 0006_ledger): entries and digests are appended, never changed;
-- a chain's head only moves forward (the compare-and-set of an append), never away.
CREATE TRIGGER ledger_db_user BEFORE INSERT ON sqltrack.ledger
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER ledger_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON sqltrack.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER ledger_digests_db_user BEFORE INSERT ON sqltrack.ledger_digests
    FOR EACH ROW EXECUTE FUNCTION sqltrack.stamp_db_user();
CREATE TRIGGER ledger_digests_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.ledger_digests
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();
CREATE TRIGGER ledger_digest_heads_guard BEFORE UPDATE OR DELETE OR TRUNCATE
    ON sqltrack.ledger_digest_heads
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

CREATE FUNCTION sqltrack.guard_ledger_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF sqltrack.acts_as_owner(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF NEW.scope IS DISTINCT FROM OLD.scope OR NEW.seq < OLD.seq
       OR (NEW.seq = OLD.seq AND NEW.hash IS DISTINCT FROM OLD.hash) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format('sqltrack: role %s may only move the head of chain %s forward '
                             '(from entry %s), not to entry %s of chain %s', current_user,
                             OLD.scope, OLD.seq, NEW.seq, NEW.scope),
            HINT = 'the hash chain is appended to, never rewritten';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ledger_heads_update BEFORE UPDATE ON sqltrack.ledger_heads
    FOR EACH ROW EXECUTE FUNCTION sqltrack.guard_ledger_head();
CREATE TRIGGER ledger_heads_guard BEFORE DELETE OR TRUNCATE ON sqltrack.ledger_heads
    FOR EACH STATEMENT EXECUTE FUNCTION sqltrack.refuse_change();

-- 3. Who did it, in the lineage views (new columns go last: CREATE OR REPLACE VIEW keeps
-- the existing ones).
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
       CAST(EXTRACT(EPOCH FROM r.end_time - r.start_time) AS DOUBLE PRECISION)
           AS duration_seconds,
       r.git_commit,
       COALESCE(p.params, '{}'::jsonb) AS params,
       COALESCE(m.metrics, '{}'::jsonb) AS metrics,
       COALESCE(t.tags, '{}'::jsonb) AS tags,
       r.db_user
FROM sqltrack.runs r
JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id
LEFT JOIN (
    SELECT run_id, jsonb_object_agg(key, value) AS params
    FROM sqltrack.params GROUP BY run_id
) p ON p.run_id = r.run_id
LEFT JOIN (
    SELECT run_id, jsonb_object_agg(key, value) AS metrics
    FROM sqltrack.latest_metrics GROUP BY run_id
) m ON m.run_id = r.run_id
LEFT JOIN (
    SELECT run_id, jsonb_object_agg(key, value) AS tags
    FROM sqltrack.tags GROUP BY run_id
) t ON t.run_id = r.run_id;
