"""The store opens in an auditor's own tools: the duckdb CLI from PyPI and psql run the
documented queries, a plain ``duckdb.connect`` resolves ``sqltrack.runs``, the same
process can open the file right after tracker calls, a file the auditor may only read
serves the read commands, and read commands never create a store."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from audit_demo import build_demo

import sqltrack
from sqltrack.backends import duckdb as duck
from sqltrack.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DOC = ROOT / "docs" / "schema.md"
DUCKDB_CLI = Path(sys.executable).parent / "duckdb"  # pip's duckdb-cli (the test extra)


def documented_queries(demo) -> list[str]:
    """Every ```sql block of docs/schema.md with its '<...>' placeholders filled in from
    the demo store, so that the queries find rows."""
    values = {
        "run_id": demo.runs["rf-100"],
        "run_id_a": demo.runs["rf-50"],
        "run_id_b": demo.runs["rf-100"],
        "fingerprint": "fp-house-2",
        "metric_key": "loss",
        "experiment": "demo",
    }
    blocks = re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), flags=re.S)
    out = []
    for block in blocks:
        query = re.sub(r"'<([a-z_]+)>'", lambda m: "'" + values.get(m.group(1), "0") + "'", block)
        out.append(query.strip())
    return out


def _release_all() -> None:
    for f in list(duck._FILES.values()):
        with f.lock:
            f.close()


def test_duckdb_cli_from_pypi_runs_the_documented_queries(tmp_path, monkeypatch):
    assert DUCKDB_CLI.exists(), "install the test extra: pip install -e '.[test]' (duckdb-cli)"
    path = tmp_path / "tracking.duckdb"
    uri = f"duckdb:///{path}"
    with sqltrack.connect(uri) as tracker:
        demo = build_demo(tracker, uri, monkeypatch)
    _release_all()
    version = subprocess.run([DUCKDB_CLI, "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("v1.5"), version.stdout
    answered = 0
    for query in documented_queries(demo):
        done = subprocess.run(
            [DUCKDB_CLI, "-readonly", "-json", str(path), "-c", query],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "Error" not in done.stderr, (query, done.stderr)
        rows = json.loads(done.stdout or "[]")
        answered += bool(rows)
    assert answered >= 10, f"only {answered} documented queries found rows in the demo store"
    # the best-model question, as an auditor asks it, answered from the CLI's own output
    done = subprocess.run(
        [DUCKDB_CLI, "-readonly", "-json", str(path), "-c",
         "SELECT run_name FROM sqltrack.runs WHERE status = 'FAILED'"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(done.stdout) == [{"run_name": "rf-broken"}]


def test_psql_runs_the_documented_queries(pg_uri, monkeypatch):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as tracker:
        demo = build_demo(tracker, pg_uri, monkeypatch)
    answered = 0
    for query in documented_queries(demo):
        done = subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", pg_uri, "-c", query],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (query, done.stderr)
        answered += bool(done.stdout.strip())
    assert answered >= 10


def test_plain_duckdb_connect_resolves_the_sqltrack_schema(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SQLTRACK_URI", raising=False)
    with sqltrack.connect() as tracker:  # the default file
        tracker.create_experiment("plain")
        with tracker.start_run():
            tracker.log_metric("m", 1.0)
    _release_all()
    assert (tmp_path / "tracking.duckdb").exists()
    with duckdb.connect("tracking.duckdb") as con:
        assert con.execute("SELECT count(*) FROM sqltrack.runs").fetchall() == [(1,)]
    with duckdb.connect("tracking.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sqltrack.metrics").fetchall() == [(1,)]


def test_same_process_connections_right_after_tracker_calls(tmp_path):
    path = str(tmp_path / "tracking.duckdb")
    tracker = sqltrack.connect(f"duckdb:///{path}")
    try:
        tracker.create_experiment("same-process")
        run = tracker.start_run()
        for i in range(50):
            tracker.log_metric("m", float(i), step=i)
            tracker.log_param(f"p{i}", i)
            # a plain connection shares the tracker's database instance, even while the
            # journal's flusher is delivering the calls above
            with duckdb.connect(path) as con:
                con.execute("SELECT count(*) FROM sqltrack.params").fetchall()
            tracker.set_tag("t", str(i))
            assert tracker.get_run(run.run_id).params[f"p{i}"] == str(i)
            # right after a tracker call the file is free: a read-only instance opens
            with duckdb.connect(path, read_only=True) as con:
                count = con.execute("SELECT count(*) FROM sqltrack.metrics").fetchall()
            assert count == [(i + 1,)]
        # a user's connection left open: the tracker joins its instance and keeps working
        con = duckdb.connect(path)
        try:
            tracker.log_metric("m", 99.0, step=99)
            assert tracker.get_run(run.run_id).metrics["m"] == 99.0
            assert tracker.sql("SELECT count(*) FROM sqltrack.metrics")[1] == [(51,)]
            assert con.execute("SELECT count(*) FROM sqltrack.metrics").fetchall() == [(51,)]
        finally:
            con.close()
        tracker.end_run()
    finally:
        tracker.close()


def test_tracker_sql_returns_rows_arrow_and_pandas(store_uri):
    import pandas as pd
    import pyarrow as pa

    with sqltrack.connect(store_uri) as tracker:
        tracker.create_experiment("outputs")
        with tracker.start_run() as run:
            tracker.log_metrics({"a": 1.0, "b": 2.0})
        query = "SELECT key, value FROM sqltrack.metrics WHERE run_id = ? ORDER BY key"
        columns, rows = tracker.sql(query, [run.run_id])
        assert columns == ["key", "value"] and rows == [("a", 1.0), ("b", 2.0)]
        table = tracker.sql(query, [run.run_id], output="arrow")
        assert isinstance(table, pa.Table) and table.column("value").to_pylist() == [1.0, 2.0]
        frame = tracker.sql(query, [run.run_id], output="pandas")
        assert isinstance(frame, pd.DataFrame) and list(frame["key"]) == ["a", "b"]
        # a ? inside a string literal is text, not a placeholder
        assert tracker.sql("SELECT '?' AS q")[1] == [("?",)]
        assert tracker.sql("SELECT '?' AS q, ? AS v", ["x"])[1] == [("?", "x")]
        assert tracker.sql("SELECT '100%' AS pct")[1] == [("100%",)]
        with pytest.raises(sqltrack.InvalidInputError, match="1 \\? placeholder"):
            tracker.sql("SELECT ? AS v")
        with pytest.raises(sqltrack.InvalidInputError, match="output 'json'"):
            tracker.sql("SELECT 1", output="json")  # type: ignore[call-overload]


def _without_root_powers() -> list[str]:
    """Run a command as this user without the capabilities that let root ignore file
    permissions, so that a read-only file is read-only for it too."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test read-only files as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


_READER = """
import sys, sqltrack
uri = sys.argv[1]
t = sqltrack.connect(uri, read_only=True)
print("runs", t.sql("SELECT count(*) FROM sqltrack.runs")[1][0][0])
t.close()
w = sqltrack.connect(uri)  # may not write: reads work, a write is refused clearly
print("experiments", len(w.list_experiments()))
try:
    w.create_experiment("intruder")
except sqltrack.SqltrackError as exc:
    print("refused", type(exc).__name__, exc)
"""


def test_read_only_file_and_folder_serve_the_read_commands(tmp_path):
    folder = tmp_path / "audit"
    folder.mkdir()
    path = folder / "tracking.duckdb"
    uri = f"duckdb:///{path}"
    with sqltrack.connect(uri) as tracker:
        tracker.create_experiment("frozen")
        with tracker.start_run(run_name="r1"):
            tracker.log_param("model", "rf")
    _release_all()
    shutil.rmtree(str(path) + ".journal", ignore_errors=True)
    before = sorted(p.name for p in folder.iterdir())
    path.chmod(0o444)
    folder.chmod(0o555)
    env = {**os.environ, "SQLTRACK_JOURNAL_DIR": str(tmp_path / "no-journal")}
    try:
        prefix = _without_root_powers()
        cli = [*prefix, sys.executable, "-m", "sqltrack"]
        runs = subprocess.run(
            [*cli, "runs", "--uri", uri, "--format", "json"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert runs.returncode == 0, runs.stderr
        assert [r["run_name"] for r in json.loads(runs.stdout)] == ["r1"]
        sql = subprocess.run(
            [*cli, "sql", "SELECT value FROM sqltrack.params", "--uri", uri, "--format", "csv"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert sql.returncode == 0 and sql.stdout.splitlines() == ["value", "rf"], sql.stderr
        lib = subprocess.run(
            [*prefix, sys.executable, "-c", _READER, uri],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert lib.returncode == 0, lib.stderr
        lines = lib.stdout.splitlines()
        assert lines[:2] == ["runs 1", "experiments 1"], lib.stdout
        assert lines[2].startswith("refused TerminalBackendError") and "read-only" in lines[2]
        assert "Traceback" not in lib.stderr
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert sorted(p.name for p in folder.iterdir()) == before  # no WAL, no journal
    with sqltrack.connect(uri, read_only=True) as reader:
        assert [e.name for e in reader.list_experiments()] == ["frozen"]


@pytest.mark.parametrize("command", ["runs", "sql", "experiments", "show"])
def test_read_commands_on_a_missing_path_create_nothing(tmp_path, capsys, command):
    path = tmp_path / "typo.duckdb"
    args = {"sql": ["SELECT 1"], "show": ["0" * 32]}.get(command, [])
    code = cli_main([command, *args, "--uri", f"duckdb:///{path}"])
    err = capsys.readouterr().err
    assert code == 1 and str(path) in err and "no DuckDB store" in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no store, no WAL, no journal


def test_connect_read_only_on_a_missing_path_is_not_found(tmp_path):
    path = tmp_path / "nothing.duckdb"
    with pytest.raises(sqltrack.NotFoundError, match=re.escape(str(path))):
        sqltrack.connect(f"duckdb:///{path}", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_memory_store_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with sqltrack.connect("duckdb:///:memory:") as tracker:
        tracker.create_experiment("ephemeral")
        with tracker.start_run():
            tracker.log_metric("m", 1.0)
        assert tracker.sql("SELECT count(*) FROM sqltrack.metrics")[1] == [(1,)]
        with pytest.raises(sqltrack.InvalidInputError, match="DELETE"):
            tracker.sql("DELETE FROM sqltrack.metrics")
        assert tracker.sql("SELECT count(*) FROM sqltrack.metrics")[1] == [(1,)]
    assert list(tmp_path.iterdir()) == []


def test_a_relative_path_that_looks_absolute_gets_the_four_slashes_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "elsewhere"
    absolute.mkdir()
    relative = str(absolute / "x.duckdb").lstrip("/")  # duckdb:///tmp/... lost a slash
    with pytest.raises(sqltrack.InvalidInputError, match="four slashes") as info:
        sqltrack.connect(f"duckdb:///{relative}")
    assert f"duckdb:////{relative}" in str(info.value)
    assert list(tmp_path.iterdir()) == [absolute] and list(absolute.iterdir()) == []


def test_a_store_under_the_old_default_name_is_found_and_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SQLTRACK_URI", raising=False)
    old = tmp_path / "sqltrack.duckdb"
    con = duckdb.connect(":memory:")  # a store as sqltrack 0.1 made it: a file called sqltrack
    con.execute(f"ATTACH '{old}' AS store (STORAGE_VERSION 'v1.5.0')")
    con.execute("DETACH store")
    con.close()
    with sqltrack.connect() as tracker:  # no URI: the old file is the only store here
        assert tracker.uri == "duckdb:///sqltrack.duckdb"
        tracker.create_experiment("legacy")
        with tracker.start_run(run_name="still-works"):
            tracker.log_param("k", "v")
        assert tracker.sql("SELECT run_name FROM sqltrack.runs")[1] == [("still-works",)]
    assert not (tmp_path / "tracking.duckdb").exists()
    code = cli_main(["sql", "SELECT count(*) AS n FROM sqltrack.params", "--format", "json"])
    assert code == 0
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(sqltrack.InvalidInputError, match="may not be named"):
        sqltrack.connect(f"duckdb:///{other / 'sqltrack.duckdb'}")  # no new file by that name
    assert list(other.iterdir()) == []
