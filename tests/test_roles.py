"""Roles on a real PostgreSQL server (issue 9, points 4 and 5): `sqltrack db grant` makes
login roles readers or writers; the database, not sqltrack, refuses what they may not do;
the database login is recorded beside the user a client claims.

The roles are real cluster roles with names unique to this test session, created at its
start and dropped at its end; the tests connect as them (trust authentication).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import errors as pgerr
from psycopg import sql as pgsql

import sqltrack
from sqltrack import datasets, roles
from sqltrack.backends import open_backend
from sqltrack.cli import main
from tests.conftest import PG_DSN, _pg_connect, _reset_pg

pytestmark = pytest.mark.spark


@dataclass(frozen=True)
class Store:
    owner: str  # URIs of the one database, as each login
    reader: str
    writer: str
    other: str
    names: dict[str, str]


def _as(uri: str, role: str) -> str:
    rest = uri.split("@", 1)[1]
    return f"postgresql://{role}@{rest}"


@pytest.fixture(scope="session")
def role_names(pg_uri: str) -> Iterator[dict[str, str]]:
    prefix = f"sqltrack_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    names = {k: f"{prefix}_{k}" for k in ("reader", "writer", "other", "owner")}
    with _pg_connect(PG_DSN) as conn:
        for name in names.values():
            conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN").format(pgsql.Identifier(name)))
    yield names
    with _pg_connect(pg_uri) as conn:  # what they own and were granted in the test database
        conn.execute(
            pgsql.SQL("DROP OWNED BY {}").format(
                pgsql.SQL(", ").join(pgsql.Identifier(n) for n in names.values())
            )
        )
    with _pg_connect(PG_DSN) as conn:
        for name in names.values():
            conn.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(name)))


@pytest.fixture
def store(pg_uri: str, role_names: dict[str, str]) -> Iterator[Store]:
    """A fresh store made by the owner (the test session's login) with one finished run."""
    _reset_pg(pg_uri)
    owner = sqltrack.connect(pg_uri)
    owner.create_experiment("audit")
    owner.close()
    yield Store(
        pg_uri,
        _as(pg_uri, role_names["reader"]),
        _as(pg_uri, role_names["writer"]),
        _as(pg_uri, role_names["other"]),
        role_names,
    )
    _reset_pg(pg_uri)  # drops the writers' dataset tables before their roles are dropped


def _grant(uri: str, role: str, kind: str) -> roles.RoleGrant:
    backend = open_backend(uri)
    try:
        return roles.grant(backend, role, kind)
    finally:
        backend.close()


def _catalog_objects(uri: str) -> list[str]:
    with _pg_connect(uri) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'sqltrack' AND c.relkind IN ('r', 'v') ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def _snapshot(uri: str) -> dict[str, str]:
    """The content of every table of both schemas, as the owner sees it."""
    out = {}
    with _pg_connect(uri) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname IN ('sqltrack', 'sqltrack_data') "
            "AND c.relkind = 'r' ORDER BY 1, 2"
        ).fetchall()
        for schema_name, table in tables:
            digest = conn.execute(
                pgsql.SQL(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' "
                    "ORDER BY t::text)), '') FROM {} t"
                ).format(pgsql.Identifier(schema_name, table))
            ).fetchone()[0]
            out[f"{schema_name}.{table}"] = digest
    return out


def _refused(uri: str, statement: str | pgsql.Composable, params: tuple[Any, ...] = ()) -> str:
    """Run ``statement`` as the login of ``uri``; it must be refused for lack of privilege.
    Return the server's message."""
    with _pg_connect(uri) as conn:
        with pytest.raises(pgerr.InsufficientPrivilege) as info:
            conn.execute(statement, params or None)
    return str(info.value)


def _frame(spark: Any, n: int) -> Any:
    return spark.createDataFrame(
        [(i, f"row {i}", i * 0.5) for i in range(n)], "i int, s string, x double"
    )


