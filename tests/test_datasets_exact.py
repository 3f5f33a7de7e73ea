"""Exact loads (issue 9, point 6), on both backends: a load gives back every stored row or
raises IntegrityError. Each case is an edit made behind sqltrack's back with plain SQL: a
row deleted and inserted again (a DuckDB rowid gap), a lowered catalog row_count, two rows
of a kept-order dataset swapped, 0.0 turned into -0.0; plus rows that change while a slice
is read, and datasets recorded with the version-1 fingerprint before migration 0008."""

from __future__ import annotations

from typing import Any

import pytest

from sqltrack import datasets, sqltext
from sqltrack.errors import IntegrityError

pytestmark = pytest.mark.spark  # all but the benchmark smoke test use the session Spark


@pytest.fixture
def run(tracker: Any) -> Any:
    with tracker.start_run(run_name="exact") as r:
        yield r


def _table(ds: Any) -> str:
    return sqltext.ident(*ds.table_name.split("."))


def _edit(tracker: Any, sql: str, params: tuple[Any, ...] = ()) -> None:
    with tracker.backend.transaction() as s:
        s.execute(sql, params)
    tracker.backend.release()


def _sorted(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def test_row_deleted_and_inserted_again_is_still_loaded(tracker: Any, run: Any, spark: Any) -> None:
    """DuckDB numbers a new table's rows 0..n-1; a row deleted and inserted again gets
    rowid n. A plan over 0..n-1 silently dropped it (19,999 of 20,000 rows came back; a
    table this size keeps the gap through checkpoints, a tiny one is compacted)."""
    df = spark.range(0, 20000, numPartitions=2).selectExpr("CAST(id AS INT) AS k", "'x' AS v")
    ds = tracker.log_dataset(df)
    t = _table(ds)
    _edit(tracker, sqltext.compose("DELETE FROM {t} WHERE k = 5", t=t))
    _edit(tracker, sqltext.compose("INSERT INTO {t} (k, v) VALUES (?, ?)", t=t), (5, "x"))
    _, span = tracker.sql(sqltext.compose("SELECT count(*) FROM {t}", t=t))
    assert span == [(20000,)]
    loaded = tracker.load_dataset(spark, run.run_id)
    assert loaded.count() == 20000
    assert _sorted(loaded) == _sorted(df)


def test_lowered_catalog_row_count_is_refused(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.range(0, 50, numPartitions=2).selectExpr("id AS k")
    ds = tracker.log_dataset(df)
    _edit(
        tracker,
        "UPDATE sqltrack.datasets SET row_count = row_count - 1 WHERE dataset_id = ?",
        (ds.dataset_id,),
    )
    with pytest.raises(IntegrityError, match="holds 50 rows but its catalog row says 49"):
        tracker.load_dataset(spark, run.run_id)
    # The data source's own plan counts too, with the fingerprint check switched off.
    import spark_datasource

    spark_datasource.register(spark)
    read = (
        spark.read.format("sqltrack")
        .option("uri", tracker.backend.full_uri())
        .option("dataset_id", str(ds.dataset_id))
        .option("verify", "false")
    )
    with pytest.raises(Exception, match="IntegrityError.*catalog row says 49"):
        read.load().collect()


def test_swapped_rows_of_a_kept_order_dataset_are_refused(
    tracker: Any, run: Any, spark: Any
) -> None:
    df = spark.range(0, 40, numPartitions=2).selectExpr("id * 3 AS v")
    ds = tracker.log_dataset(df, "series", keep_order=True)
    assert ds.ordered
    o = sqltext.ident(datasets.ORDINAL_COLUMN)
    _, rows = tracker.sql(
        sqltext.compose("SELECT {o} FROM {t} ORDER BY {o} LIMIT 2", o=o, t=_table(ds))
    )
    (a,), (b,) = rows
    _edit(
        tracker,
        sqltext.compose(
            "UPDATE {t} SET {o} = CASE WHEN {o} = ? THEN ? ELSE ? END WHERE {o} IN (?, ?)",
            t=_table(ds),
            o=o,
        ),
        (a, b, a, a, b),
    )
    with pytest.raises(IntegrityError, match="'series'.*rows or their order were changed"):
        tracker.load_dataset(spark, run.run_id, "series")


@pytest.mark.parametrize("column", ["d", "ds"])
def test_zero_turned_negative_zero_is_refused(
    tracker: Any, run: Any, spark: Any, column: str
) -> None:
    df = spark.createDataFrame(
        [(1, 0.0, [1.0, 0.0]), (2, 2.5, [0.5])], "k int, d double, ds array<double>"
    )
    ds = tracker.log_dataset(df, "zeros")
    neg = "CAST('-0' AS DOUBLE PRECISION)"
    value = neg if column == "d" else f"ARRAY[CAST(1 AS DOUBLE PRECISION), {neg}]"
    # Two steps: DuckDB skips an UPDATE to a value that compares equal (-0.0 = 0.0).
    for v in ("NULL", value):
        _edit(
            tracker,
            sqltext.compose(
                "UPDATE {t} SET {c} = {value} WHERE k = 1",
                t=_table(ds),
                c=sqltext.ident(column),
                value=sqltext.Fragment(v),
            ),
        )
    _, check = tracker.sql(
        sqltext.compose(
            "SELECT CAST({c} AS TEXT) FROM {t} WHERE k = 1",
            c=sqltext.ident(column),
            t=_table(ds),
        )
    )
    assert "-0" in check[0][0]  # the edit really stored a negative zero
    with pytest.raises(IntegrityError, match="'zeros'.*does not match its fingerprint"):
        tracker.load_dataset(spark, run.run_id, "zeros")


def test_a_slice_that_changed_while_read_is_refused(tracker: Any, run: Any, spark: Any) -> None:
    from pyspark.sql.pandas.types import to_arrow_schema

    df = spark.range(0, 30, numPartitions=2).selectExpr("id AS k")
    ds = tracker.log_dataset(df)
    backend = tracker.backend
    plan = datasets.read_plan(backend, ds, 2)
    assert sum(p.rows for p in plan) == 30
    assert plan[0].lo is None and plan[-1].hi is None  # every possible row is in a slice
    _edit(tracker, sqltext.compose("INSERT INTO {t} (k) VALUES (?)", t=_table(ds)), (999,))
    target = to_arrow_schema(df.schema, timezone="UTC")
    engine = datasets.engine(backend)
    read = [sum(b.num_rows for b in engine.read(backend.full_uri(), ds, p, target)) for p in plan]
    assert sum(read) == 31
    changed = next(p for p, n in zip(plan, read, strict=True) if n != p.rows)
    with pytest.raises(IntegrityError, match="the plan counted"):
        list(datasets.counted(ds, changed, engine.read(backend.full_uri(), ds, changed, target)))


def test_datasets_of_fingerprint_version_1_still_load(tracker: Any, run: Any, spark: Any) -> None:
    """A dataset logged before migration 0008 keeps its version-1 fingerprint and is
    verified with that algorithm (and counted like any other)."""
    df = spark.createDataFrame([(1, 0.0), (2, 1.5)], "k int, d double")
    ds = tracker.log_dataset(df, "old")
    engine = datasets.engine(tracker.backend)
    with tracker.backend.session(read_only=True) as s:
        v1, rows = engine.fingerprint(
            s, ds.table_name.split(".")[1], ["k", "d"], ordered=False, version=1
        )
    assert rows == 2 and v1 != ds.fingerprint
    _edit(
        tracker,
        "UPDATE sqltrack.datasets SET fingerprint = ?, fingerprint_version = 1 "
        "WHERE dataset_id = ?",
        (v1, ds.dataset_id),
    )
    (old,) = [d for d in tracker.list_datasets(run.run_id) if d.name == "old"]
    assert old.fingerprint_version == 1
    assert _sorted(tracker.load_dataset(spark, run.run_id, "old")) == _sorted(df)
    _edit(
        tracker,
        sqltext.compose("UPDATE {t} SET k = 3 WHERE k = 2", t=_table(ds)),
    )
    with pytest.raises(IntegrityError, match="does not match its fingerprint"):
        tracker.load_dataset(spark, run.run_id, "old")


def test_the_exact_loads_benchmark_runs(tmp_path: Any) -> None:
    """benchmarks/exact_loads.py at its tiny size, DuckDB only: it cannot rot unnoticed
    (no timing is asserted)."""
    import argparse
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import exact_loads

    args = argparse.Namespace(size="tiny", backends=("duckdb",), pg_dsn=None, workdir=str(tmp_path))
    rows = exact_loads.run(args)
    assert len(rows) == 3
    for row in rows:
        assert row["backend"] == "duckdb" and row["seconds"] > 0 and row["anchor_figure"] > 0
