"""format("sqltrack") and the tracker's datasets, on both backends, through the one
session-scoped local Spark: exact round trips, ML vectors and attributes, catalog,
modes, names, fingerprints, kept order, failed jobs, the janitor and lineage SQL."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sqltrack import datasets
from sqltrack.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parent.parent


# -- helpers ------------------------------------------------------------------------------
def _canon(value: Any) -> Any:
    """A comparable form that tells -0.0 from 0.0, NaN from NaN-free, dense from sparse."""
    from pyspark.ml.linalg import DenseVector, SparseVector
    from pyspark.sql import Row

    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value)
    if isinstance(value, Row):
        return tuple((k, _canon(v)) for k, v in value.asDict().items())
    if isinstance(value, dict):
        return tuple(sorted(((repr(_canon(k)), _canon(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    if isinstance(value, DenseVector):
        return ("dense", tuple(_canon(float(v)) for v in value.toArray()))
    if isinstance(value, SparseVector):
        return (
            "sparse",
            int(value.size),
            tuple(int(i) for i in value.indices),
            tuple(_canon(float(v)) for v in value.values),
        )
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    return value


def _rows(df: Any) -> list[str]:
    return sorted(repr(_canon(r)) for r in df.collect())


def assert_same(original: Any, loaded: Any) -> None:
    """Names, order, types, nullability, field metadata, and the multiset of rows."""
    assert loaded.schema.json() == original.schema.json()
    assert loaded.schema == original.schema
    assert loaded.count() == original.count()
    assert _rows(loaded) == _rows(original)


def _map_free(df: Any) -> Any:
    """exceptAll cannot compare map columns: turn them into sorted entry arrays."""
    import pyspark.sql.functions as F
    from pyspark.sql.types import MapType

    return df.select(
        *[
            F.array_sort(F.map_entries(F.col(f"`{f.name}`"))).alias(f.name)
            if isinstance(f.dataType, MapType)
            else F.col(f"`{f.name}`")
            for f in df.schema.fields
        ]
    )


def _all_types(spark: Any) -> Any:
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import (
        ArrayType,
        BinaryType,
        BooleanType,
        ByteType,
        DateType,
        DecimalType,
        DoubleType,
        FloatType,
        IntegerType,
        LongType,
        MapType,
        ShortType,
        StringType,
        StructField,
        StructType,
        TimestampNTZType,
        TimestampType,
    )

    inner = StructType([StructField("w", DoubleType()), StructField("v", ArrayType(BinaryType()))])
    schema = StructType(
        [
            StructField("id", LongType(), nullable=False),
            StructField("b", ByteType()),
            StructField("s", ShortType()),
            StructField("i", IntegerType()),
            StructField("l", LongType()),
            StructField("f", FloatType()),
            StructField("d", DoubleType()),
            StructField("dec", DecimalType(38, 18)),
            StructField("dec_small", DecimalType(5, 2)),
            StructField("str", StringType()),
            StructField("bin", BinaryType()),
            StructField("flag", BooleanType()),
            StructField("day", DateType()),
            StructField("ts", TimestampType()),
            StructField("ntz", TimestampNTZType()),
            StructField("ints", ArrayType(IntegerType())),
            StructField("doubles", ArrayType(DoubleType(), containsNull=False)),
            StructField("words", ArrayType(StringType())),
            StructField("nested", ArrayType(ArrayType(LongType()))),
            StructField("m", MapType(StringType(), DoubleType())),
            StructField("m2", MapType(IntegerType(), ArrayType(StringType()))),
            StructField(
                "st",
                StructType(
                    [
                        StructField("x", IntegerType(), nullable=False),
                        StructField("y", StringType()),
                        StructField("z", inner),
                    ]
                ),
            ),
            StructField(
                "structs",
                ArrayType(StructType([StructField("a", ByteType()), StructField("t", DateType())])),
            ),
            StructField("vec", VectorUDT()),
            StructField('Odd "name"; ✓ col', StringType()),
        ]
    )
    nan, inf = float("nan"), float("inf")
    utc = dt.timezone.utc
    rows = [
        (
            1,
            -128,
            -32768,
            -(2**31),
            -(2**63),
            nan,
            nan,
            Decimal("99999999999999999999.999999999999999999"),
            Decimal("-999.99"),
            "héllo ✓ 日本語 🎉",
            b"\x00\xff\x10",
            True,
            dt.date(1900, 1, 1),
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
            dt.datetime(2024, 2, 29, 12, 0, 0, 1),
            [1, None, 3],
            [nan, inf, -inf, -0.0, 0.1, 5e-324],
            ["", "a\nb", 'q"uote\\', "tab\there", None],
            [[1, 2], [], None, [None]],
            {"a": 1.5, "nan": nan, "neg0": -0.0, "none": None},
            {1: ["x"], -2: [], 3: None},
            (1, "y", (-0.0, [b"\x00", None, b""])),
            [(1, dt.date(2020, 1, 1)), None, (None, None)],
            Vectors.dense([1.0, -0.0, nan, inf]),
            "a",
        ),
        (
            2,
            127,
            32767,
            2**31 - 1,
            2**63 - 1,
            inf,
            -inf,
            Decimal("-0.000000000000000001"),
            Decimal("0.01"),
            "",
            b"",
            False,
            dt.date(9999, 12, 31),
            dt.datetime(2024, 5, 17, 8, 30, 0, 123456, tzinfo=utc),
            dt.datetime(1, 1, 1, 0, 0, 0),
            [],
            [],
            [],
            [],
            {},
            {},
            (0, None, None),
            [],
            Vectors.sparse(5000, [3, 4999], [1.0, -2.5]),
            "line\nbreak\r\n\ttab 'single' \"double\" ; DROP TABLE x; --",
        ),
        (
            3,
            0,
            0,
            0,
            0,
            -0.0,
            -0.0,
            Decimal("0"),
            Decimal("0"),
            "a\x01b\x1fc",
            b"\\x",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (4, *([None] * 24)),
        (5, *([None] * 24)),  # a duplicate row: the multiset must keep both
    ]
    return spark.createDataFrame(rows, schema)


def _ml_frame(spark: Any) -> Any:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    raw = spark.createDataFrame(
        [
            (float(i % 7), float(i % 3) - 1.0, ["red", "green", "blue"][i % 3], float(i % 2))
            for i in range(60)
        ],
        "x double, y double, color string, label double",
    )
    pipeline = Pipeline(
        stages=[
            StringIndexer(inputCol="color", outputCol="color_idx"),
            OneHotEncoder(inputCol="color_idx", outputCol="color_vec"),
            VectorAssembler(inputCols=["x", "y", "color_vec"], outputCol="features"),
        ]
    )
    return pipeline.fit(raw).transform(raw)


@pytest.fixture
def run(tracker: Any) -> Any:
    with tracker.start_run(run_name="datasets") as r:
        yield r


# -- round trips ----------------------------------------------------------------------------
def test_every_type_round_trips_exactly(tracker: Any, run: Any, spark: Any) -> None:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        df = _all_types(spark)
        ds = tracker.log_dataset(df)
        loaded = tracker.load_dataset(spark, run.run_id)
        assert_same(df, loaded)
        plain_a, plain_b = _map_free(df), _map_free(loaded)
        assert plain_a.exceptAll(plain_b).count() == 0
        assert plain_b.exceptAll(plain_a).count() == 0
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert ds.row_count == 5
    assert ds.table_name == f"sqltrack_data.ds_{run.run_id}_training"
    assert json.loads(ds.spark_schema) == json.loads(df.schema.json())
    # The timestamp is the same instant whatever the session time zone.
    again = tracker.load_dataset(spark, run.run_id).where("id = 2").collect()[0]
    assert again.ts == dt.datetime(2024, 5, 17, 8, 30, 0, 123456)  # shown in UTC now


def test_ml_attributes_vectors_and_predictions(tracker: Any, run: Any, spark: Any) -> None:
    from pyspark.ml.classification import LogisticRegression

    df = _ml_frame(spark)
    assert "ml_attr" in df.schema["features"].metadata
    tracker.log_dataset(df, "features")
    loaded = tracker.load_dataset(spark, run.run_id, "features")
    assert_same(df, loaded)
    assert loaded.schema["features"].metadata == df.schema["features"].metadata
    assert loaded.schema["color_idx"].metadata == df.schema["color_idx"].metadata
    model = LogisticRegression(maxIter=5).fit(df)
    before = [
        (r.x, r.y, r.color, r.prediction, r.probability) for r in model.transform(df).collect()
    ]
    after = [
        (r.x, r.y, r.color, r.prediction, r.probability) for r in model.transform(loaded).collect()
    ]
    assert sorted(map(repr, before)) == sorted(map(repr, after))


def test_one_hot_of_5000_categories_stays_sparse(tracker: Any, run: Any, spark: Any) -> None:
    from pyspark.ml.feature import OneHotEncoder, StringIndexer
    from pyspark.ml.linalg import SparseVector

    raw = spark.range(5000).selectExpr("concat('c', CAST(id AS STRING)) AS category")
    indexed = StringIndexer(inputCol="category", outputCol="idx").fit(raw).transform(raw)
    df = OneHotEncoder(inputCol="idx", outputCol="onehot").fit(indexed).transform(indexed)
    ds = tracker.log_dataset(df, "onehot")
    # 5,000 dense doubles per row would be 200 MB; sparse it is a few hundred kB.
    assert ds.size_bytes < 5_000_000
    loaded = tracker.load_dataset(spark, run.run_id, "onehot")
    vectors = [r.onehot for r in loaded.collect()]
    assert len(vectors) == 5000
    assert all(isinstance(v, SparseVector) and v.size == 4999 for v in vectors)
    assert_same(df, loaded)


def test_empty_dataframe(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.createDataFrame([], "a int, b string")
    ds = tracker.log_dataset(df, "empty")
    assert ds.row_count == 0
    loaded = tracker.load_dataset(spark, run.run_id, "empty")
    assert loaded.count() == 0
    assert loaded.schema == df.schema


def test_keep_order(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.range(0, 3000, numPartitions=3).selectExpr(
        "CAST((id * 7919) % 3001 AS BIGINT) AS v", "id"
    )
    tracker.log_dataset(df, "series", keep_order=True)
    loaded = tracker.load_dataset(spark, run.run_id, "series")
    assert [r.v for r in loaded.collect()] == [r.v for r in df.collect()]
    assert loaded.columns == ["v", "id"]
    (ds,) = [d for d in tracker.list_datasets(run.run_id) if d.name == "series"]
    assert ds.ordered


# -- the data source used directly ------------------------------------------------------------
def test_format_sqltrack_directly(tracker: Any, run: Any, spark: Any) -> None:
    import spark_datasource

    spark_datasource.register(spark)
    tracker.flush()  # the run must be in the store before Spark's processes look it up
    uri = tracker.backend.full_uri()
    tracker.backend.release()
    df = spark.createDataFrame([(1, "a"), (2, "b")], "k int, v string")
    (
        df.write.format("sqltrack")
        .option("uri", uri)
        .option("run_id", run.run_id)
        .option("name", "direct")
        .mode("append")
        .save()
    )
    by_name = (
        spark.read.format("sqltrack")
        .option("uri", uri)
        .option("run_id", run.run_id)
        .option("name", "direct")
        .load()
    )
    assert_same(df, by_name)
    again = df.write.format("sqltrack").option("uri", uri).option("run_id", run.run_id)
    with pytest.raises(Exception, match="already has a dataset named 'direct'"):
        again.option("name", "direct").mode("append").save()
    (ds,) = tracker.list_datasets(run.run_id)
    tracker.backend.release()
    by_id = spark.read.format("sqltrack").option("uri", uri).option("dataset_id", ds.dataset_id)
    assert_same(df, by_id.load())


def test_errorifexists_and_ignore_name_the_modes(tracker: Any, run: Any, spark: Any) -> None:
    import spark_datasource

    spark_datasource.register(spark)
    df = spark.createDataFrame([(1,)], "a int")
    for mode in ("errorifexists", "ignore"):
        writer = df.write.format("sqltrack").option("run_id", run.run_id).mode(mode)
        with pytest.raises(Exception, match="(?s)Append.*Overwrite"):
            writer.save()
        with pytest.raises(InvalidInputError, match="'append'.*'overwrite'"):
            tracker.log_dataset(df, "m", mode=mode)


# -- catalog rules ----------------------------------------------------------------------------
def test_append_twice_conflicts_and_overwrite_replaces(tracker: Any, run: Any, spark: Any) -> None:
    first = spark.createDataFrame([(1,), (2,)], "a int")
    ds1 = tracker.log_dataset(first)
    with pytest.raises(ConflictError, match="already has a dataset named 'training'"):
        tracker.log_dataset(first)
    second = spark.createDataFrame([(3, "x")], "a int, b string")
    ds2 = tracker.log_dataset(second, mode="overwrite")
    assert ds2.dataset_id == ds1.dataset_id
    assert ds2.row_count == 1 and ds2.fingerprint != ds1.fingerprint
    assert_same(second, tracker.load_dataset(spark, run.run_id))
    assert len(tracker.list_datasets(run.run_id)) == 1


def test_ended_run_refuses_datasets(tracker: Any, spark: Any) -> None:
    with tracker.start_run() as r:
        pass
    df = spark.createDataFrame([(1,)], "a int")
    with pytest.raises(ConflictError, match="not RUNNING"):
        tracker.log_dataset(df, run_id=r.run_id)
    with pytest.raises(ConflictError, match="not RUNNING"):
        tracker.log_dataset(df, run_id=r.run_id, mode="overwrite")


@pytest.mark.parametrize(
    "name",
    ['tr"ain', "a;DROP TABLE x", "with space", "données", "x" * 200, "", "../up", "-lead"],
)
def test_bad_names_are_refused(tracker: Any, run: Any, spark: Any, name: str) -> None:
    df = spark.createDataFrame([(1,)], "a int")
    with pytest.raises(InvalidInputError, match="dataset name"):
        tracker.log_dataset(df, name)
    assert tracker.list_datasets(run.run_id) == []


def test_odd_but_valid_names_get_distinct_tables(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.createDataFrame([(1,)], "a int")
    a = tracker.log_dataset(df, "Train.V2")
    b = tracker.log_dataset(df, "train_v2")
    long = tracker.log_dataset(df, "n" * 128)
    names = {a.table_name, b.table_name, long.table_name}
    assert len(names) == 3
    limit = tracker.backend.capabilities.max_identifier_length
    assert all(len(t.split(".")[1]) <= limit for t in names)
    assert_same(df, tracker.load_dataset(spark, run.run_id, "n" * 128))


def test_missing_dataset(tracker: Any, run: Any, spark: Any) -> None:
    with pytest.raises(NotFoundError, match="dataset 'nope' of run"):
        tracker.load_dataset(spark, run.run_id, "nope")


def test_tampered_rows_fail_the_fingerprint(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.createDataFrame([(1, "a"), (2, "b")], "k int, v string")
    ds = tracker.log_dataset(df, "audit-me")
    schema, table = ds.table_name.split(".")
    from sqltrack import sqltext

    with tracker.backend.session() as s:
        s.execute(
            sqltext.compose("UPDATE {t} SET v = 'z' WHERE k = 2", t=sqltext.ident(schema, table))
        )
    with pytest.raises(IntegrityError, match="dataset 'audit-me' of run"):
        tracker.load_dataset(spark, run.run_id, "audit-me")
    # The data source checks it too (option verify, default true).
    import spark_datasource

    spark_datasource.register(spark)
    uri = tracker.backend.full_uri()
    tracker.backend.release()
    read = spark.read.format("sqltrack").option("uri", uri).option("run_id", run.run_id)
    with pytest.raises(Exception, match="'audit-me'.*does not match its fingerprint"):
        read.option("name", "audit-me").load().collect()


def test_stored_table_is_plain_sql(tracker: Any, run: Any, spark: Any) -> None:
    df = spark.createDataFrame(
        [(1, 2.5, "a", True, dt.date(2024, 1, 2))], "i int, d double, s string, b boolean, t date"
    )
    ds = tracker.log_dataset(df)
    cols, rows = tracker.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'sqltrack_data' AND table_name = ? ORDER BY ordinal_position",
        (ds.table_name.split(".")[1],),
    )
    types = {name: kind.lower() for name, kind in rows}
    assert list(types) == ["i", "d", "s", "b", "t"]
    assert types["i"] == "integer" and types["b"] == "boolean" and types["t"] == "date"
    assert types["d"] in ("double", "double precision")
    assert types["s"] in ("text", "varchar", "character varying")
    _, data = tracker.sql(f"SELECT i, d, s FROM {ds.table_name}")  # noqa: S608 - our table
    assert data == [(1, 2.5, "a")]


# -- atomicity --------------------------------------------------------------------------------
def _staging(tracker: Any) -> list[str]:
    return datasets.engine(tracker.backend).staging_areas(tracker.backend)


def _data_tables(tracker: Any) -> list[str]:
    _, rows = tracker.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sqltrack_data'"
    )
    return sorted(r[0] for r in rows)


def test_failed_job_leaves_nothing(tracker: Any, run: Any, spark: Any) -> None:
    import pyspark.sql.functions as F
    from pyspark.sql.types import LongType

    def explode_on_last_partition(v):  # type: ignore[no-untyped-def]  # no hints: a plain UDF
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None and ctx.partitionId() == 3 and v % 1000 == 999:
            raise RuntimeError("injected failure")
        return v

    boom = F.udf(explode_on_last_partition, LongType())
    df = spark.range(0, 4000, numPartitions=4).select(boom("id").alias("id"))
    with pytest.raises(Exception, match="injected failure"):
        tracker.log_dataset(df, "doomed")
    assert tracker.list_datasets(run.run_id) == []
    assert _data_tables(tracker) == []
    assert _staging(tracker) == []


def test_janitor_removes_orphaned_staging(
    tracker: Any, run: Any, spark: Any, store_uri: str
) -> None:
    import pyarrow as pa

    from sqltrack.cli import main

    eng = datasets.engine(tracker.backend)
    old = time.time() - datasets.STAGING_MAX_AGE - 60
    spec = datasets.WriteSpec.new(
        tracker.backend.full_uri(),
        run.run_id,
        "orphan",
        overwrite=False,
        ordered=False,
        spark_schema=spark.createDataFrame([(1,)], "a int").schema.json(),
        arrow_schema=pa.schema([("a", pa.int32())]),
    )
    orphans = []
    for i in range(2):
        name = datasets.staging_name(old, f"{i:016x}")
        eng.prepare(tracker.backend, _replace(spec, staging=name))
        orphans.append(name)
    fresh = datasets.staging_name(time.time(), "f" * 16)
    eng.prepare(tracker.backend, _replace(spec, staging=fresh))
    assert set(_staging(tracker)) == {*orphans, fresh}
    tracker.backend.release()
    assert main(["gc", "--uri", store_uri, "--format", "json"]) == 0
    assert _staging(tracker) == [fresh]  # a young staging area may be a running write
    # And on next write, the janitor runs before staging anything.
    eng.prepare(tracker.backend, _replace(spec, staging=orphans[0]))
    tracker.log_dataset(spark.createDataFrame([(1,)], "a int"), "next")
    assert _staging(tracker) == [fresh]
    eng.drop_staging(tracker.backend, fresh)


def _replace(spec: datasets.WriteSpec, **changes: Any) -> datasets.WriteSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


@pytest.mark.slow
def test_retried_tasks_never_duplicate_rows(store_uri: str, tmp_path: Path) -> None:
    """local[2,3] allows task retries: a task failing mid-stream, and one failing after
    its rows were staged and committed, are retried; the dataset holds each row once."""
    script = ROOT / "tests" / "datasource_faults.py"
    proc = subprocess.run(
        [sys.executable, str(script), store_uri],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SQLTRACK_TEST_FAIL_AFTER_STAGE": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mid_stream"] == {"rows": 4000, "distinct": 4000, "attempts_failed": True}
    assert result["after_stage"] == {"rows": 4000, "distinct": 4000, "attempts_failed": True}
    assert result["staging_left"] == []


# -- CLI and lineage ----------------------------------------------------------------------------
def test_cli_lists_datasets(
    tracker: Any, run: Any, spark: Any, store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqltrack.cli import main

    ds = tracker.log_dataset(spark.createDataFrame([(1,)], "a int"))
    tracker.backend.release()
    assert main(["datasets", run.run_id, "--uri", store_uri, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["table_name"] == ds.table_name and row["row_count"] == 1
    assert main(["datasets", "--uri", store_uri]) == 0
    assert ds.table_name in capsys.readouterr().out


def test_lineage_queries_from_the_docs(tracker: Any, spark: Any) -> None:
    df = spark.createDataFrame([(1, 2.0)], "a int, b double")
    other = spark.createDataFrame([(9, 9.0)], "a int, b double")
    with tracker.start_run(run_name="good") as good:
        tracker.log_metric("r2", 0.95)
        shared = tracker.log_dataset(df)
    with tracker.start_run(run_name="bad") as bad:
        tracker.log_metric("r2", 0.5)
        tracker.log_dataset(df)
        tracker.log_dataset(other, "holdout")
    queries = _doc_queries()
    same = queries["which runs trained on this data"].replace("dataset_id = 1", "dataset_id = ?")
    _, runs = tracker.sql(same, (shared.dataset_id,))
    assert sorted(r[0] for r in runs) == sorted([good.run_id, bad.run_id])
    _, data = tracker.sql(queries["which data trained the runs whose metrics.r2 > 0.9"])
    assert [(r[0], r[1]) for r in data] == [(good.run_id, "training")]
    by_user = queries["every dataset logged by user X in May"].replace("'alice'", "?")
    by_user = re.sub(r"CAST\('[^']+' AS TIMESTAMPTZ\)", "CAST(? AS TIMESTAMPTZ)", by_user)
    month = shared.created_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (month + dt.timedelta(days=32)).replace(day=1)
    _, mine = tracker.sql(by_user, (shared.created_by, month, following))
    assert len(mine) == 3
    _, nobody = tracker.sql(by_user, ("nobody", month, following))
    assert nobody == []


def _doc_queries() -> dict[str, str]:
    """The three lineage queries of docs/schema.md, by their heading."""
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    found = {}
    for title in (
        "which runs trained on this data",
        "which data trained the runs whose metrics.r2 > 0.9",
        "every dataset logged by user X in May",
    ):
        start = text.lower().index(title.lower())
        block = text[start:].split("```sql", 1)[1].split("```", 1)[0]
        found[title] = block.strip().rstrip(";")
    return found


def test_core_never_imports_the_data_source() -> None:
    import ast

    for path in (ROOT / "sqltrack").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("spark_datasource") for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("spark_datasource"), path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith("spark_datasource"), path
    code = "import sqltrack, sqltrack.datasets, sys; print('spark_datasource' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