def _log_run(uri: str, spark: Any, dataset_rows: int, name: str) -> tuple[str, int]:
    tracker = sqltrack.connect(uri)
    try:
        tracker.set_experiment("audit")
        with tracker.start_run(run_name=name) as run:
            tracker.log_params({"model": "rf", "numTrees": 5})
            tracker.log_metric("r2", 0.75)
            dataset = tracker.log_dataset(_frame(spark, dataset_rows), name="training")
        tracker.flush()
    finally:
        tracker.close()
    return run.run_id, dataset.dataset_id


# -- readers ------------------------------------------------------------------------------
def test_a_reader_reads_everything_also_datasets_logged_after_the_grant(store, spark):
    before, _ = _log_run(store.owner, spark, 3, "before-grant")
    done = _grant(store.owner, store.names["reader"], roles.READER)
    assert (done.kind, done.dataset_tables, done.not_shared) == ("reader", 1, ())
    _grant(store.owner, store.names["writer"], roles.WRITER)
    # Logged after the grant: by the owner, and by a writer (who owns its tables).
    after_owner, _ = _log_run(store.owner, spark, 4, "after-grant-owner")
    after_writer, _ = _log_run(store.writer, spark, 5, "after-grant-writer")

    objects = _catalog_objects(store.owner)
    assert {"runs", "params", "metrics", "datasets", "run_lineage", "role_grants"} <= set(objects)
    with _pg_connect(store.reader) as conn:
        for name in objects:
            conn.execute(
                pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier("sqltrack", name))
            )
        tables = conn.execute("SELECT table_name, row_count FROM sqltrack.datasets").fetchall()
        assert len(tables) == 3
        for table, rows in tables:
            schema_name, name = table.split(".")
            counted = conn.execute(
                pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier(schema_name, name))
            ).fetchone()[0]
            assert counted == rows

    reader = sqltrack.connect(store.reader, read_only=True)
    try:  # Spark's reader, as the reader's login, on a table a writer logged after the grant
        frame = reader.load_dataset(spark, after_writer)
        assert sorted(r.i for r in frame.collect()) == list(range(5))
        assert reader.get_run(before).params == reader.get_run(after_owner).params
        assert reader.get_run(after_writer).params == {"model": "rf", "numTrees": "5"}
        columns, rows = reader.sql("SELECT count(*) FROM sqltrack.run_lineage")
        assert rows[0][0] == 3
    finally:
        reader.close()


def test_every_write_of_a_reader_is_refused_and_changes_nothing(store, spark):
    run_id, _ = _log_run(store.owner, spark, 3, "r")
    _grant(store.owner, store.names["reader"], roles.READER)
    with _pg_connect(store.owner) as conn:
        table = conn.execute("SELECT table_name FROM sqltrack.datasets").fetchone()[0]
    t = pgsql.Identifier(*table.split("."))
    before = _snapshot(store.owner)
    attempts = [
        ("INSERT INTO sqltrack.experiments (name, created_by) VALUES ('x', 'x')", ()),
        ("INSERT INTO sqltrack.metrics VALUES (%s, 'r2', 1.0, 9, now())", (run_id,)),
        ("UPDATE sqltrack.params SET value = 'gbt' WHERE run_id = %s", (run_id,)),
        ("UPDATE sqltrack.runs SET status = 'RUNNING' WHERE run_id = %s", (run_id,)),
        ("DELETE FROM sqltrack.metrics WHERE run_id = %s", (run_id,)),
        ("DELETE FROM sqltrack.runs", ()),
        ("TRUNCATE sqltrack.tags", ()),
        (pgsql.SQL("INSERT INTO {} VALUES (99, 'x', 0.0)").format(t), ()),
        (pgsql.SQL("UPDATE {} SET s = 'changed'").format(t), ()),
        (pgsql.SQL("DELETE FROM {}").format(t), ()),
        (pgsql.SQL("DROP TABLE {}").format(t), ()),
        ("DROP VIEW sqltrack.run_lineage", ()),
        ("ALTER TABLE sqltrack.runs ADD COLUMN x TEXT", ()),
        ("CREATE TABLE sqltrack.x (a INT)", ()),
        ("CREATE TABLE sqltrack_data.x (a INT)", ()),
        ("CREATE VIEW sqltrack.v AS SELECT 1 AS a", ()),
        ("CREATE TABLE public.x (a INT)", ()),
        ("CREATE SCHEMA x", ()),
    ]
    for statement, params in attempts:
        _refused(store.reader, statement, params)
    reader = sqltrack.connect(store.reader)  # even opened for writing, sqltrack writes nothing
    try:
        with pytest.raises(sqltrack.PermissionDeniedError, match="permission denied"):
            reader.start_run(run_name="not-allowed")
            reader.flush()
    finally:
        reader.close()
    assert _snapshot(store.owner) == before


