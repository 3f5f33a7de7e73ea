"""Data source benchmarks (issue 3, "Performance"): ``format("sqltrack")`` on local[2].

Data: 1,000,000 rows of 15 mixed columns (ints, longs, doubles with some nulls, strings
of 10-30 characters, a boolean, a date, a timestamp), cached in Spark first so that
only the write or read is timed; and a variant whose 20 double columns are one 20-dim
``VectorUDT`` column (``VectorAssembler``), against the same 20 doubles as plain columns.

Figures, each the median of its repeats, the cases taking turns repeat by repeat:

* PostgreSQL: ``tracker.log_dataset`` vs Spark's JDBC writer with its defaults and tuned
  (``batchsize=10000``, ``reWriteBatchedInserts=true``); ``tracker.load_dataset`` (which
  checks the fingerprint first) and a plain ``format("sqltrack")`` read vs
  ``spark.read.jdbc`` (one partition, its default), each read forced whole by Spark's
  ``noop`` sink.
* DuckDB: ``log_dataset`` vs Spark's own Parquet write of the same DataFrame; reads vs
  Spark's own Parquet read.
* Vectors: the vector variant against the 20-plain-doubles variant, on both backends.

The JDBC driver is Debian's ``libpostgresql-jdbc-java`` (``/usr/share/java/postgresql.jar``),
benchmark-only; without it the JDBC anchors are skipped.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import pg_available, pg_database, pg_dsn, result

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
SIZES = {"full": (1_000_000, 3), "small": (200_000, 2), "tiny": (5_000, 1)}


def _log(message: str) -> None:
    print(f"[datasource] {message}", file=sys.stderr, flush=True)


def _spark(jar: bool) -> Any:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("sqltrack-bench-datasource")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if jar:
        builder = builder.config("spark.jars", str(JDBC_JAR))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _frames(spark: Any, rows: int) -> dict[str, Any]:
    """The mixed frame, the 20-doubles frame and its vector twin; cached, 2 partitions."""
    from pyspark.ml.feature import VectorAssembler

    base = spark.range(0, rows, numPartitions=2)
    mixed = base.selectExpr(
        "CAST(id AS INT) AS i1",
        "CAST(id % 1000 AS INT) AS i2",
        "id AS l1",
        "id * 7919 AS l2",
        "CASE WHEN id % 10 = 0 THEN NULL ELSE id / 3.0D END AS d1",
        "CASE WHEN id % 7 = 0 THEN NULL ELSE sqrt(id) END AS d2",
        "rand(1) AS d3",
        "rand(2) * 1000 AS d4",
        "substr(concat(sha2(CAST(id AS STRING), 256), 'x'), 1, 10 + CAST(id % 21 AS INT)) AS s1",
        "substr(concat('customer-', CAST(id AS STRING), '-', sha1(CAST(id AS STRING))), 1, "
        "10 + CAST(id % 21 AS INT)) AS s2",
        "concat('segment_', CAST(id % 17 AS STRING)) AS s3",
        "id % 2 = 0 AS b1",
        "date_add(DATE'2020-01-01', CAST(id % 1500 AS INT)) AS dt",
        "timestamp_seconds(1600000000 + id) AS ts",
        "CASE WHEN id % 5 = 0 THEN NULL ELSE CAST(id % 100 AS INT) END AS i3",
    )
    doubles = base.selectExpr(*[f"rand({k}) AS x{k:02d}" for k in range(20)])
    vectors = (
        VectorAssembler(inputCols=[f"x{k:02d}" for k in range(20)], outputCol="features")
        .transform(doubles)
        .select("features")
    )
    frames = {"mixed": mixed, "doubles20": doubles, "vector20": vectors}
    for name, frame in frames.items():
        frames[name] = frame.cache()
        frames[name].count()
    return frames


def _jdbc_url(uri: str, tuned: bool) -> tuple[str, dict[str, str]]:
    from sqltrack.backends import parse_uri

    p = parse_uri(uri)
    url = f"jdbc:postgresql://{p.host or '127.0.0.1'}:{p.port or 5432}/{p.database}"
    props = {"user": p.user or "postgres", "driver": "org.postgresql.Driver"}
    if p.password:
        props["password"] = p.password
    if tuned:
        url += "?reWriteBatchedInserts=true"
        props["batchsize"] = "10000"
    return url, props


def _interleaved(cases: dict[str, Callable[[int], None]], repeats: int) -> dict[str, float]:
    """Median seconds per case; cases take turns so they see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for turn in range(repeats + 1):  # turn 0 warms up (JIT, Python workers, caches)
        for name, body in cases.items():
            started = time.perf_counter()
            body(turn)
            if turn:
                times[name].append(time.perf_counter() - started)
                _log(f"{name}: {times[name][-1]:.2f} s")
    return {name: statistics.median(t) for name, t in times.items()}


