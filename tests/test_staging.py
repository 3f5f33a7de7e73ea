"""Staging left by a dead writer (issue 8, point 4), on both backends: every staging area
records its writer; ``sqltrack gc`` and the next dataset write remove the staging of a
writer that is gone at once (same host: the process died; another host: its lease
expired), report the bytes freed, and never touch a live writer's. A dataset write retries
a PostgreSQL outage and, when it gives up, raises one clear error and leaves nothing behind
once the store is back."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sqltrack
from sqltrack import datasets, staging
from sqltrack.backends import parse_uri
from sqltrack.cli import main
from sqltrack.errors import TransientBackendError
from sqltrack.journal import process_start
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.dumps(
    {"type": "struct", "fields": [{"name": "a", "type": "long", "nullable": True, "metadata": {}}]}
)


# -- helpers ------------------------------------------------------------------------------
def _dead_writer() -> staging.Writer:
    """A process of this host that existed and is gone (started and ended here)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = None
        for _ in range(100):
            start = process_start(proc.pid)
            if start:
                break
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    return staging.Writer(socket.gethostname(), proc.pid, start)


def _spec(tracker: Any, run_id: str, writer: staging.Writer, when: float | None = None) -> Any:
    import pyarrow as pa

    name = None if when is None else datasets.staging_name(when, os.urandom(8).hex())
    return datasets.WriteSpec.new(
        tracker.backend.full_uri(),
        run_id,
        "orphan",
        overwrite=False,
        ordered=False,
        spark_schema=SCHEMA,
        arrow_schema=pa.schema([("a", pa.int64())]),
        staging=name,
        writer=writer.text(),
    )


def _stage(tracker: Any, spec: Any, rows: int = 5000) -> int:
    """Record the writer, create the area and stage ``rows`` rows into it; its bytes."""
    import pyarrow as pa

    staging.begin(tracker.backend, spec)
    batch = pa.record_batch([pa.array(range(rows), pa.int64())], names=["a"])
    datasets.engine(tracker.backend).stage(spec, iter([batch]), 0, 0)
    return datasets.engine(tracker.backend).staging_bytes(tracker.backend, spec.staging)


def _expire(tracker: Any, area: str) -> None:
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    with tracker.backend.session() as s:
        s.execute(
            "UPDATE sqltrack.staging_writers SET heartbeat_at = ?, expires_at = ? "
            "WHERE staging = ?",
            (past, past, area),
        )


def _left(tracker: Any) -> set[str]:
    return {a.staging for a in staging.survey(tracker.backend)}