# -- writers ------------------------------------------------------------------------------
def test_a_writer_logs_a_full_run_but_cannot_change_it(store, spark, pipeline_model):
    _grant(store.owner, store.names["writer"], roles.WRITER)
    writer = sqltrack.connect(store.writer)
    try:
        writer.set_experiment("audit")
        orders = _orders(spark)
        with writer.start_run(run_name="full") as run:
            writer.log_params({"model": "lr"})
            writer.log_metric("r2", 0.5)
            writer.set_tag("team", "ml")
            writer.log_dataset(orders, name="training")
            writer.log_spark_model(pipeline_model, "model")
            writer.log_text("notes", "notes.txt")
        writer.set_tag("reviewed", "yes", run_id=run.run_id)  # MLflow allows tags on ended runs
        writer.flush()
        info = writer.get_run(run.run_id).info
        assert info.status == "FINISHED" and writer.get_run(run.run_id).tags["reviewed"] == "yes"
        assert (info.db_user, info.end_db_user) == (store.names["writer"],) * 2
        with pytest.raises(sqltrack.ConflictError, match="is FINISHED"):
            writer.log_metric("r2", 0.99, run_id=run.run_id)
            writer.flush()
        # The registry: a writer registers the finished run's model and deploys it.
        version = writer.register_model(f"runs:/{run.run_id}/model", "churn")
        writer.set_registered_model_tag("churn", "team", "ml")
        writer.set_registered_model_tag("churn", "team", "risk")  # the last value wins
        writer.set_registered_model_alias("churn", "champion", version.version)
        writer.deploy(
            "models:/churn@champion", "churn-eu", "external", {"endpoint": "e", "region": "eu"}
        )
    finally:
        writer.close()
    rid = run.run_id
    before = _snapshot(store.owner)
    refusals = {
        "UPDATE sqltrack.params SET value = 'gbt' WHERE run_id = %s": "written once",
        "DELETE FROM sqltrack.metrics WHERE run_id = %s": "written once",
        "UPDATE sqltrack.runs SET status = 'RUNNING', end_time = NULL WHERE run_id = %s": (
            "may not change an ended run"
        ),
        "UPDATE sqltrack.runs SET end_time = now() WHERE run_id = %s": "is FINISHED",
        "UPDATE sqltrack.runs SET user_name = 'mallory' WHERE run_id = %s": "is FINISHED",
        "INSERT INTO sqltrack.metrics VALUES (%s, 'r2', 0.99, 7, now())": "not RUNNING",
        "INSERT INTO sqltrack.params VALUES (%s, 'extra', '1')": "not RUNNING",
        "DELETE FROM sqltrack.tags WHERE run_id = %s": "written once",
        "UPDATE sqltrack.tags SET run_id = 'f' || substr(run_id, 2) WHERE run_id = %s": (
            "may not change column run_id"
        ),
        "UPDATE sqltrack.datasets SET row_count = 1 WHERE run_id = %s": "not RUNNING",
        "UPDATE sqltrack.artifacts SET sha256 = 'x' WHERE run_id = %s": "not RUNNING",
        "UPDATE sqltrack.models SET sha256 = 'x' WHERE run_id = %s": "written once",
        "DELETE FROM sqltrack.datasets WHERE run_id = %s": "written once",
        "DELETE FROM sqltrack.runs WHERE run_id = %s": "written once",
        "INSERT INTO sqltrack.model_chunks SELECT model_id, 999, '\\x00' FROM "
        "sqltrack.models WHERE run_id = %s": "not RUNNING",
        "INSERT INTO sqltrack.artifact_chunks SELECT artifact_id, 999, '\\x00' FROM "
        "sqltrack.artifacts WHERE run_id = %s": "not RUNNING",
    }
    # A DBA who grants the writer every privilege still cannot make it edit records: the
    # triggers refuse what the privileges would allow.
    with _pg_connect(store.owner) as conn:
        conn.execute(
            pgsql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA sqltrack TO {}").format(
                pgsql.Identifier(store.names["writer"])
            )
        )
    for statement, expected in refusals.items():
        message = _refused(store.writer, statement, (rid,))
        assert expected in message, (statement, message)
    for statement in (
        "TRUNCATE sqltrack.metrics",
        "TRUNCATE sqltrack.runs CASCADE",
    ):
        assert "written once" in _refused(store.writer, statement)
    for statement in (  # the registry's own guard (0011) refuses every role
        "DELETE FROM sqltrack.model_versions WHERE run_id = %s",
        "UPDATE sqltrack.model_versions SET model_sha256 = 'x' WHERE run_id = %s",
    ):
        with _pg_connect(store.writer) as conn, pytest.raises(pgerr.RaiseException) as info:
            conn.execute(statement, (rid,))
        assert "append-only" in str(info.value), statement
    assert _snapshot(store.owner) == before
    # Through sqltrack the refusal is a PermissionDeniedError naming the run and the fix.
    backend = open_backend(store.writer)
    try:
        with pytest.raises(sqltrack.PermissionDeniedError) as info, backend.session() as s:
            s.execute("UPDATE sqltrack.runs SET status = 'RUNNING' WHERE run_id = ?", (rid,))
        assert rid in str(info.value) and "ended run" in str(info.value)
        assert "start a new run" in str(info.value)
    finally:
        backend.close()


