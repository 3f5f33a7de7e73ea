"""Write-path benchmarks (issue 8, "Performance"): the durable journal against the
commit-per-call path it replaced and against MLflow 3's client, synchronous and
asynchronous, on DuckDB and PostgreSQL.

* ``log_metric`` one call at a time. sqltrack's call returns when its record is in the
  journal (on disk; fsync at least every second), MLflow's synchronous call when its
  store has committed, its asynchronous call (``synchronous=False``) when the point is in
  an in-memory queue (lost if the process dies). The commit-per-call anchor is sqltrack
  with ``SQLTRACK_JOURNAL=off``.
* Draining 100,000 queued points into the store (``Tracker.flush`` on a journal whose
  flusher was parked while they were logged), beside the engine's own bulk path for the
  same rows (binary COPY, an Arrow insert) in one transaction.
* Resident memory of a process with 1,000,000 points waiting in its journal (delivery
  parked), in a fresh process.

Figures and anchors take turns repeat by repeat (:func:`benchmarks._common.interleaved_rates`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import interleaved_rates, pg_available, pg_database, pg_dsn, result
from benchmarks.tracking import (
    duckdb_arrow_insert,
    mlflow_importable,
    pg_copy,
    sqltrack_log_metric,
)

JOURNALED = "log_metric, one call at a time (journaled: on disk when it returns)"
DRAIN = "drain {points:,} journaled points into the store"
MEMORY = "resident memory with {points:,} points queued in the journal"
_PARKED = {"SQLTRACK_JOURNAL_INTERVAL": "3600", "SQLTRACK_JOURNAL_FSYNC": "3600"}


@dataclass(frozen=True)
class Size:
    journaled: int  # sqltrack calls per repeat
    direct: int  # commit-per-call calls per repeat
    mlflow_sync: int
    mlflow_async: int
    drain: int
    queued: int
    repeats: int = 5


SIZES = {
    "full": Size(20_000, 300, 60, 2_000, 100_000, 1_000_000, repeats=7),
    "small": Size(5_000, 100, 20, 500, 20_000, 100_000),
    "tiny": Size(200, 10, 5, 20, 1_000, 2_000, repeats=2),
}


def _log(message: str) -> None:
    print(f"  journal: {message}", file=sys.stderr, flush=True)


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _store(backend: str, args: Any, name: str) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{Path(args.workdir, name + '.duckdb')}"
    else:
        with pg_database(pg_dsn(args), "sqltrack_bench_" + name) as uri:
            yield uri


@contextmanager
def _mlflow(dsn: str, workdir: str) -> Iterator[tuple[Any, Any]]:
    """MLflow's client on its SQL store (PostgreSQL, a fresh database): log_metric bodies,
    synchronous and asynchronous (the latter also returns its pending operations)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    from mlflow.tracking import MlflowClient

    with pg_database(dsn, "sqltrack_bench_mlflow") as uri:
        client = MlflowClient(tracking_uri=uri.replace("postgresql://", "postgresql+psycopg://"))
        experiment_id = client.create_experiment(
            "bench", artifact_location=Path(workdir, "mlruns").as_uri()
        )
        run_id = client.create_run(experiment_id).info.run_id
        steps = iter(range(10**12))
        pending: list[Any] = []

        def sync(n: int) -> None:
            for _ in range(n):
                client.log_metric(run_id, "loss", 0.5, step=next(steps))

        def asynchronous(n: int) -> None:
            for _ in range(n):
                pending.append(
                    client.log_metric(run_id, "aloss", 0.5, step=next(steps), synchronous=False)
                )

        try:
            yield sync, asynchronous
        finally:
            for op in pending[-1:]:
                op.wait()
            store = getattr(getattr(client, "_tracking_client", None), "store", None)
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()


def _one_call(backend: str, uri: str, size: Size, mlflow: tuple[Any, Any] | None) -> list[Any]:
    import sqltrack

    journaled = sqltrack.connect(uri)
    with _env({"SQLTRACK_JOURNAL": "off"}):
        direct = sqltrack.connect(uri)
    try:
        journaled.start_run(run_name="journaled")
        run_id = direct.start_run(run_name="direct").info.run_id
        cases: dict[str, tuple[int, Any]] = {
            "journaled": (size.journaled, sqltrack_log_metric(journaled)),
            "direct": (size.direct, sqltrack_log_metric(direct, run_id)),
        }
        if mlflow is not None:
            cases["mlflow_sync"] = (size.mlflow_sync, mlflow[0])
            cases["mlflow_async"] = (size.mlflow_async, mlflow[1])
        rates = interleaved_rates(cases, size.repeats)
        _log(f"{backend} log_metric (points/s): {rates}")
        started = time.perf_counter()
        journaled.flush()
        _log(
            f"{backend}: the journaled points reached the store "
            f"{time.perf_counter() - started:.2f} s after the last call"
        )
        journaled.end_run()
        direct.end_run()
    finally:
        journaled.close()
        direct.close()
    rows = [
        result(
            JOURNALED,
            backend,
            rate=rates["journaled"],
            unit="points/s",
            anchor="sqltrack commit-per-call (SQLTRACK_JOURNAL=off, the old path)",
            anchor_figure=rates["direct"],
        )
    ]
    if mlflow is None:
        return rows
    return rows + [
        result(
            JOURNALED,
            backend,
            rate=rates["journaled"],
            unit="points/s",
            anchor="MLflow 3 client.log_metric, synchronous, SQL store on PostgreSQL",
            anchor_figure=rates["mlflow_sync"],
            target=">= 100x MLflow synchronous",
            met=rates["journaled"] >= 100 * rates["mlflow_sync"],
        ),
        result(
            JOURNALED,
            backend,
            rate=rates["journaled"],
            unit="points/s",
            anchor="MLflow 3 client.log_metric(synchronous=False), SQL store on PostgreSQL",
            anchor_figure=rates["mlflow_async"],
            target="faster than MLflow asynchronous",
            met=rates["journaled"] > rates["mlflow_async"],
            note="MLflow's asynchronous point is in an in-memory queue when the call returns "
            "(lost if the process dies); sqltrack's is in the journal on disk",
        ),
    ]