def _gc(uri: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["gc", "--uri", uri, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# -- the janitor's rules ------------------------------------------------------------------
def test_gc_removes_the_staging_of_writers_that_are_gone_and_reports_bytes(
    tracker: Any, store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tracker.start_run()
    tracker.flush()
    rid = run.info.run_id
    me = staging.Writer.this_process()
    elsewhere = staging.Writer("build-node-7.example", 4242, None)
    dead = _spec(tracker, rid, _dead_writer())
    dead_bytes = _stage(tracker, dead)
    live_stale = _spec(tracker, rid, me)  # alive here: its old heartbeat does not matter
    _stage(tracker, live_stale)
    _expire(tracker, live_stale.staging)
    remote_expired = _spec(tracker, rid, elsewhere)
    remote_bytes = _stage(tracker, remote_expired)
    _expire(tracker, remote_expired.staging)
    remote_fresh = _spec(tracker, rid, elsewhere)
    _stage(tracker, remote_fresh)
    published = _spec(tracker, rid, me)
    _stage(tracker, published)
    with tracker.backend.transaction() as s:
        staging.mark_published(s, published.staging)
    row_only = _spec(tracker, rid, _dead_writer())  # died before its area was made
    staging.begin(tracker.backend, row_only)
    datasets.engine(tracker.backend).drop_staging(tracker.backend, row_only.staging)
    eng = datasets.engine(tracker.backend)
    legacy_old = datasets.staging_name(time.time() - datasets.STAGING_MAX_AGE - 60, "a" * 16)
    legacy_young = datasets.staging_name(time.time(), "b" * 16)
    for name in (legacy_old, legacy_young):  # made before 0009: no writer row
        eng.prepare(tracker.backend, dataclasses.replace(dead, staging=name))
    everything = {
        dead.staging,
        live_stale.staging,
        remote_expired.staging,
        remote_fresh.staging,
        published.staging,
        row_only.staging,
        legacy_old,
        legacy_young,
    }
    assert _left(tracker) == everything
    tracker.backend.release()

    would = _gc(store_uri, capsys, "--dry-run")
    assert _left(tracker) == everything  # a dry run removes nothing
    tracker.backend.release()
    removed = {r["staging"]: r for r in _gc(store_uri, capsys)}
    assert {r["staging"] for r in would} == set(removed)
    assert set(removed) == {
        dead.staging,
        remote_expired.staging,
        published.staging,
        row_only.staging,
        legacy_old,
    }
    assert "is gone" in removed[dead.staging]["reason"]
    assert removed[dead.staging]["bytes"] == dead_bytes > 0
    assert removed[dead.staging]["run_id"] == rid
    assert "lease expired" in removed[remote_expired.staging]["reason"]
    assert removed[remote_expired.staging]["bytes"] == remote_bytes > 0
    assert "published" in removed[published.staging]["reason"]
    assert removed[row_only.staging]["bytes"] == 0
    assert "no writer recorded" in removed[legacy_old]["reason"]
    assert _left(tracker) == {live_stale.staging, remote_fresh.staging, legacy_young}
    assert set(eng.staging_areas(tracker.backend)) == _left(tracker)
    tracker.backend.release()

    # The table output says what went and the bytes freed.
    doomed = _spec(tracker, rid, _dead_writer())
    size = _stage(tracker, doomed)
    tracker.backend.release()
    assert main(["gc", "--uri", store_uri]) == 0
    out = capsys.readouterr().out
    assert doomed.staging in out and f"freed {size:,} bytes in 1 staging area(s)" in out
    tracker.end_run()


@pytest.mark.spark
def test_the_next_write_removes_a_dead_writers_staging_and_keeps_a_live_ones(
    tracker: Any, spark: Any
) -> None:
    with tracker.start_run() as run:
        tracker.flush()
        dead = _spec(tracker, run.info.run_id, _dead_writer())
        assert _stage(tracker, dead) > 0
        live = _spec(tracker, run.info.run_id, staging.Writer.this_process())
        _stage(tracker, live)
        _expire(tracker, live.staging)
        assert _left(tracker) == {dead.staging, live.staging}
        ds = tracker.log_dataset(spark.createDataFrame([(1,), (2,)], "a long"), "next")
        assert ds.row_count == 2
        assert _left(tracker) == {live.staging}  # the write's own staging went too
        staging.drop(tracker.backend, live.staging)


# -- kill -9 in the middle of log_dataset -----------------------------------------------------
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[-1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait for the killed driver's JVM and Python workers to exit (they do when their
    parent's pipe closes); kill any still there after ``timeout`` (they are ours)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if Path(f"/proc/{p}").exists()]:
            return
        time.sleep(0.2)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_kill_9_in_the_middle_of_log_dataset_then_gc_removes_its_staging(
    store_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = sqltrack.connect(store_uri)  # the schema exists before the victim starts
    tracker.close()
    marker = tmp_path / "hanging"
    log = (tmp_path / "victim.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "staging_faults.py"), store_uri, str(marker)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    backend = sqltrack.connect(store_uri).backend
    eng = datasets.engine(backend)
    try:
        deadline = time.monotonic() + 300
        staged: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            # DuckDB: the staging folder is read from disk; the file stays the victim's.
            staged = eng.staging_areas(backend)
            if marker.exists() and staged and eng.staging_bytes(backend, staged[0]) > 0:
                break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
        assert marker.exists() and len(staged) == 1, "the victim never staged its rows"
        family = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    _wait_gone(family, 60)
    size = eng.staging_bytes(backend, staged[0])
    assert size > 0
    (row,) = _gc(store_uri, capsys)
    assert row["staging"] == staged[0] and row["dataset"] == "doomed"
    assert "is gone" in row["reason"] and row["bytes"] == size
    assert staging.survey(backend) == []
    assert eng.staging_areas(backend) == []
    backend.close()


# -- a PostgreSQL outage during log_dataset ------------------------------------------------------
@pytest.fixture
def proxied(pg_uri: str) -> Any:
    """A tracker that reaches PostgreSQL through a proxy the test can cut (Spark's
    processes get the same proxied URI)."""
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    p = parse_uri(pg_uri)
    proxy = TcpProxy(p.host or "127.0.0.1", p.port or 5432)
    tracker = sqltrack.connect(pg_uri.replace(f":{p.port or 5432}/", f":{proxy.port}/"))
    yield tracker, proxy
    if proxy._listener is None:
        proxy.restore()
    tracker.close()
    proxy.close()


def _frame_with_a_pause(spark: Any, marker: Path) -> Any:
    """50,000 rows in 2 partitions; each pauses 4 s four fifths of the way through, when its
    COPY is open (partition 0 adds a line to ``marker`` each time it gets there)."""
    import pyspark.sql.functions as F
    from pyspark.sql.types import LongType

    path = str(marker)

    def pause(v):  # type: ignore[no-untyped-def]  # no hints: a plain UDF
        from pathlib import Path

        if v in (20000, 45000):
            if v == 20000:
                with Path(path).open("a") as f:
                    f.write("attempt\n")
            time.sleep(4)
        return v

    return spark.range(0, 50000, numPartitions=2).select(F.udf(pause, LongType())("id").alias("id"))


@contextmanager
def small_arrow_batches(spark: Any) -> Iterator[None]:
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    spark.conf.set(key, "1000")
    try:
        yield
    finally:
        spark.conf.set(key, previous)


def _cut_while_copying(
    pg_uri: str, marker: Path, proxy: TcpProxy, hold: float | None, stop: threading.Event
) -> Any:
    """Cut the proxy once a write's staging table has pages (a COPY is open) and its
    partitions are pausing; restore after ``hold`` seconds, or at ``stop``."""
    from tests.conftest import _pg_connect

    conn = _pg_connect(pg_uri)  # straight to the server, not through the proxy

    def copying() -> bool:
        row = conn.execute(
            "SELECT coalesce(max(pg_total_relation_size(to_regclass('sqltrack_data.' || "
            "staging))), 0) FROM sqltrack.staging_writers WHERE published_at IS NULL"
        ).fetchone()
        return bool(row and row[0] > 0)

    def run() -> None:
        try:
            while not (marker.exists() and copying()):
                if stop.wait(0.05):
                    return
        finally:
            conn.close()
        proxy.cut()
        if hold is None:
            stop.wait()
        else:
            time.sleep(hold)
        proxy.restore()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.spark
@pytest.mark.slow
def test_a_7s_outage_during_log_dataset_is_retried(
    proxied: Any, spark: Any, tmp_path: Path, pg_uri: str
) -> None:
    tracker, proxy = proxied
    marker = tmp_path / "cut"
    stop = threading.Event()
    with small_arrow_batches(spark), tracker.start_run() as run:
        cutter = _cut_while_copying(pg_uri, marker, proxy, 7.0, stop)
        ds = tracker.log_dataset(_frame_with_a_pause(spark, marker))
        cutter.join(30)
        assert not cutter.is_alive()
    # The cut broke the COPY of the first job (it failed); the second one published.
    assert marker.read_text().count("attempt") == 2
    assert ds.row_count == 50000
    loaded = tracker.load_dataset(spark, run.info.run_id)
    assert loaded.count() == 50000 and loaded.distinct().count() == 50000
    assert _left(tracker) == set()
    assert tracker.get_run(run.info.run_id).info.status == "FINISHED"


@pytest.mark.spark
@pytest.mark.slow
def test_a_write_that_gives_up_raises_one_clear_error_and_its_staging_goes_later(
    proxied: Any, spark: Any, tmp_path: Path, pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker, proxy = proxied
    monkeypatch.setenv("SQLTRACK_BULK_RETRY", "4")
    marker = tmp_path / "cut"
    stop = threading.Event()
    with pytest.raises(TransientBackendError, match="gave up after retrying") as raised:
        with small_arrow_batches(spark), tracker.start_run() as run:
            cutter = _cut_while_copying(pg_uri, marker, proxy, None, stop)
            try:
                tracker.log_dataset(_frame_with_a_pause(spark, marker))
            finally:
                stop.set()  # the store comes back before the run ends
                cutter.join(30)
    assert "logging dataset 'training'" in str(raised.value)
    assert tracker.active_run() is None
    assert tracker.get_run(run.info.run_id).info.status == "FAILED"
    left = staging.survey(tracker.backend)
    assert [a.writer for a in left] == [staging.Writer.this_process()]
    assert staging.gc(tracker.backend) == []  # its writer (this process) lives: kept
    with tracker.start_run() as again:  # the tracker goes on; the next write cleans up
        ds = tracker.log_dataset(spark.createDataFrame([(1,)], "a long"))
    assert ds.row_count == 1 and ds.run_id == again.info.run_id
    assert _left(tracker) == set()