def test_a_running_run_changes_only_by_ending_once(store):
    _grant(store.owner, store.names["writer"], roles.WRITER)
    writer = sqltrack.connect(store.writer)
    try:
        writer.set_experiment("audit")
        run = writer.start_run(run_name="live")
        writer.log_param("alpha", "1")
        writer.flush()
        rid = run.run_id
        for statement in (
            "UPDATE sqltrack.runs SET user_name = 'mallory' WHERE run_id = %s",
            "UPDATE sqltrack.runs SET db_user = 'mallory' WHERE run_id = %s",
            "UPDATE sqltrack.runs SET start_time = now() WHERE run_id = %s",
        ):
            assert "may only end run" in _refused(store.writer, statement, (rid,))
        # Refused by the privileges already (a writer has no UPDATE on params).
        assert "permission denied for table params" in _refused(
            store.writer, "UPDATE sqltrack.params SET value = '2' WHERE run_id = %s", (rid,)
        )
        writer.end_run()
        writer.flush()
        assert writer.get_run(rid).info.status == "FINISHED"
    finally:
        writer.close()


def test_sqltracks_own_operations_work_as_a_writer(store, spark, tmp_path):
    _grant(store.owner, store.names["writer"], roles.WRITER)
    # A run whose process died: its lease expired and its pid is gone.
    crashed = sqltrack.connect(store.writer)
    crashed.set_experiment("audit")
    run = crashed.start_run(run_name="crashed")
    crashed.log_metric("loss", 1.0)
    crashed.flush()
    crashed.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with _pg_connect(store.owner) as conn:
        conn.execute(
            "UPDATE sqltrack.run_leases SET expires_at = heartbeat_at, process_id = %s, "
            "process_start = NULL WHERE run_id = %s",
            (int(dead.stdout), run.run_id),
        )
    assert main(["runs", "end-stale", "--uri", store.writer, "--format", "json"]) == 0
    writer = sqltrack.connect(store.writer)
    try:
        ended = writer.get_run(run.run_id)
        assert (
            ended.info.status == "FAILED" and "lease expired" in ended.tags["sqltrack.end_reason"]
        )
        assert ended.info.end_db_user == store.names["writer"]
        # Overwriting a dataset while the run runs, and the janitor of its staging.
        writer.set_experiment("audit")
        with writer.start_run(run_name="overwrite") as live:
            writer.log_dataset(_frame(spark, 2), name="training")
            writer.log_dataset(_frame(spark, 3), name="training", mode="overwrite")
            _old_staging(writer, spark, live.run_id)
            assert len(datasets.engine(writer.backend).staging_areas(writer.backend)) == 1
            assert main(["gc", "--uri", store.writer, "--format", "json"]) == 0
            assert datasets.engine(writer.backend).staging_areas(writer.backend) == []
        assert writer.load_dataset(spark, live.run_id).count() == 3
    finally:
        writer.close()


