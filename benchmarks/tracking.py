"""Tracking store benchmarks (issue 2, "Performance"), on DuckDB and PostgreSQL.

* ``log_metric`` one call at a time, every call committed before it returns;
* ``log_metrics`` in batches of 1,000 points (points/s);
* ``search_runs`` with a metric filter and an order over 10,000 runs of 20 params and
  10 metrics each (loaded in bulk first; the median of several searches).

Anchors, measured in the same run: MLflow's own client with its SQL store on the same
PostgreSQL server (a separate fresh database; skipped when ``mlflow`` is not
installed), and the engines themselves through their drivers on the same tables:
single-row INSERT in autocommit, binary COPY (PostgreSQL) or an Arrow insert (DuckDB),
and one hand-written SQL query giving the same search answer.

The machine is shared, so a figure and its anchors take turns repeat by repeat
(:func:`benchmarks._common.interleaved_rates`) and each reports its median repeat.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import (
    interleaved_rates,
    median_seconds,
    pg_available,
    pg_database,
    pg_dsn,
    result,
)

LOG_METRIC = "log_metric, one call at a time (journaled; see benchmarks/journal.py)"
LOG_METRICS = "log_metrics, batches of {batch:,} points"
SEARCH = "search_runs: metric filter + order, {runs:,} runs x {params} params x {metrics} metrics"
METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp")
MLFLOW_LOG_METRIC = "MLflow 3 client.log_metric, SQL store"
MLFLOW_LOG_BATCH = "MLflow 3 client.log_batch, SQL store"
NO_MLFLOW = "MLflow not measured (not installed, or --no-mlflow)"

Body = Callable[[int], None]


@dataclass(frozen=True)
class Size:
    calls: int  # log_metric calls per case, split over `repeats`
    mlflow_calls: int
    batch: int  # points per log_metrics call
    batches: int  # batches timed per case (the median counts)
    runs: int  # runs loaded for the search
    params: int
    metrics: int
    searches: int  # timed searches (the median counts)
    repeats: int = 5


SIZES = {
    "full": Size(1800, 270, 1000, 9, 10_000, 20, 10, 7, repeats=9),
    "small": Size(300, 50, 1000, 3, 1_000, 20, 10, 3),
    "tiny": Size(20, 10, 50, 2, 30, 3, 2, 2, repeats=2),
}


def _log(message: str) -> None:
    print(f"  tracking: {message}", file=sys.stderr, flush=True)


def _steps() -> Iterator[int]:
    return iter(range(10**12))


# -- sqltrack ------------------------------------------------------------------------------
def sqltrack_log_metric(tracker: Any, run_id: str | None = None, key: str = "loss") -> Body:
    """``log_metric`` called once per point."""
    step = _steps()

    def body(n: int) -> None:
        for _ in range(n):
            tracker.log_metric(key, 0.5, step=next(step), run_id=run_id)

    return body


def sqltrack_log_metrics(tracker: Any, run_id: str | None = None) -> Body:
    """``log_metrics`` with ``n`` points (keys) per call."""
    step = _steps()
    points: dict[int, dict[str, float]] = {}

    def body(n: int) -> None:
        if n not in points:
            points[n] = {f"m{j:04d}": j / n for j in range(n)}
        tracker.log_metrics(points[n], step=next(step), run_id=run_id)

    return body


def load_search_runs(tracker: Any, size: Size, seed: int = 7) -> tuple[str, float]:
    """Bulk-load ``size.runs`` finished runs with params and one point per metric through
    sqltrack's bulk path; return the experiment name and the seconds the load took."""
    rng = random.Random(seed)
    name = "search-bench"
    started = time.perf_counter()
    experiment_id = tracker.create_experiment(name)
    t0 = datetime.now(timezone.utc) - timedelta(days=1)
    runs, params, metrics = [], [], []
    for i in range(size.runs):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        start = t0 + timedelta(seconds=i)
        runs.append((run_id, experiment_id, f"run-{i}", "FINISHED", "bench", start, start, "h"))
        params += [(run_id, f"p{j:02d}", str(rng.randrange(100))) for j in range(size.params)]
        metrics += [
            (run_id, f"m{j:02d}", rng.random(), 0, start + timedelta(seconds=1))
            for j in range(size.metrics)
        ]
    run_columns = (
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "user_name",
        "start_time",
        "end_time",
        "host_name",
    )
    with tracker.backend.transaction() as s:
        s.insert_rows("sqltrack.runs", run_columns, runs)
        s.insert_rows("sqltrack.params", ("run_id", "key", "value"), params)
        s.insert_rows("sqltrack.metrics", METRIC_COLUMNS, metrics)
    return name, time.perf_counter() - started


