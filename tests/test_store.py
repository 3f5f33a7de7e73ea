"""Connecting, URIs, schema migrations, and several processes on one store."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sqltrack
from sqltrack import schema
from sqltrack.cli import main as cli_main


def test_duckdb_uri_forms_and_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SQLTRACK_URI", raising=False)
    with sqltrack.connect() as t:
        t.create_experiment("default-file")
    assert (tmp_path / "tracking.duckdb").exists()
    with sqltrack.connect("duckdb:///relative.duckdb") as t:
        t.create_experiment("relative")
    assert (tmp_path / "relative.duckdb").exists()
    absolute = tmp_path / "abs" / "store.duckdb"
    absolute.parent.mkdir()
    with sqltrack.connect(f"duckdb:///{absolute}") as t:  # duckdb:////abs/path
        t.create_experiment("absolute")
    assert absolute.exists()
    monkeypatch.setenv("SQLTRACK_URI", "duckdb:///from-env.duckdb")
    with sqltrack.connect() as t:
        assert t.uri == "duckdb:///from-env.duckdb"
    with sqltrack.connect("duckdb:///relative.duckdb") as t:  # the argument wins
        assert [e.name for e in t.list_experiments()] == ["relative"]


def test_postgres_uri_forms(pg_uri):
    with sqltrack.connect(pg_uri.replace("postgresql://", "postgresql+psycopg://")) as t:
        t.create_experiment("psycopg-form")
        assert "psycopg-form" in [e.name for e in t.list_experiments()]


@pytest.mark.parametrize(
    ("uri", "error", "match"),
    [
        ("mysql://root@localhost/db", sqltrack.InvalidInputError, "unknown store URI scheme"),
        ("sqltrack.duckdb", sqltrack.InvalidInputError, "not a URI"),
        ("duckdb://", sqltrack.InvalidInputError, "no file path"),
        ("duckdb:////no/such/folder/x.duckdb", sqltrack.InvalidInputError, "does not exist"),
        ("postgresql://root@127.0.0.1:1/test", sqltrack.TransientBackendError, "127.0.0.1:1"),
    ],
)
def test_bad_uris_raise_clear_errors(uri, error, match):
    with pytest.raises(error, match=match):
        sqltrack.connect(uri)


def _ddl_copy(tmp_path: Path) -> Path:
    root = tmp_path / "ddl"
    shutil.copytree(schema.ddl_root(), root)
    return root


def test_schema_is_created_and_recorded(tracker):
    names, rows = tracker.sql("SELECT name, checksum FROM sqltrack.schema_migrations ORDER BY name")
    expected = schema.migrations(tracker.backend.capabilities.name)
    assert rows == [(m.name, m.checksum) for m in expected]
    assert schema.pending(tracker.backend) == []


def test_older_schema_names_the_upgrade_command(store_uri, tmp_path, monkeypatch):
    sqltrack.connect(store_uri).close()
    root = _ddl_copy(tmp_path)
    for backend in ("duckdb", "postgres"):
        (root / backend / "9999_extra.sql").write_text(
            "CREATE TABLE sqltrack.extra_for_test (x INTEGER);\n"
        )
    monkeypatch.setattr(schema, "ddl_root", lambda: root)
    with pytest.raises(sqltrack.SchemaOutOfDateError, match="sqltrack db upgrade "):
        sqltrack.connect(store_uri)
    assert cli_main(["db", "upgrade", store_uri]) == 0
    with sqltrack.connect(store_uri) as t:
        assert t.sql("SELECT count(*) FROM sqltrack.extra_for_test")[1] == [(0,)]
        assert ("9999_extra.sql",) in t.sql("SELECT name FROM sqltrack.schema_migrations")[1]


def test_edited_migration_is_refused(store_uri, tmp_path, monkeypatch):
    sqltrack.connect(store_uri).close()
    root = _ddl_copy(tmp_path)
    for backend in ("duckdb", "postgres"):
        first = root / backend / "0001_tracking.sql"
        first.write_text(first.read_text() + "\n-- edited\n")
    monkeypatch.setattr(schema, "ddl_root", lambda: root)
    with pytest.raises(sqltrack.SchemaOutOfDateError, match="checksum"):
        sqltrack.connect(store_uri)


def test_newer_database_asks_for_a_newer_sqltrack(tracker, store_uri):
    with tracker.backend.transaction() as s:
        s.execute(
            "INSERT INTO sqltrack.schema_migrations (name, checksum) "
            "VALUES ('9998_future.sql', 'x')"
        )
    with pytest.raises(sqltrack.SchemaOutOfDateError, match="upgrade the sqltrack package"):
        sqltrack.connect(store_uri)


# -- several processes ---------------------------------------------------------------


def _pg_worker(uri: str, shared_run: str, worker: int, n: int) -> None:
    t = sqltrack.connect(uri)
    with t.start_run(run_name=f"worker-{worker}"):
        for i in range(n):
            t.log_metric("m", float(i), step=i)
            t.log_metric("shared", float(worker), step=i, run_id=shared_run)
        t.log_params({f"w{worker}": worker})
        t.log_param(f"w{worker}", worker, run_id=shared_run)
        t.log_metrics({f"batch{k}": k for k in range(50)})
    t.close()


def test_four_processes_logging_to_postgres_lose_nothing(pg_uri):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    # First use from 4 processes at once also exercises concurrent schema creation.
    ctx = multiprocessing.get_context("spawn")
    with sqltrack.connect(pg_uri) as t:
        shared = t.start_run(run_name="shared").run_id
    procs = [ctx.Process(target=_pg_worker, args=(pg_uri, shared, w, 100)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with sqltrack.connect(pg_uri) as t:
        counts = dict(
            t.sql(
                "SELECT r.run_name, count(*) FROM sqltrack.metrics m JOIN sqltrack.runs r "
                "USING (run_id) GROUP BY r.run_name"
            )[1]
        )
        assert counts == {"shared": 400, **{f"worker-{w}": 150 for w in range(4)}}
        assert t.get_run(shared).params == {f"w{w}": str(w) for w in range(4)}


def test_concurrent_first_use_of_empty_postgres(pg_uri):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    code = "import sqltrack, sys; sqltrack.connect(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_uri]) for _ in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    with sqltrack.connect(pg_uri) as t:
        rows = t.sql("SELECT name FROM sqltrack.schema_migrations")[1]
        assert len(rows) == len(schema.migrations("postgres"))


_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def test_busy_duckdb_file_waits_then_fails_naming_the_holder(tmp_path, monkeypatch):
    path = tmp_path / "busy.duckdb"
    sqltrack.connect(f"duckdb:///{path}").close()
    from sqltrack.backends import duckdb as duck

    duck._FILES.clear()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        monkeypatch.setenv("SQLTRACK_LOCK_TIMEOUT", "0.5")
        started = time.monotonic()
        with pytest.raises(sqltrack.StoreBusyError, match=f"PID {holder.pid}"):
            sqltrack.connect(f"duckdb:///{path}")
        assert time.monotonic() - started >= 0.5
        duck._FILES.clear()
        monkeypatch.setenv("SQLTRACK_LOCK_TIMEOUT", "30")
        with sqltrack.connect(f"duckdb:///{path}") as t:  # waits for the holder to finish
            t.create_experiment("after-wait")
        assert holder.poll() == 0
    finally:
        holder.kill()
        holder.wait()
        duck._FILES.clear()


_DUCK_WORKER = textwrap.dedent("""
    import sys, time, sqltrack
    t = sqltrack.connect(sys.argv[1])
    run = t.start_run(run_name=sys.argv[2])
    for i in range(8):
        t.log_metric("m", i, step=i)
        time.sleep(0.35)  # idle: the file is released to the other process
    t.end_run()
""")


def test_two_processes_take_turns_on_a_duckdb_file(tmp_path):
    uri = f"duckdb:///{tmp_path / 'shared.duckdb'}"
    sqltrack.connect(uri).close()
    from sqltrack.backends import duckdb as duck

    duck._FILES.clear()
    procs = [subprocess.Popen([sys.executable, "-c", _DUCK_WORKER, uri, f"p{i}"]) for i in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    with sqltrack.connect(uri) as t:
        frame = t.search_runs()
        assert sorted(frame["run_name"]) == ["p0", "p1"]
        assert set(frame["status"]) == {"FINISHED"}
        assert t.sql("SELECT count(*) FROM sqltrack.metrics")[1] == [(16,)]


def test_import_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import sqltrack; "
        "assert 'pyspark' not in sys.modules and 'pandas' not in sys.modules, sys.modules.keys(); "
        "assert 'spark_datasource' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