def _old_staging(writer: Any, spark: Any, run_id: str) -> None:
    import time

    import pyarrow as pa

    spec = datasets.WriteSpec.new(
        writer.backend.full_uri(),
        run_id,
        "orphan",
        overwrite=False,
        ordered=False,
        spark_schema=spark.createDataFrame([(1,)], "a int").schema.json(),
        arrow_schema=pa.schema([("a", pa.int32())]),
    )
    import dataclasses

    name = datasets.staging_name(time.time() - datasets.STAGING_MAX_AGE - 60, "0" * 16)
    datasets.engine(writer.backend).prepare(writer.backend, dataclasses.replace(spec, staging=name))


def test_an_owner_without_superuser_grants_and_shares_writers_tables(store, spark):
    """The usual deployment: the store belongs to a plain role (no SUPERUSER, not a member
    of the writers). A reader granted after a writer logged a dataset still reads it: the
    publishing transaction gave the owner SELECT WITH GRANT OPTION on the writer's table."""
    owner = store.names["owner"]
    _reset_pg(store.owner)
    database = store.owner.rsplit("/", 1)[1]
    with _pg_connect(store.owner) as conn:
        conn.execute(
            pgsql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                pgsql.Identifier(database), pgsql.Identifier(owner)
            )
        )
    owner_uri = _as(store.owner, owner)
    tracker = sqltrack.connect(owner_uri)  # the owner's first use creates the schema
    tracker.create_experiment("audit")
    tracker.close()
    _grant(owner_uri, store.names["writer"], roles.WRITER)
    run_id, _ = _log_run(store.writer, spark, 3, "by-writer")
    done = _grant(owner_uri, store.names["reader"], roles.READER)
    assert (done.owner, done.dataset_tables, done.not_shared) == (owner, 1, ())
    with _pg_connect(store.reader) as conn:
        table = conn.execute("SELECT table_name FROM sqltrack.datasets").fetchone()[0]
        rows = conn.execute(
            pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier(*table.split(".")))
        ).fetchone()[0]
    assert rows == 3
    # The owner keeps full rights: its edit of a finished run goes through.
    with _pg_connect(owner_uri) as conn:
        changed = conn.execute(
            "UPDATE sqltrack.params SET value = 'gbt' WHERE run_id = %s AND key = 'model'",
            (run_id,),
        ).rowcount
    assert changed == 1
    with pytest.raises(sqltrack.PermissionDeniedError, match="owner"):
        _grant(store.writer, store.names["other"], roles.READER)