def sqltrack_search(tracker: Any, experiment: str, searches: int) -> tuple[float, Any]:
    """Median seconds of the benchmark's ``search_runs``; also the last answer."""
    answer: list[Any] = []

    def body() -> None:
        answer[:] = [
            tracker.search_runs(
                experiment_names=[experiment],
                filter_string="metrics.m00 > 0.5",
                order_by=["metrics.m01 DESC"],
            )
        ]

    seconds = median_seconds(searches, body)
    return seconds, answer[0]


# -- engine anchors --------------------------------------------------------------------------
# The same search as one hand-written query per engine: the runs, their params and their
# latest metrics aggregated as JSON (the benchmark, not sqltrack, holds dialect SQL here).
_ANCHOR_SEARCH = """
SELECT r.run_id, r.run_name, r.status, r.start_time, r.end_time, r.user_name,
       (SELECT {agg}(p.key, p.value) FROM sqltrack.params p WHERE p.run_id = r.run_id),
       (SELECT {agg}(m.key, m.value) FROM sqltrack.latest_metrics m WHERE m.run_id = r.run_id)
FROM sqltrack.runs r
JOIN sqltrack.experiments e ON e.experiment_id = r.experiment_id
JOIN sqltrack.latest_metrics a ON a.run_id = r.run_id AND a.key = 'm00'
JOIN sqltrack.latest_metrics b ON b.run_id = r.run_id AND b.key = 'm01'
WHERE e.name = ? AND a.value > 0.5
ORDER BY b.value DESC, r.start_time DESC, r.run_id
LIMIT 1000
"""
_JSON_AGG = {"duckdb": "json_group_object", "postgres": "json_object_agg"}


def anchor_search(tracker: Any, backend: str, experiment: str, searches: int) -> tuple[float, Any]:
    query = _ANCHOR_SEARCH.format(agg=_JSON_AGG[backend])
    answer: list[Any] = []

    def body() -> None:
        with tracker.backend.session(read_only=True) as s:
            answer[:] = [s.query(query, (experiment,))]

    return median_seconds(searches, body), answer[0]


def duckdb_insert(tracker: Any, run_id: str) -> Body:
    """Single-row INSERTs in autocommit on sqltrack's own DuckDB connection (DuckDB
    admits one connection to the file per process)."""
    now = datetime.now(timezone.utc)
    step = _steps()

    def body(n: int) -> None:
        with tracker.backend.session() as s:
            con = s.raw
            for _ in range(n):
                con.execute(
                    'INSERT INTO sqltrack.metrics (run_id, key, value, step, "timestamp") '
                    "VALUES (?, ?, ?, ?, ?)",
                    [run_id, "raw", 0.5, next(step), now],
                )

    return body


def duckdb_arrow_insert(tracker: Any, run_id: str) -> Body:
    """The same batches built as an Arrow table and inserted in one statement."""
    import pyarrow as pa

    step = _steps()

    def body(n: int) -> None:
        now = datetime.now(timezone.utc)
        st = next(step)
        rows = [(run_id, f"raw{j:04d}", j / n, st, now) for j in range(n)]
        table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(METRIC_COLUMNS)})
        with tracker.backend.session() as s:
            con = s.raw
            con.register("_bench_batch", table)
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    'INSERT INTO sqltrack.metrics (run_id, key, value, step, "timestamp") '
                    "SELECT * FROM _bench_batch"
                )
                con.execute("COMMIT")
            finally:
                con.unregister("_bench_batch")

    return body


def pg_insert(conn: Any, run_id: str) -> Body:
    """Single-row INSERTs in autocommit (each committed) through psycopg."""
    now = datetime.now(timezone.utc)
    step = _steps()

    def body(n: int) -> None:
        for _ in range(n):
            conn.execute(
                "INSERT INTO sqltrack.metrics (run_id, key, value, step, timestamp) "
                "VALUES (%s, %s, %s, %s, %s)",
                (run_id, "raw", 0.5, next(step), now),
            )

    return body


