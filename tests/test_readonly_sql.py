"""`sqltrack sql` and `Tracker.sql` are read-only by construction: write and escape attempts
on each backend are refused with a clear error and leave the store, the server and the
file system as they were; the layer under the parser refuses them on its own too."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

import sqltrack
from sqltrack.cli import main as cli_main

HOSTNAME = "/etc/hostname"


def _fill(text: str, **values: object) -> str:
    """Put the test's paths and ids into an attack text: @HOST, @TMP, @PATH, @PID."""
    values.setdefault("HOST", HOSTNAME)
    for name, value in values.items():
        text = text.replace("@" + name, str(value))
    return text


def _duckdb_attempts(path: str, tmp: Path) -> list[tuple[str, str]]:
    """(statement, what the error must name)."""
    return [(_fill(q, PATH=path, TMP=tmp), name) for q, name in [
        ("SELECT 1; COMMIT; USE memory; DETACH store; ATTACH '@PATH' AS rw; "
         "DELETE FROM rw.sqltrack.tags; BEGIN; SELECT 1", "more than one statement"),
        ("DELETE FROM sqltrack.tags", "DELETE"),
        ("UPDATE sqltrack.params SET value = 'forged'", "UPDATE"),
        ("INSERT INTO sqltrack.tags VALUES ('r', 'k', 'v')", "INSERT"),
        ("COPY sqltrack.runs TO '@TMP/leak.csv'", "COPY"),
        ("COPY (SELECT * FROM sqltrack.runs) TO '@TMP/leak.parquet' (FORMAT parquet)", "COPY"),
        ("ATTACH '@TMP/new.duckdb' AS n", "ATTACH"),
        ("ATTACH '@TMP/new.duckdb' AS n; CREATE TABLE n.t AS SELECT 1", "more than one"),
        ("INSTALL httpfs FROM 'http://127.0.0.1:9/'", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SELECT * FROM read_text('@HOST')", "read_text"),
        ("SELECT * FROM read_blob('@HOST')", "read_blob"),
        ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "read_csv"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
        ("SELECT * FROM read_json_auto('@HOST')", "read_json_auto"),
        ("SELECT * FROM read_parquet('@TMP/x.parquet')", "read_parquet"),
        ("SELECT * FROM parquet_metadata('@TMP/x.parquet')", "parquet_metadata"),
        ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
        ("SELECT * FROM glob('/etc/*')", "glob"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT * FROM query('SELECT * FROM sqltrack.tags')", "query"),
        ("SELECT * FROM query_table('sqltrack.tags')", "query_table"),
        ('SELECT * FROM "read_text"(\'@HOST\')', "read_text"),
        ("WITH d AS (DELETE FROM sqltrack.tags RETURNING *) SELECT * FROM d", "DELETE"),
        ("CREATE TABLE sqltrack.x AS SELECT 1", "CREATE"),
        ("CREATE MACRO m() AS 1", "CREATE"),
        ("DROP TABLE sqltrack.tags", "DROP"),
        ("ALTER TABLE sqltrack.tags ADD COLUMN x INTEGER", "ALTER"),
        ("TRUNCATE sqltrack.tags", "TRUNCATE"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CALL force_checkpoint()", "CALL"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("SELECT * FROM force_checkpoint()", "force_checkpoint"),
        ("EXPORT DATABASE '@TMP/export'", "parsed"),
        ("USE memory", "USE"),
        ("DETACH store", "DETACH"),
        ("BEGIN TRANSACTION", "TRANSACTION"),
        ("SELECT nextval('seq')", "nextval"),
        ("SELECT setseed(0.5)", "setseed"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
        ("SELECT ';'; DELETE FROM sqltrack.tags", "more than one"),
        ("SELECT 1 -- comment\n; DELETE FROM sqltrack.tags", "more than one"),
        ("SELECT * FROM sqltrack.runs FOR UPDATE", "LOCK"),
    ]]  # fmt: skip


def _postgres_attempts(victim_pid: int, tmp: str) -> list[tuple[str, str]]:
    return [(_fill(q, PID=victim_pid, TMP=tmp), name) for q, name in [
        ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
        ("SELECT pg_catalog.lo_from_bytea(0, 'x')", "lo_from_bytea"),
        ('SELECT "lo_from_bytea"(0, \'x\')', "lo_from_bytea"),
        ("SELECT lo_export(lo_from_bytea(0, 'x'), '@TMP/lo-export')", "lo_export"),
        ("SELECT lo_import('@HOST')", "lo_import"),
        ("SELECT lo_create(0)", "lo_create"),
        ("SELECT lowrite(lo_open(1, 131072), 'x')", "lowrite"),
        ("SELECT pg_terminate_backend(@PID)", "pg_terminate_backend"),
        ("SELECT pg_cancel_backend(@PID)", "pg_cancel_backend"),
        ("SELECT pg_read_file('@HOST')", "pg_read_file"),
        ("SELECT pg_read_binary_file('@HOST')", "pg_read_binary_file"),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
        ("SELECT pg_stat_file('@HOST')", "pg_stat_file"),
        ("SELECT pg_reload_conf()", "pg_reload_conf"),
        ("SELECT pg_rotate_logfile()", "pg_rotate_logfile"),
        ("SELECT set_config('statement_timeout', '0', false)", "set_config"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        ("SELECT txid_current()", "txid_current"),
        ("SELECT nextval('sqltrack.experiments_experiment_id_seq')", "nextval"),
        ("SELECT setval('sqltrack.experiments_experiment_id_seq', 1000)", "setval"),
        ("SELECT pg_notify('channel', 'x')", "pg_notify"),
        ("SELECT pg_sleep(100)", "pg_sleep"),
        ("SELECT dblink_exec('dbname=test', 'DELETE FROM sqltrack.tags')", "dblink_exec"),
        ("SELECT query_to_xml('SELECT lo_from_bytea(0, ''x'')', true, true, '')", "query_to_xml"),
        ("SELECT ts_stat('SELECT 1')", "ts_stat"),
        ("COPY sqltrack.runs TO PROGRAM 'touch @TMP/copy-program'", "COPY"),
        ("COPY sqltrack.runs TO '@TMP/copy-file'", "COPY"),
        ("SELECT 1; COMMIT; DELETE FROM sqltrack.tags", "more than one statement"),
        ("SELECT E'\\''; DELETE FROM sqltrack.tags; --'", "more than one"),
        ("DELETE FROM sqltrack.tags", "DELETE"),
        ("UPDATE sqltrack.params SET value = 'forged'", "UPDATE"),
        ("WITH d AS (DELETE FROM sqltrack.tags RETURNING *) SELECT * FROM d", "DELETE"),
        ("SELECT * INTO sqltrack.leak FROM sqltrack.runs", "INTO"),
        ("SELECT * FROM sqltrack.runs FOR UPDATE", "LOCK"),
        ("SET statement_timeout = 0", "SET"),
        ("SET TRANSACTION READ WRITE", "SET"),
        ("DO $$ BEGIN DELETE FROM sqltrack.tags; END $$", "DO"),
        ("CREATE TABLE sqltrack.x (a INTEGER)", "CREATE"),
        ("DROP TABLE sqltrack.tags", "DROP"),
        ("TRUNCATE sqltrack.tags", "TRUNCATE"),
        ("PREPARE p AS DELETE FROM sqltrack.tags", "PREPARE"),
        ("LISTEN channel", "LISTEN"),
        ("VACUUM sqltrack.tags", "VACUUM"),
        ("SELECT pg_switch_wal()", "pg_switch_wal"),
    ]]  # fmt: skip


def _populate(tracker) -> str:
    tracker.create_experiment("guarded")
    with tracker.start_run(run_name="r1") as run:
        tracker.log_params({"model": "rf", "trees": 10})
        tracker.log_metric("r2", 0.9)
        tracker.set_tag("owner", "alice")
    tracker.flush()
    return run.run_id


def _duckdb_snapshot(path: str) -> dict[str, int]:
    import duckdb

    from sqltrack.backends import duckdb as duck

    for f in list(duck._FILES.values()):
        with f.lock:
            f.close()
    with duckdb.connect(path, read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('sqltrack', 'sqltrack_data') AND table_type = 'BASE TABLE'"
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]  # noqa: S608 - catalog names
            for s, t in tables
        }


def _pg_snapshot(uri: str) -> dict[str, int]:
    from tests.conftest import _pg_connect

    with _pg_connect(uri) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('sqltrack', 'sqltrack_data') AND table_type = 'BASE TABLE'"
        ).fetchall()
        counts = {
            f"{s}.{t}": conn.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]  # noqa: S608 - catalog names
            for s, t in tables
        }
        counts["pg_largeobject_metadata"] = conn.execute(
            "SELECT count(*) FROM pg_largeobject_metadata"
        ).fetchone()[0]
        counts["experiments_seq"] = conn.execute(
            "SELECT last_value FROM sqltrack.experiments_experiment_id_seq"
        ).fetchone()[0]
        return counts


def _assert_refused(tracker, statement: str, names: str) -> None:
    with pytest.raises(sqltrack.InvalidInputError) as info:
        tracker.sql(statement)
    message = str(info.value)
    assert "read-only" in message and names.lower() in message.lower(), (statement, message)


def test_duckdb_write_and_escape_attempts_are_refused(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    path = str(store / "tracking.duckdb")
    uri = f"duckdb:///{path}"
    outside = tmp_path / "outside"
    outside.mkdir()
    with sqltrack.connect(uri) as tracker:
        _populate(tracker)
    before, files = _duckdb_snapshot(path), sorted(os.listdir(store))
    attempts = _duckdb_attempts(path, outside)
    assert len(attempts) >= 30
    with sqltrack.connect(uri) as tracker:
        for statement, names in attempts:
            _assert_refused(tracker, statement, names)
        assert tracker.sql("SELECT '?' AS q")[1] == [("?",)]
    with sqltrack.connect(uri, read_only=True) as reader:  # the CLI's reader too
        for statement, names in attempts[:8]:
            _assert_refused(reader, statement, names)
    assert _duckdb_snapshot(path) == before
    assert sorted(os.listdir(store)) == files and list(outside.iterdir()) == []


@pytest.fixture
def victim(pg_uri):
    """Another session on the server, which no query of ours may end."""
    from tests.conftest import _pg_connect

    conn = _pg_connect(pg_uri)
    yield conn
    conn.close()


def test_postgres_write_and_escape_attempts_are_refused(pg_uri, victim, tmp_path):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as tracker:
        _populate(tracker)
    before = _pg_snapshot(pg_uri)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    attempts = _postgres_attempts(pid, str(tmp_path))
    assert len(attempts) >= 30
    with sqltrack.connect(pg_uri) as tracker:
        for statement, names in attempts:
            _assert_refused(tracker, statement, names)
        assert tracker.sql("SELECT '?' AS q, '%' AS p")[1] == [("?", "%")]
    assert _pg_snapshot(pg_uri) == before
    assert victim.execute("SELECT 1").fetchone() == (1,)  # not terminated
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def select_only_role(pg_uri):
    """A login role that may only SELECT the catalog, dropped at the end."""
    from sqltrack.backends import parse_uri
    from tests.conftest import _pg_connect

    role = f"sqltrack_auditor_{uuid.uuid4().hex[:8]}"
    db = parse_uri(pg_uri).database
    with _pg_connect(pg_uri) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{role}"')
        conn.execute(f'GRANT USAGE ON SCHEMA sqltrack TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA sqltrack TO "{role}"')
    p = parse_uri(pg_uri)
    yield f"postgresql://{role}@{p.host}:{p.port or 5432}/{db}"
    with _pg_connect(pg_uri) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_postgres_select_only_role_cannot_escape_either(pg_uri, victim, tmp_path, request):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as tracker:
        _populate(tracker)
    role_uri = request.getfixturevalue("select_only_role")
    before = _pg_snapshot(pg_uri)
    pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
    with sqltrack.connect(role_uri, read_only=True) as auditor:
        assert auditor.sql("SELECT count(*) FROM sqltrack.runs")[1] == [(1,)]
        for statement, names in _postgres_attempts(pid, str(tmp_path)):
            _assert_refused(auditor, statement, names)
    assert _pg_snapshot(pg_uri) == before
    assert victim.execute("SELECT 1").fetchone() == (1,)


def test_cli_sql_refuses_with_one_line(store_uri, capsys, tmp_path):
    with sqltrack.connect(store_uri) as tracker:
        run_id = _populate(tracker)
    for statement in (
        "SELECT 1; DELETE FROM sqltrack.tags",
        "DELETE FROM sqltrack.tags",
        "SELECT lo_from_bytea(0, 'x')",
        _fill("SELECT * FROM read_text('@HOST')"),
    ):
        code = cli_main(["sql", statement, "--uri", store_uri])
        err = capsys.readouterr().err
        assert code == 1 and "read-only" in err and "Traceback" not in err, err
    assert cli_main(["sql", "SELECT '?' AS q", "--uri", store_uri, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["q", "?"]
    query = "SELECT value FROM sqltrack.params WHERE run_id = ? AND key = ?"
    argv = ["sql", query, "--param", run_id, "--param", "model", "--uri", store_uri]
    assert cli_main([*argv, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["value", "rf"]


def test_duckdb_read_connection_refuses_on_its_own(tmp_path):
    """Under the parser: DuckDB's own statement check, the READ_ONLY attachment and
    disabled external access each refuse what the parser would have caught."""
    path = str(tmp_path / "tracking.duckdb")
    with sqltrack.connect(f"duckdb:///{path}") as tracker:
        _populate(tracker)
        backend = tracker.backend
        before = _duckdb_snapshot(path)
        for sql, fragment in (
            ("DELETE FROM sqltrack.tags", "not one SELECT"),
            ("SELECT 1; DELETE FROM sqltrack.tags", "not one SELECT"),
            ("SELECT * FROM read_text('@HOST')", "disabled by configuration"),
            ("SELECT * FROM '/etc/passwd'", "does not exist"),  # no replacement scan
            ("SELECT * FROM glob('@TMP/*')", "disabled by configuration"),
        ):
            with pytest.raises(sqltrack.SqltrackError, match=fragment):
                backend.read_query(_fill(sql, TMP=tmp_path), [], timeout=60)
        assert _duckdb_snapshot(path) == before


def test_postgres_read_transaction_refuses_on_its_own(pg_uri):
    """Under the parser: the READ ONLY transaction, the extended protocol (one statement)
    and the rollback each hold on their own."""
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as tracker:
        _populate(tracker)
        before = _pg_snapshot(pg_uri)
        backend = tracker.backend
        with pytest.raises(sqltrack.InvalidInputError, match="read-only"):
            backend.read_query("DELETE FROM sqltrack.tags", [], timeout=60)
        with pytest.raises(sqltrack.SqltrackError, match="multiple commands"):
            backend.read_query("SELECT 1; DELETE FROM sqltrack.tags", [], timeout=60)
        # what the parser refuses, the rollback still undoes: no large object is left
        backend.read_query("SELECT lo_from_bytea(0, 'x')", [], timeout=60)
        assert _pg_snapshot(pg_uri) == before


def test_a_query_past_the_timeout_is_cancelled(store_uri, monkeypatch):
    slow = {
        "duckdb": "SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b",
        "postgres": "SELECT count(*) FROM generate_series(1, 1000000000)",
    }
    with sqltrack.connect(store_uri) as tracker:
        monkeypatch.setenv("SQLTRACK_SQL_TIMEOUT", "0.5")
        with pytest.raises(sqltrack.InvalidInputError, match="SQLTRACK_SQL_TIMEOUT"):
            tracker.sql(slow[tracker.backend.capabilities.name])
        monkeypatch.delenv("SQLTRACK_SQL_TIMEOUT")
        assert tracker.sql("SELECT 1 AS one")[1] == [(1,)]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "FROM sqltrack.runs",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a UNION ALL SELECT 2",
        "(SELECT 1)",
        "SELECT * FROM (SELECT 1 AS x) s WHERE x IN (SELECT 1)",
        "SELECT 'DELETE FROM x; read_text(1)' AS text_only",
    ],
)
def test_read_only_queries_pass_the_check(query):
    from sqltrack import readsql

    for dialect in ("duckdb", "postgres"):
        assert readsql.check(query, dialect).parameters == 0


def test_placeholders_are_found_by_the_tokenizer():
    from sqltrack import readsql

    checked = readsql.check(
        "SELECT ? AS a, '?' AS b, \"?\" AS c -- ?\nFROM t WHERE x = ?", "duckdb"
    )
    assert checked.parameters == 2 and checked.sql.count("$") == 2 and "'?'" in checked.sql
    with pytest.raises(sqltrack.InvalidInputError, match="parameter"):
        readsql.check("SELECT $1", "postgres")