# -- the hash chain -----------------------------------------------------------------------
def test_the_hash_chain_is_append_only_for_writers(store, capsys):
    _grant(store.owner, store.names["writer"], roles.WRITER)
    _grant(store.owner, store.names["reader"], roles.READER)
    writer = sqltrack.connect(store.writer)
    try:
        writer.set_experiment("audit")
        with writer.start_run(run_name="chained") as run:
            writer.log_param("alpha", "1")
            writer.log_metrics({"loss": 0.5, "acc": 0.9})
        writer.flush()
    finally:
        writer.close()
    # A writer appends to the chain and records digests; an auditor verifies.
    assert main(["verify", "--digest", "--uri", store.writer, "--format", "json"]) == 0
    taken = json.loads(capsys.readouterr().out)
    assert taken["ok"] and taken["digest"]
    assert main(["verify", "--uri", store.reader, "--against", taken["digest"]]) == 0
    capsys.readouterr()
    login = store.names["writer"]
    with _pg_connect(store.owner) as conn:
        logins = conn.execute(
            "SELECT DISTINCT db_user FROM sqltrack.ledger WHERE scope = %s", (run.run_id,)
        ).fetchall()
        digest_login = conn.execute("SELECT db_user FROM sqltrack.ledger_digests").fetchone()
        # A DBA who grants the writer everything still cannot make it rewrite the chain.
        conn.execute(
            pgsql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA sqltrack TO {}").format(
                pgsql.Identifier(login)
            )
        )
    assert logins == [(login,)] and digest_login == (login,)
    before = _snapshot(store.owner)
    rid = (run.run_id,)
    for statement, params, expected in (
        ("UPDATE sqltrack.ledger SET row_digest = 'x' WHERE scope = %s", rid, "written once"),
        ("DELETE FROM sqltrack.ledger WHERE scope = %s", rid, "written once"),
        ("TRUNCATE sqltrack.ledger", (), "written once"),
        ("UPDATE sqltrack.ledger_digests SET chains = 0", (), "written once"),
        ("DELETE FROM sqltrack.ledger_digest_heads", (), "written once"),
        ("DELETE FROM sqltrack.ledger_heads WHERE scope = %s", rid, "written once"),
        ("UPDATE sqltrack.ledger_heads SET seq = seq - 1 WHERE scope = %s", rid, "forward"),
        ("UPDATE sqltrack.ledger_heads SET hash = 'x' WHERE scope = %s", rid, "forward"),
        ("UPDATE sqltrack.ledger_heads SET scope = 'y' WHERE scope = %s", rid, "forward"),
    ):
        assert expected in _refused(store.writer, statement, params), statement
    assert _snapshot(store.owner) == before


# -- who did it ---------------------------------------------------------------------------
def test_the_database_login_is_recorded_and_cannot_be_spoofed(store, capsys):
    _grant(store.owner, store.names["writer"], roles.WRITER)
    writer = sqltrack.connect(store.writer)
    try:
        writer.set_experiment("audit")
        with writer.start_run(run_name="who") as run:
            pass
        writer.flush()
    finally:
        writer.close()
    login = store.names["writer"]
    spoofed = uuid.uuid4().hex
    with _pg_connect(store.writer) as conn:  # a client naming another login
        conn.execute(
            "INSERT INTO sqltrack.runs (run_id, experiment_id, run_name, status, user_name, "
            "start_time, db_user) SELECT %s, experiment_id, 'spoof', 'RUNNING', 'alice', now(), "
            "'alice' FROM sqltrack.experiments WHERE name = 'audit'",
            (spoofed,),
        )
        conn.execute(
            "UPDATE sqltrack.runs SET status = 'KILLED', end_time = now(), end_db_user = 'alice' "
            "WHERE run_id = %s",
            (spoofed,),
        )
        row = conn.execute(
            "SELECT user_name, db_user, end_db_user FROM sqltrack.runs WHERE run_id = %s",
            (spoofed,),
        ).fetchone()
    assert row == ("alice", login, login)
    assert main(["show", run.run_id, "--uri", store.owner, "--format", "json"]) == 0
    shown = {r["key"]: r["value"] for r in json.loads(capsys.readouterr().out)}
    assert shown["db_user"] == login and shown["end_db_user"] == login
    assert main(["lineage", run.run_id, "--uri", store.owner]) == 0
    assert f"database login {login}" in capsys.readouterr().out
    with _pg_connect(store.owner) as conn:
        lineage = conn.execute(
            "SELECT db_user FROM sqltrack.run_lineage WHERE run_id = %s", (run.run_id,)
        ).fetchone()
        summary = conn.execute(
            "SELECT db_user FROM sqltrack.run_summary WHERE run_id = %s", (run.run_id,)
        ).fetchone()
    assert lineage == summary == (login,)


