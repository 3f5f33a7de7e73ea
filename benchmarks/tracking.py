"""Tracking store benchmarks (issue 2, "Performance"), on DuckDB and PostgreSQL.

* ``log_metric`` one call at a time, every call committed before it returns;
* ``log_metrics`` in batches of 1,000 points (points/s);
* ``search_runs`` with a metric filter and an order over 10,000 runs of 20 params and
  10 metrics each (loaded in bulk first; the median of several searches).

Anchors, measured in the same run: MLflow's own client with its SQL store on the same
PostgreSQL server (a separate fresh database; skipped when ``mlflow`` is not
installed), and the engines themselves through their drivers on the same tables:
single-row INSERT in autocommit, COPY (PostgreSQL) or an Arrow insert (DuckDB), and
one hand-written SQL query giving the same search answer.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import (
    median_rate,
    median_seconds,
    pg_available,
    pg_database,
    pg_dsn,
    result,
)

LOG_METRIC = "log_metric, one call at a time (each committed)"
LOG_METRICS = "log_metrics, batches of {batch:,} points"
SEARCH = "search_runs: metric filter + order, {runs:,} runs x {params} params x {metrics} metrics"
METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp")


@dataclass(frozen=True)
class Size:
    calls: int  # log_metric calls per backend, split over `repeats`
    mlflow_calls: int
    batch: int  # points per log_metrics call
    batches: int  # batches timed per backend (the median counts)
    mlflow_batches: int
    runs: int  # runs loaded for the search
    params: int
    metrics: int
    searches: int  # timed searches (the median counts)
    repeats: int = 5


SIZES = {
    "full": Size(1500, 250, 1000, 10, 5, 10_000, 20, 10, 5),
    "small": Size(300, 50, 1000, 5, 3, 1_000, 20, 10, 3),
    "tiny": Size(20, 10, 50, 2, 2, 30, 3, 2, 2, repeats=2),
}


def _log(message: str) -> None:
    print(f"  tracking: {message}", file=sys.stderr, flush=True)


# -- sqltrack ------------------------------------------------------------------------------
def sqltrack_log_metric(tracker: Any, calls: int, repeats: int) -> float:
    """Points/s of ``log_metric`` called once per point (the median of ``repeats``)."""
    step = iter(range(10**9))

    def body(n: int) -> None:
        for _ in range(n):
            tracker.log_metric("loss", 0.5, step=next(step))

    body(5)  # warm-up: connection, prepared plans
    return median_rate(max(calls // repeats, 1), repeats, body)


def sqltrack_log_metrics(tracker: Any, batch: int, batches: int) -> float:
    """Points/s of ``log_metrics`` with ``batch`` points per call (the median call)."""
    steps = iter(range(10**9))
    points = [{f"m{j:04d}": j / batch for j in range(batch)}]

    def body(_: int) -> None:
        tracker.log_metrics(points[0], step=next(steps))

    body(0)  # warm-up
    return median_rate(batch, batches, body)


def load_search_runs(tracker: Any, size: Size, seed: int = 7) -> tuple[str, float]:
    """Bulk-load ``size.runs`` finished runs with params and one point per metric;
    return the experiment name and the seconds the load took."""
    rng = random.Random(seed)
    name = "search-bench"
    started = time.perf_counter()
    experiment_id = tracker.create_experiment(name)
    t0 = datetime.now(timezone.utc) - timedelta(days=1)
    runs, params, metrics = [], [], []
    for i in range(size.runs):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        start = t0 + timedelta(seconds=i)
        runs.append((run_id, experiment_id, f"run-{i}", "FINISHED", "bench", start, start, "bench"))
        params += [(run_id, f"p{j:02d}", str(rng.randrange(100))) for j in range(size.params)]
        metrics += [
            (run_id, f"m{j:02d}", rng.random(), 0, start + timedelta(seconds=1))
            for j in range(size.metrics)
        ]
    with tracker.backend.transaction() as s:
        s.insert_rows(
            "sqltrack.runs",
            (
                "run_id",
                "experiment_id",
                "run_name",
                "status",
                "user_name",
                "start_time",
                "end_time",
                "host_name",
            ),
            runs,
        )
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


def duckdb_insert(tracker: Any, run_id: str, calls: int, repeats: int) -> float:
    """Rows/s of single-row INSERTs in autocommit on sqltrack's own DuckDB connection."""
    now = datetime.now(timezone.utc)
    step = iter(range(10**9))

    def body(n: int) -> None:
        with tracker.backend.session() as s:
            con = s.raw
            for _ in range(n):
                con.execute(
                    "INSERT INTO sqltrack.metrics VALUES (?, ?, ?, ?, ?)",
                    [run_id, "raw", 0.5, next(step), now],
                )

    body(5)
    return median_rate(max(calls // repeats, 1), repeats, body)


def duckdb_arrow_insert(tracker: Any, run_id: str, batch: int, batches: int) -> float:
    """Rows/s of the same batches built as an Arrow table and inserted in one statement."""
    import pyarrow as pa

    step = iter(range(10**9))

    def body(n: int) -> None:
        now = datetime.now(timezone.utc)
        st = next(step)
        rows = [(run_id, f"m{j:04d}", j / n, st, now) for j in range(n)]
        table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(METRIC_COLUMNS)})
        with tracker.backend.session() as s:
            con = s.raw
            con.register("_bench_batch", table)
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute("INSERT INTO sqltrack.metrics SELECT * FROM _bench_batch")
                con.execute("COMMIT")
            finally:
                con.unregister("_bench_batch")

    body(batch)
    return median_rate(batch, batches, body)