@contextmanager
def _store(backend: str, args: Any) -> Iterator[str]:
    if backend == "duckdb":
        folder = Path(args.workdir) / "duckdb"
        folder.mkdir(parents=True, exist_ok=True)
        yield f"duckdb:///{folder / 'bench.duckdb'}"
    else:
        with pg_database(pg_dsn(args), "sqltrack_bench_ds") as uri:
            yield uri


def _noop(df: Any) -> None:
    df.write.format("noop").mode("overwrite").save()


def measure(backend: str, uri: str, spark: Any, frames: dict[str, Any], args: Any) -> list[dict]:
    import sqltrack

    rows_n, repeats = SIZES[getattr(args, "size", "full")]
    tracker = sqltrack.connect(uri)
    run = tracker.start_run(run_name="bench")
    mixed = frames["mixed"]
    written: dict[str, str] = {}

    def log(frame: str, label: str) -> Callable[[int], None]:
        def body(turn: int) -> None:
            name = f"{label}-{turn}"
            tracker.log_dataset(frames[frame], name)
            written[label] = name

        return body

    def load(label: str, verify: bool = True) -> Callable[[int], None]:
        def body(turn: int) -> None:
            if verify:
                _noop(tracker.load_dataset(spark, run.run_id, written[label]))
            else:
                tracker.backend.release()
                _noop(
                    spark.read.format("sqltrack")
                    .option("uri", sqltrack_uri)
                    .option("run_id", run.run_id)
                    .option("name", written[label])
                    .option("verify", "false")
                    .load()
                )

        return body

    sqltrack_uri = tracker.backend.full_uri()
    out: list[dict] = []
    label = f"{rows_n:,} rows x 15 mixed columns, local[2]"
    if backend == "postgres":
        writes: dict[str, Callable[[int], None]] = {"sqltrack": log("mixed", "mixed")}
        jar = JDBC_JAR.exists()
        if jar:
            for tuned in (False, True):
                url, props = _jdbc_url(uri, tuned)
                table = "jdbc_tuned" if tuned else "jdbc_default"

                def jdbc_write(turn: int, url: str = url, props: dict = props, t: str = table):
                    mixed.write.jdbc(url, t, mode="overwrite", properties=props)

                writes[table] = jdbc_write
        w = _interleaved(writes, repeats)
        for anchor, factor, what in (
            ("jdbc_default", 3.0, "Spark JDBC writer, defaults"),
            ("jdbc_tuned", 2.0, "Spark JDBC writer, batchsize=10000 + reWriteBatchedInserts"),
        ):
            a = w.get(anchor)
            out.append(
                result(
                    f"write: log_dataset, {label}",
                    backend,
                    seconds=w["sqltrack"],
                    anchor=what if a else what + " (no JDBC jar: skipped)",
                    anchor_figure=a,
                    target=f">= {factor:g}x faster",
                    met=None if a is None else a / w["sqltrack"] >= factor,
                )
            )
        reads: dict[str, Callable[[int], None]] = {
            "sqltrack": load("mixed"),
            "sqltrack_noverify": load("mixed", verify=False),
        }
        if jar:
            url, props = _jdbc_url(uri, False)

            def jdbc_read(turn: int) -> None:
                _noop(spark.read.jdbc(url, "jdbc_default", properties=props))

            reads["jdbc"] = jdbc_read
        r = _interleaved(reads, repeats)
        for key, what in (
            ("sqltrack", "load_dataset (fingerprint checked)"),
            ("sqltrack_noverify", "format('sqltrack') read, verify=false"),
        ):
            a = r.get("jdbc")
            out.append(
                result(
                    f"read: {what}, {label}",
                    backend,
                    seconds=r[key],
                    anchor="spark.read.jdbc (defaults), noop sink",
                    anchor_figure=a,
                    target=">= 3x faster",
                    met=None if a is None else a / r[key] >= 3.0,
                )
            )
    else:
        parquet_dir = Path(args.workdir) / "parquet"

        def parquet_write(turn: int) -> None:
            mixed.write.mode("overwrite").parquet(str(parquet_dir))

        w = _interleaved({"sqltrack": log("mixed", "mixed"), "parquet": parquet_write}, repeats)
        out.append(
            result(
                f"write: log_dataset, {label}",
                backend,
                seconds=w["sqltrack"],
                anchor="Spark's own Parquet write",
                anchor_figure=w["parquet"],
                target="within 1.5x of the anchor",
                met=w["sqltrack"] <= 1.5 * w["parquet"],
            )
        )

        def parquet_read(turn: int) -> None:
            _noop(spark.read.parquet(str(parquet_dir)))

        r = _interleaved(
            {
                "sqltrack": load("mixed"),
                "sqltrack_noverify": load("mixed", verify=False),
                "parquet": parquet_read,
            },
            repeats,
        )
        for key, what in (
            ("sqltrack", "load_dataset (fingerprint checked)"),
            ("sqltrack_noverify", "format('sqltrack') read, verify=false"),
        ):
            out.append(
                result(
                    f"read: {what}, {label}",
                    backend,
                    seconds=r[key],
                    anchor="Spark's own Parquet read, noop sink",
                    anchor_figure=r["parquet"],
                )
            )
        shutil.rmtree(parquet_dir, ignore_errors=True)
    # Vectors: the same 20 doubles as one VectorUDT column vs 20 plain columns.
    v = _interleaved(
        {"vector20": log("vector20", "vector20"), "doubles20": log("doubles20", "doubles20")},
        repeats,
    )
    out.append(
        result(
            f"write: log_dataset, {rows_n:,} rows x one 20-dim vector",
            backend,
            seconds=v["vector20"],
            anchor="log_dataset of the same 20 doubles as plain columns",
            anchor_figure=v["doubles20"],
            target="at most 2x the anchor's time (ratio >= 0.5)",
            met=v["vector20"] <= 2.0 * v["doubles20"],
        )
    )
    rv = _interleaved(
        {"vector20": load("vector20"), "doubles20": load("doubles20")},
        repeats,
    )
    out.append(
        result(
            f"read: load_dataset, {rows_n:,} rows x one 20-dim vector",
            backend,
            seconds=rv["vector20"],
            anchor="load_dataset of the same 20 doubles as plain columns",
            anchor_figure=rv["doubles20"],
            target="at most 2x the anchor's time (ratio >= 0.5)",
            met=rv["vector20"] <= 2.0 * rv["doubles20"],
        )
    )
    tracker.end_run()
    tracker.close()
    return out


def run(args: Any) -> list[dict[str, Any]]:
    backends = tuple(getattr(args, "backends", ("duckdb", "postgres")))
    if "postgres" in backends:
        reason = pg_available(pg_dsn(args))
        if reason:
            _log(f"PostgreSQL is unreachable ({reason}); skipping it")
            backends = tuple(b for b in backends if b != "postgres")
    if not JDBC_JAR.exists():
        _log(f"{JDBC_JAR} is missing (apt-get install libpostgresql-jdbc-java); no JDBC anchors")
    rows_n, _ = SIZES[getattr(args, "size", "full")]
    spark = _spark(JDBC_JAR.exists())
    try:
        frames = _frames(spark, rows_n)
        out: list[dict[str, Any]] = []
        for backend in backends:
            with _store(backend, args) as uri:
                out += measure(backend, uri, spark, frames, args)
        return out
    finally:
        spark.stop()