def _drain(backend: str, uri: str, size: Size, args: Any) -> list[Any]:
    """Seconds to deliver ``size.drain`` queued points, beside the engine's bulk insert of
    the same number of rows in one transaction (median of interleaved repeats)."""
    import sqltrack

    anchor_tracker = sqltrack.connect(uri)
    anchor_run = anchor_tracker.start_run(run_name="anchor").info.run_id
    anchor_tracker.flush()
    conn = None
    if backend == "postgres":
        import psycopg

        conn = psycopg.connect(uri, autocommit=True)
        bulk = pg_copy(conn, anchor_run)
    else:
        bulk = duckdb_arrow_insert(anchor_tracker, anchor_run)
    queued_rates, bulk_rates = [], []
    try:
        for _ in range(max(size.repeats // 2, 2)):
            with _env(_PARKED):
                t = sqltrack.connect(uri)
                t.start_run(run_name="drain")
                body = sqltrack_log_metric(t)
                body(size.drain)
            started = time.perf_counter()
            t.flush()
            queued_rates.append(size.drain / (time.perf_counter() - started))
            t.end_run()
            t.close()
            started = time.perf_counter()
            bulk(size.drain)
            bulk_rates.append(size.drain / (time.perf_counter() - started))
    finally:
        if conn is not None:
            conn.close()
        anchor_tracker.end_run()
        anchor_tracker.close()
    import statistics

    drain, raw = statistics.median(queued_rates), statistics.median(bulk_rates)
    _log(f"{backend} drain (points/s): journal {drain:,.0f}, engine bulk {raw:,.0f}")
    anchor = (
        "psycopg binary COPY of the same rows, one transaction"
        if backend == "postgres"
        else "duckdb Arrow INSERT ... SELECT of the same rows, one transaction"
    )
    return [
        result(
            DRAIN.format(points=size.drain),
            backend,
            seconds=size.drain / drain,
            anchor=anchor,
            anchor_figure=size.drain / raw,
            note=f"{drain:,.0f} points/s; batches of SQLTRACK_JOURNAL_BATCH=20,000 records",
        )
    ]


_MEMORY_SCRIPT = """
import os, sys, time
os.environ.update({parked!r})
import sqltrack

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

t = sqltrack.connect(sys.argv[1])
t.start_run(run_name="memory")
t.log_metric("warm", 0.0)
before = rss()
started = time.perf_counter()
for step in range(int(sys.argv[2])):
    t.log_metric("x", 0.5, step=step)
seconds = time.perf_counter() - started
after = rss()
journal = t._writer.journal
size = sum(os.path.getsize(p) for p in journal.folder.glob(journal.journal_id + ".*.jsonl"))
print(before, after, seconds, size, journal.pending)
os._exit(0)  # leave the journal behind: the benchmark removes the scratch store
"""


def _memory(backend: str, uri: str, size: Size, args: Any) -> list[Any]:
    script = textwrap.dedent(_MEMORY_SCRIPT).format(parked=_PARKED)
    env = {**os.environ, "SQLTRACK_JOURNAL_DIR": str(Path(args.workdir, "journals-" + backend))}
    out = subprocess.run(
        [sys.executable, "-c", script, uri, str(size.queued)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    before, after, seconds, journal_bytes, pending = (float(x) for x in out)
    _log(f"{backend} memory: RSS {before:.0f} -> {after:.0f} MiB with {pending:,.0f} queued")
    return [
        result(
            MEMORY.format(points=size.queued),
            backend,
            rate=after,
            unit="MiB",
            anchor="resident memory of the same process before logging",
            anchor_figure=before,
            note=f"{after - before:+.1f} MiB for {pending:,.0f} queued points "
            f"({journal_bytes / 2**20:.0f} MiB of journal on disk, logged at "
            f"{size.queued / seconds:,.0f} calls/s); the ratio here is after/before "
            "(lower is better). The queue lives on disk: memory is bounded by one "
            "delivery batch (SQLTRACK_JOURNAL_BATCH records), not by what waits",
        )
    ]


def run(args: Any) -> list[dict[str, Any]]:
    size = SIZES[getattr(args, "size", "full")]
    backends = tuple(getattr(args, "backends", ("duckdb", "postgres")))
    reason = pg_available(pg_dsn(args)) if "postgres" in backends else None
    if reason:
        _log(f"PostgreSQL at {pg_dsn(args)} is unreachable ({reason}); skipping it")
        backends = tuple(b for b in backends if b != "postgres")
    use_mlflow = getattr(args, "mlflow", True) and mlflow_importable() and not reason
    rows: list[dict[str, Any]] = []

    @contextmanager
    def mlflow_bodies() -> Iterator[tuple[Any, Any] | None]:
        if not use_mlflow:
            yield None
            return
        with _mlflow(pg_dsn(args), args.workdir) as bodies:
            yield bodies

    with mlflow_bodies() as mlflow:
        for backend in backends:
            with _store(backend, args, "calls") as uri:
                rows += _one_call(backend, uri, size, mlflow)
    for backend in backends:
        with _store(backend, args, "drain") as uri:
            rows += _drain(backend, uri, size, args)
        with _store(backend, args, "memory") as uri:
            rows += _memory(backend, uri, size, args)
    return rows
