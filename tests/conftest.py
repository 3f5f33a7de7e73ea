"""Real engines only: a DuckDB file in tmp_path and a PostgreSQL database made for
this session (dropped at the end), plus one session-scoped local[2] SparkSession.

PostgreSQL comes from SQLTRACK_TEST_PG_DSN (default postgresql://root@127.0.0.1/test).
When it is unreachable the PostgreSQL tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SQLTRACK_LOCK_TIMEOUT", "60")

PG_DSN = os.environ.get("SQLTRACK_TEST_PG_DSN", "postgresql://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Debian's libpostgresql-jdbc-java (`make jdbc`): lets a test read stored datasets with
# Spark's own JDBC reader. Test-only, never a runtime dependency.
PG_JDBC_JAR = Path("/usr/share/java/postgresql.jar")


def _pg_connect(uri: str):  # type: ignore[no-untyped-def]
    """An autocommit psycopg connection through sqltrack's own PostgreSQL backend."""
    from sqltrack.backends import parse_uri
    from sqltrack.backends.postgres import PostgresBackend

    return PostgresBackend(parse_uri(uri)).connect()


def _pg_admin():  # type: ignore[no-untyped-def]
    from sqltrack.backends import parse_uri

    return _pg_connect(PG_DSN), parse_uri(PG_DSN)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import duckdb

    lines = [f"duckdb {duckdb.__version__}"]
    try:
        conn, _ = _pg_admin()
        with conn:
            lines.append("postgresql: " + conn.execute("SELECT version()").fetchone()[0])
    except Exception as exc:  # report only
        lines.append(f"postgresql: unreachable at {PG_DSN} ({type(exc).__name__})")
    return lines


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    try:
        conn, p = _pg_admin()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_DSN} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG_DSN} is unreachable: {exc}")
    name = f"sqltrack_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # test-only name built above, not user input
    user = f"{p.user}@" if p.user else ""
    yield f"postgresql://{user}{p.host or '127.0.0.1'}:{p.port or 5432}/{name}"
    conn, _ = _pg_admin()
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_pg(uri: str) -> None:
    with _pg_connect(uri) as conn:
        conn.execute("DROP SCHEMA IF EXISTS sqltrack CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS sqltrack_data CASCADE")


@pytest.fixture(params=["duckdb", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URI on an empty database, for each backend."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'store.duckdb'}"
    else:
        uri = request.getfixturevalue("pg_uri")
        _reset_pg(uri)
        yield uri


@pytest.fixture
def tracker(store_uri: str) -> Iterator[object]:
    import sqltrack

    t = sqltrack.connect(store_uri)
    yield t
    t.close()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sqltrack's wheel, built once per session from this checkout."""
    import subprocess

    out = tmp_path_factory.mktemp("dist")
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("sqltrack-*.whl"))


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("sqltrack-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", str(PG_JDBC_JAR) if PG_JDBC_JAR.exists() else "")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