def pg_copy(conn: Any, run_id: str) -> Body:
    """The same batches through binary COPY, one transaction per batch."""
    step = _steps()

    def body(n: int) -> None:
        now = datetime.now(timezone.utc)
        st = next(step)
        rows = [(run_id, f"raw{j:04d}", j / n, st, now) for j in range(n)]
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(
                "COPY sqltrack.metrics (run_id, key, value, step, timestamp) "
                "FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "float8", "int8", "timestamptz"])
                for row in rows:
                    copy.write_row(row)

    return body


# -- MLflow ----------------------------------------------------------------------------------
def mlflow_importable() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("mlflow") is not None
    except ValueError:
        return False


@contextmanager
def mlflow_client(dsn: str, workdir: str) -> Iterator[tuple[Body, Body]]:
    """MLflow's client on its SQL store in a fresh database of the same server; yields
    bodies for ``log_metric`` one call at a time and ``log_batch``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    started = time.perf_counter()
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    _log(f"import mlflow: {time.perf_counter() - started:.1f} s")
    with pg_database(dsn, "sqltrack_bench_mlflow") as uri:
        started = time.perf_counter()
        client = MlflowClient(tracking_uri=uri.replace("postgresql://", "postgresql+psycopg://"))
        experiment_id = client.create_experiment(
            "bench", artifact_location=Path(workdir, "mlruns").as_uri()
        )
        run_id = client.create_run(experiment_id).info.run_id
        _log(f"MLflow store set up (migrations, first run): {time.perf_counter() - started:.1f} s")
        step = _steps()

        def log_metric(n: int) -> None:
            for _ in range(n):
                client.log_metric(run_id, "loss", 0.5, step=next(step))

        def log_batch(n: int) -> None:
            st, ms = next(step), int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(f"m{j:04d}", j / n, ms, st) for j in range(n)])

        try:
            yield log_metric, log_batch
        finally:
            store = getattr(getattr(client, "_tracking_client", None), "store", None)
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()


# -- the stores ------------------------------------------------------------------------------
@contextmanager
def _store(backend: str, args: Any) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{Path(args.workdir, 'bench.duckdb')}"
    else:
        with pg_database(pg_dsn(args), "sqltrack_bench") as uri:
            yield uri


def _writes_postgres(
    tracker: Any, uri: str, run_id: str, size: Size, mlflow: tuple[Body, Body] | None
) -> list[dict[str, Any]]:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        per = max(size.calls // size.repeats, 1)
        cases = {
            "sqltrack": (per, sqltrack_log_metric(tracker)),
            "insert": (per, pg_insert(conn, run_id)),
        }
        if mlflow:
            cases["mlflow"] = (max(size.mlflow_calls // size.repeats, 1), mlflow[0])
        one = interleaved_rates(cases, size.repeats)
        _log(f"postgres log_metric (points/s): {one}")
        cases = {
            "sqltrack": (size.batch, sqltrack_log_metrics(tracker)),
            "copy": (size.batch, pg_copy(conn, run_id)),
        }
        if mlflow:
            cases["mlflow"] = (size.batch, mlflow[1])
        batched = interleaved_rates(cases, size.batches)
        _log(f"postgres log_metrics (points/s): {batched}")
    m1, mb = one.get("mlflow"), batched.get("mlflow")
    name = LOG_METRICS.format(batch=size.batch)
    batch_target = {"target": ">= 100,000 points/s", "met": batched["sqltrack"] >= 100_000}
    return [
        result(
            LOG_METRIC,
            "postgres",
            rate=one["sqltrack"],
            unit="points/s",
            anchor=MLFLOW_LOG_METRIC,
            anchor_figure=m1,
            target=">= 10x MLflow",
            met=None if m1 is None else one["sqltrack"] >= 10 * m1,
            note="" if m1 else NO_MLFLOW,
        ),
        result(
            LOG_METRIC,
            "postgres",
            rate=one["sqltrack"],
            unit="points/s",
            anchor="psycopg single-row INSERT, autocommit",
            anchor_figure=one["insert"],
        ),
        result(
            name,
            "postgres",
            rate=batched["sqltrack"],
            unit="points/s",
            anchor=MLFLOW_LOG_BATCH,
            anchor_figure=mb,
            note="" if mb else NO_MLFLOW,
            **batch_target,
        ),
        result(
            name,
            "postgres",
            rate=batched["sqltrack"],
            unit="points/s",
            anchor="psycopg binary COPY, one transaction per batch",
            anchor_figure=batched["copy"],
        ),
    ]


def _writes_duckdb(tracker: Any, run_id: str, size: Size) -> list[dict[str, Any]]:
    per = max(size.calls // size.repeats, 1)
    one = interleaved_rates(
        {
            "sqltrack": (per, sqltrack_log_metric(tracker)),
            "insert": (per, duckdb_insert(tracker, run_id)),
        },
        size.repeats,
    )
    _log(f"duckdb log_metric (points/s): {one}")
    batched = interleaved_rates(
        {
            "sqltrack": (size.batch, sqltrack_log_metrics(tracker)),
            "arrow": (size.batch, duckdb_arrow_insert(tracker, run_id)),
        },
        size.batches,
    )
    _log(f"duckdb log_metrics (points/s): {batched}")
    return [
        result(
            LOG_METRIC,
            "duckdb",
            rate=one["sqltrack"],
            unit="points/s",
            anchor="duckdb single-row INSERT, autocommit",
            anchor_figure=one["insert"],
        ),
        result(
            LOG_METRICS.format(batch=size.batch),
            "duckdb",
            rate=batched["sqltrack"],
            unit="points/s",
            anchor="duckdb Arrow INSERT ... SELECT, one transaction per batch",
            anchor_figure=batched["arrow"],
            target=">= 100,000 points/s",
            met=batched["sqltrack"] >= 100_000,
        ),
    ]


def _searches(tracker: Any, backend: str, size: Size) -> list[dict[str, Any]]:
    experiment, load_seconds = load_search_runs(tracker, size)
    _log(f"{backend}: loaded {size.runs:,} runs in {load_seconds:.1f} s")
    # PostgreSQL plans from statistics that autovacuum gathers later: time the search
    # right after the bulk load (none yet) and again after ANALYZE.
    phases = [("", False)]
    if backend == "postgres":
        phases = [(" (right after the load, no statistics)", False), (" (after ANALYZE)", True)]
    rows = []
    for label, analyze in phases:
        if analyze:
            with tracker.backend.session() as s:
                s.execute("ANALYZE")
        seconds, frame = sqltrack_search(tracker, experiment, size.searches)
        raw_seconds, raw_answer = anchor_search(tracker, backend, experiment, size.searches)
        _log(f"{backend} search_runs{label}: {seconds:.3f} s (SQL {raw_seconds:.3f} s)")
        same = list(frame["run_id"]) == [r[0] for r in raw_answer]
        rows.append(
            result(
                SEARCH.format(runs=size.runs, params=size.params, metrics=size.metrics) + label,
                backend,
                seconds=seconds,
                anchor="one hand-written SQL query, same answer",
                anchor_figure=raw_seconds,
                target="< 0.5 s",
                met=seconds < 0.5,
                note=f"{len(frame)} runs returned; bulk load {load_seconds:.1f} s"
                + ("" if same else "; ANSWER DIFFERS from the hand-written query"),
            )
        )
    return rows


def measure_backend(
    backend: str, uri: str, size: Size, mlflow: tuple[Body, Body] | None
) -> list[dict[str, Any]]:
    import sqltrack

    tracker = sqltrack.connect(uri)
    try:
        tracker.create_experiment("write-bench")
        run_id = tracker.start_run(run_name="write-bench").info.run_id
        tracker.flush()  # the raw-SQL anchors below need the run in the store
        if backend == "postgres":
            rows = _writes_postgres(tracker, uri, run_id, size, mlflow)
        else:
            rows = _writes_duckdb(tracker, run_id, size)
        tracker.end_run()
        rows += _searches(tracker, backend, size)
    finally:
        tracker.close()
    return rows


def run(args: Any) -> list[dict[str, Any]]:
    size = SIZES[getattr(args, "size", "full")]
    backends = tuple(getattr(args, "backends", ("duckdb", "postgres")))
    if "postgres" in backends:
        reason = pg_available(pg_dsn(args))
        if reason:
            _log(f"PostgreSQL at {pg_dsn(args)} is unreachable ({reason}); skipping it")
            backends = tuple(b for b in backends if b != "postgres")
    rows: list[dict[str, Any]] = []
    for backend in backends:
        with _store(backend, args) as uri:
            if backend != "postgres":
                rows += measure_backend(backend, uri, size, None)
            elif not getattr(args, "mlflow", True):
                rows += measure_backend(backend, uri, size, None)
            elif not mlflow_importable():
                _log("mlflow is not installed (pip install -e '.[bench]'); no MLflow anchors")
                rows += measure_backend(backend, uri, size, None)
            else:
                with mlflow_client(pg_dsn(args), args.workdir) as mlflow:
                    rows += measure_backend(backend, uri, size, mlflow)
    return rows