def test_duckdb_records_no_login_and_has_no_roles(tmp_path, capsys):
    uri = f"duckdb:///{tmp_path / 'store.duckdb'}"
    tracker = sqltrack.connect(uri)
    with tracker.start_run() as run:
        pass
    info = tracker.get_run(run.run_id).info
    tracker.close()
    assert (info.db_user, info.end_db_user) == (None, None)
    assert main(["db", "grant", "--reader", "auditor", uri]) == 1
    assert "has no logins" in capsys.readouterr().err


# -- granting -----------------------------------------------------------------------------
def test_grant_refuses_what_it_cannot_honour(store, capsys):
    with pytest.raises(sqltrack.NotFoundError, match="CREATE ROLE"):
        _grant(store.owner, "sqltrack_no_such_role_" + uuid.uuid4().hex[:8], roles.READER)
    with _pg_connect(store.owner) as conn:
        me = conn.execute("SELECT current_user").fetchone()[0]
    with pytest.raises(sqltrack.InvalidInputError, match="superuser|owner"):
        _grant(store.owner, me, roles.READER)
    with pytest.raises(sqltrack.InvalidInputError, match="not one of reader, writer"):
        _grant(store.owner, store.names["reader"], "admin")
    _grant(store.owner, store.names["writer"], roles.WRITER)
    with pytest.raises(sqltrack.PermissionDeniedError, match="owner"):
        _grant(store.writer, store.names["other"], roles.WRITER)  # a writer grants nothing
    assert main(["db", "grant", store.owner]) == 2
    assert "--reader ROLE or --writer ROLE" in capsys.readouterr().err


def test_cli_grant_and_a_writer_made_reader_can_no_longer_write(store, capsys):
    other = store.names["other"]
    assert main(["db", "grant", "--writer", other, store.owner]) == 0
    assert f"{other} is a writer" in capsys.readouterr().out
    with _pg_connect(store.other) as conn:
        conn.execute("INSERT INTO sqltrack.experiments (name, created_by) VALUES ('w', 'w')")
    assert main(["db", "grant", "--reader", other, "--uri", store.owner]) == 0
    assert f"{other} is a reader" in capsys.readouterr().out
    _refused(store.other, "INSERT INTO sqltrack.experiments (name, created_by) VALUES ('r', 'r')")
    _refused(store.other, "CREATE TABLE sqltrack_data.x (a INT)")
    with _pg_connect(store.owner) as conn:
        grants = conn.execute(
            "SELECT role_name, kind, granted_by FROM sqltrack.role_grants"
        ).fetchall()
        me = conn.execute("SELECT session_user").fetchone()[0]
    assert grants == [(other, "reader", me)]


# -- fixtures for the model -----------------------------------------------------------------
def _orders(spark: Any) -> Any:
    rows = [("Paris", 1.0, 1), ("Lyon", 2.5, 0), ("Nice", 0.5, 1), ("Lyon", 4.0, 0)] * 4
    return spark.createDataFrame(rows, ["city", "price", "label"])


@pytest.fixture(scope="module")
def pipeline_model(spark: Any) -> Any:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer

    return Pipeline(stages=[StringIndexer(inputCol="city", outputCol="city_idx")]).fit(
        _orders(spark)
    )


def test_the_roles_benchmark_runs(pg_uri, tmp_path):
    """benchmarks/roles.py at a tiny size: its rows have figures and anchors (no timing
    is asserted)."""
    import argparse

    from benchmarks import roles as bench

    args = argparse.Namespace(size="tiny", backends=("postgres",), pg_dsn=PG_DSN)
    rows = bench.run(args)
    assert len(rows) == 3
    for row in rows:
        assert row["rate"] > 0 and row["anchor_figure"] > 0 and row["ratio"] > 0, row