def pg_insert(uri: str, run_id: str, calls: int, repeats: int) -> float:
    """Rows/s of single-row INSERTs in autocommit (each committed) through psycopg."""
    import psycopg

    now = datetime.now(timezone.utc)
    step = iter(range(10**9))
    with psycopg.connect(uri, autocommit=True) as conn:

        def body(n: int) -> None:
            for _ in range(n):
                conn.execute(
                    "INSERT INTO sqltrack.metrics (run_id, key, value, step, timestamp) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (run_id, "raw", 0.5, next(step), now),
                )

        body(5)
        return median_rate(max(calls // repeats, 1), repeats, body)


def pg_copy(uri: str, run_id: str, batch: int, batches: int) -> float:
    """Rows/s of the same batches through binary COPY, one transaction per batch."""
    import psycopg

    step = iter(range(10**9))
    with psycopg.connect(uri, autocommit=True) as conn:

        def body(n: int) -> None:
            now = datetime.now(timezone.utc)
            st = next(step)
            rows = [(run_id, f"m{j:04d}", j / n, st, now) for j in range(n)]
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(
                    "COPY sqltrack.metrics (run_id, key, value, step, timestamp) "
                    "FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "float8", "int8", "timestamptz"])
                    for row in rows:
                        copy.write_row(row)

        body(batch)
        return median_rate(batch, batches, body)


# -- MLflow ----------------------------------------------------------------------------------
def mlflow_importable() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("mlflow") is not None
    except ValueError:
        return False


def mlflow_anchors(dsn: str, size: Size, workdir: str) -> dict[str, float]:
    """MLflow's client on its SQL store in a fresh database of the same server:
    ``log_metric`` one call at a time and ``log_batch`` (points/s)."""
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
        step = iter(range(10**9))

        def one_at_a_time(n: int) -> None:
            for _ in range(n):
                client.log_metric(run_id, "loss", 0.5, step=next(step))

        one_at_a_time(3)
        figures = {
            "log_metric": median_rate(
                max(size.mlflow_calls // size.repeats, 1), size.repeats, one_at_a_time
            )
        }

        def batch(n: int) -> None:
            st = next(step)
            ms = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(f"m{j:04d}", j / n, ms, st) for j in range(n)])

        batch(size.batch)
        figures["log_batch"] = median_rate(size.batch, size.mlflow_batches, batch)
        client.set_terminated(run_id)
        store = getattr(getattr(client, "_tracking_client", None), "store", None)
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()
    return figures


# -- the stores ------------------------------------------------------------------------------
@contextmanager
def _store(backend: str, args: Any) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{Path(args.workdir, 'bench.duckdb')}"
    else:
        with pg_database(pg_dsn(args), "sqltrack_bench") as uri:
            yield uri


def measure_backend(
    backend: str, uri: str, size: Size, mlflow: dict[str, float]
) -> list[dict[str, Any]]:
    import sqltrack

    rows = []
    tracker = sqltrack.connect(uri)
    try:
        tracker.create_experiment("write-bench")
        run = tracker.start_run(run_name="write-bench")
        run_id = run.info.run_id

        # log_metric, one call at a time
        rate = sqltrack_log_metric(tracker, size.calls, size.repeats)
        _log(f"{backend} log_metric: {rate:,.0f} points/s")
        if backend == "postgres":
            raw = pg_insert(uri, run_id, size.calls, size.repeats)
            anchor = mlflow.get("log_metric")
            rows.append(
                result(
                    LOG_METRIC,
                    backend,
                    rate=rate,
                    unit="points/s",
                    anchor="MLflow 3 client.log_metric, SQL store",
                    anchor_figure=anchor,
                    target=">= 10x MLflow",
                    met=None if anchor is None else rate >= 10 * anchor,
                    note="" if anchor else "MLflow not measured (not installed or --no-mlflow)",
                )
            )
            raw_name = "psycopg single-row INSERT, autocommit"
        else:
            raw = duckdb_insert(tracker, run_id, size.calls, size.repeats)
            raw_name = "duckdb single-row INSERT, autocommit"
        rows.append(
            result(LOG_METRIC, backend, rate=rate, unit="points/s", anchor=raw_name,
                   anchor_figure=raw)
        )  # fmt: skip

        # log_metrics in batches
        rate = sqltrack_log_metrics(tracker, size.batch, size.batches)
        _log(f"{backend} log_metrics: {rate:,.0f} points/s")
        name = LOG_METRICS.format(batch=size.batch)
        target = {"target": ">= 100,000 points/s", "met": rate >= 100_000}
        if backend == "postgres":
            raw = pg_copy(uri, run_id, size.batch, size.batches)
            raw_name = "psycopg binary COPY, one transaction per batch"
            anchor = mlflow.get("log_batch")
            rows.append(
                result(
                    name,
                    backend,
                    rate=rate,
                    unit="points/s",
                    anchor="MLflow 3 client.log_batch, SQL store",
                    anchor_figure=anchor,
                    note="" if anchor else "MLflow not measured (not installed or --no-mlflow)",
                    **target,
                )
            )
        else:
            raw = duckdb_arrow_insert(tracker, run_id, size.batch, size.batches)
            raw_name = "duckdb Arrow INSERT ... SELECT, one transaction per batch"
        rows.append(
            result(name, backend, rate=rate, unit="points/s", anchor=raw_name, anchor_figure=raw,
                   **(target if backend == "duckdb" else {}))
        )  # fmt: skip
        tracker.end_run()

        # search_runs over many runs
        experiment, load_seconds = load_search_runs(tracker, size)
        _log(f"{backend} loaded {size.runs:,} runs in {load_seconds:.1f} s")
        seconds, frame = sqltrack_search(tracker, experiment, size.searches)
        raw_seconds, raw_answer = anchor_search(tracker, backend, experiment, size.searches)
        _log(f"{backend} search_runs: {seconds:.3f} s (hand-written SQL {raw_seconds:.3f} s)")
        same = list(frame["run_id"]) == [r[0] for r in raw_answer]
        rows.append(
            result(
                SEARCH.format(runs=size.runs, params=size.params, metrics=size.metrics),
                backend,
                seconds=seconds,
                anchor="one hand-written SQL query, same answer",
                anchor_figure=raw_seconds,
                target="< 0.5 s",
                met=seconds < 0.5,
                note=f"{len(frame)} runs returned; load {load_seconds:.1f} s"
                + ("" if same else "; ANSWER DIFFERS from the hand-written query"),
            )
        )
    finally:
        tracker.close()
    return rows


def run(args: Any) -> list[dict[str, Any]]:
    size = SIZES[getattr(args, "size", "full")]
    backends = tuple(getattr(args, "backends", ("duckdb", "postgres")))
    rows: list[dict[str, Any]] = []
    if "postgres" in backends:
        reason = pg_available(pg_dsn(args))
        if reason:
            _log(f"PostgreSQL at {pg_dsn(args)} is unreachable ({reason}); skipping it")
            backends = tuple(b for b in backends if b != "postgres")
    mlflow: dict[str, float] = {}
    if "postgres" in backends and getattr(args, "mlflow", True):
        if mlflow_importable():
            mlflow = mlflow_anchors(pg_dsn(args), size, args.workdir)
            _log(f"MLflow: {mlflow}")
        else:
            _log("mlflow is not installed (pip install -e '.[bench]'); MLflow anchors skipped")
    for backend in backends:
        with _store(backend, args) as uri:
            rows += measure_backend(backend, uri, size, mlflow)
    return rows
