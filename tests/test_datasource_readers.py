"""A stored dataset is an ordinary table: psql, a plain DuckDB connection (what the duckdb
CLI does) and Spark's own JDBC reader read it without sqltrack."""

from __future__ import annotations

import datetime as dt
import subprocess

import duckdb
import pytest

import sqltrack
from tests.conftest import IN_CI, PG_JDBC_JAR

pytestmark = pytest.mark.spark

ROWS = [
    (1, 2.5, 'Paris, "quoted"', True, dt.date(2024, 1, 2), [1, 2]),
    (2, -0.5, "Lyon", False, dt.date(2024, 2, 3), []),
    (None, None, None, None, None, None),
]
SCHEMA = "i int, d double, s string, b boolean, day date, xs array<int>"


def _log(uri, spark):
    tracker = sqltrack.connect(uri)
    with tracker.start_run() as run:
        dataset = tracker.log_dataset(spark.createDataFrame(ROWS, SCHEMA))
    tracker.close()
    return run, dataset


def _scalars(rows):
    return sorted((tuple(r[:5]) for r in rows), key=repr)


def test_plain_duckdb_connection_reads_the_table(tmp_path, spark):
    path = tmp_path / "plain.duckdb"
    _, dataset = _log(f"duckdb:///{path}", spark)
    from sqltrack.backends import duckdb as duck

    for f in list(duck._FILES.values()):
        f.close()  # release the file, as the process would on exit
    with duckdb.connect(str(path), read_only=True) as con:  # no alias: as the duckdb CLI
        rows = con.execute(f"SELECT * FROM {dataset.table_name}").fetchall()  # noqa: S608
    assert _scalars(rows) == _scalars(ROWS)
    assert sorted(r[5] or [] for r in rows) == [[], [], [1, 2]]


def test_psql_reads_the_table(pg_uri, spark):
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    _, dataset = _log(pg_uri, spark)
    db = pg_uri.rsplit("/", 1)[1]
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            db,
            "-At",
            "-F",
            "|",
            "-c",
            f"SELECT i, d, s, b, day, xs FROM {dataset.table_name} ORDER BY i NULLS LAST",  # noqa: S608
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [
        '1|2.5|Paris, "quoted"|t|2024-01-02|{1,2}',
        "2|-0.5|Lyon|f|2024-02-03|{}",
        "|||||",
    ]


def test_spark_jdbc_reader_reads_the_table(pg_uri, spark):
    if not PG_JDBC_JAR.exists():
        if IN_CI:
            pytest.fail(f"{PG_JDBC_JAR} is missing in CI: `make jdbc` installs it")
        pytest.skip(f"{PG_JDBC_JAR} missing: `make jdbc` installs Debian's PostgreSQL JDBC driver")
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    _, dataset = _log(pg_uri, spark)
    rest = pg_uri.split("://", 1)[1]
    user, hostdb = rest.split("@", 1)
    frame = spark.read.jdbc(
        f"jdbc:postgresql://{hostdb}",
        dataset.table_name,
        properties={"user": user, "driver": "org.postgresql.Driver"},
    )
    assert frame.columns == ["i", "d", "s", "b", "day", "xs"]
    rows = frame.collect()
    assert _scalars(rows) == _scalars(ROWS)
    assert sorted(list(r.xs or []) for r in rows) == [[], [], [1, 2]]
