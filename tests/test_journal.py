"""The durable write path (README "What a logging call guarantees"), with real processes
and real faults: a DuckDB reader holding the file, four writers and a reader on one file,
kill -9 of a logging process, a PostgreSQL network cut through a loopback TCP proxy, a
record the store refuses, and runs whose process died."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sqltrack
from sqltrack import records
from sqltrack.backends import parse_uri
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL journals live in the user's cache folder: keep this session's apart.
    monkeypatch.setenv("SQLTRACK_JOURNAL_DIR", str(tmp_path / "journals"))


def _python(code: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def _duckdb_path(uri: str) -> str:
    return uri.split(":///", 1)[1]


_HOLDER = """
import sys, time, duckdb
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
        break
    except duckdb.Error:
        time.sleep(0.02)
con.execute("SELECT count(*) FROM sqltrack.runs").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_duckdb(path: str, seconds: float) -> subprocess.Popen[str]:
    """An auditor's process: opens the file read-only (retrying until it gets in) and
    keeps it for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, path, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read() if proc.stderr else ""
    return proc


def _steps(tracker: Any, run_id: str, key: str = "x") -> list[int]:
    return sorted(m.step for m in tracker.get_metric_history(run_id, key))


@pytest.mark.parametrize("store_uri", ["duckdb"], indirect=True)
def test_a_duckdb_reader_does_not_stop_training(tracker: Any, store_uri: str) -> None:
    run = tracker.start_run()
    tracker.flush()
    tracker.backend.release()
    reader = _hold_duckdb(_duckdb_path(store_uri), 3)
    for step in range(200):  # on the old write path: StoreBusyError, the point lost
        tracker.log_metric("x", float(step), step=step)
    tracker.log_param("alpha", 0.5)
    assert reader.poll() is None  # the reader held the file during the whole loop
    assert tracker._writer.journal.pending > 0  # so the points waited in the journal
    reader.wait(30)
    tracker.end_run()
    assert _steps(tracker, run.info.run_id) == list(range(200))
    assert tracker.get_run(run.info.run_id).params == {"alpha": "0.5"}


@pytest.mark.parametrize("store_uri", ["duckdb"], indirect=True)
def test_read_commands_get_in_while_a_run_logs(tracker: Any, store_uri: str) -> None:
    tracker.start_run()
    tracker.log_metric("x", 0.0)
    tracker.flush()
    cli = [sys.executable, "-m", "sqltrack", "runs", "--uri", store_uri, "--format", "json"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    step = 1
    while proc.poll() is None:  # a training loop at full speed while the CLI reads
        tracker.log_metric("x", float(step), step=step)
        step += 1
        time.sleep(0.001)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert '"status": "RUNNING"' in out
    tracker.end_run()


@pytest.mark.parametrize("store_uri", ["duckdb"], indirect=True)
def test_four_writers_and_a_reader_on_one_duckdb_file(tracker: Any, store_uri: str) -> None:
    """4 processes log at 10 Hz for 60 s; an auditor holds the file for 20 s in the middle.
    The old path: the first writer kept the file, the three others failed after 30 s."""
    tracker.set_experiment("fair")
    tracker.flush()
    tracker.close()
    seconds = 60
    writer = f"""
        import time, sqltrack
        t = sqltrack.connect({store_uri!r})
        t.set_experiment("fair")
        run = t.start_run()
        start = time.monotonic()
        for step in range({seconds * 10}):
            t.log_metric("x", float(step), step=step)
            time.sleep(max(0.0, start + (step + 1) / 10 - time.monotonic()))
        t.end_run()
        t.close()
        print(run.info.run_id, flush=True)
        """
    writers = [_python(writer) for _ in range(4)]
    time.sleep(seconds / 3)
    reader = _hold_duckdb(_duckdb_path(store_uri), seconds / 3)
    reader.wait(seconds)
    run_ids, errors = [], []
    for w in writers:
        out, err = w.communicate(timeout=seconds * 3)
        assert w.returncode == 0, err
        run_ids.append(out.strip())
        errors.append(err)
    with sqltrack.connect(store_uri) as t:
        for run_id in run_ids:
            assert t.get_run(run_id).info.status == "FINISHED"
            steps = _steps(t, run_id)
            missing = sorted(set(range(seconds * 10)) - set(steps))
            _, rejected = t.sql("SELECT * FROM sqltrack.journal_rejections")
            _, progress = t.sql("SELECT * FROM sqltrack.journal_progress")
            assert not missing and len(steps) == seconds * 10, (
                f"run {run_id}: missing steps {missing}, {len(steps)} stored; "
                f"rejections {rejected}; progress {progress}; writers' stderr {errors}"
            )


_LOGGER = """
    import sys, sqltrack
    t = sqltrack.connect(sys.argv[1])
    run = t.start_run(run_name="killed")
    t.log_param("alpha", "1")
    print(run.info.run_id, flush=True)
    for step in range(10**7):
        t.log_metric("x", float(step), step=step)
        print(step, flush=True)  # printed after the call returned: acknowledged
    """


def test_kill_9_loses_no_acknowledged_point_and_the_run_shows_crashed(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQLTRACK_LEASE", "2")
    for kill in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_LOGGER), store_uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read() if proc.stderr else ""
        time.sleep(random.uniform(0.3, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = proc.stdout.read().split("\n")[:-1]  # complete lines: acknowledged calls
        acknowledged = int(lines[-1]) if lines else -1
        assert acknowledged > 0, f"kill {kill}: the logger acknowledged nothing"
        with sqltrack.connect(store_uri) as t:  # the next process delivers what was left
            t.flush()
            steps = _steps(t, run_id)
            # every acknowledged point, each once, in order; at most the one in flight more
            assert steps[: acknowledged + 1] == list(range(acknowledged + 1))
            assert steps == list(range(len(steps))) and len(steps) <= acknowledged + 2
            assert t.get_run(run_id).params == {"alpha": "1"}
            assert t.get_run(run_id).info.status == "RUNNING"
    time.sleep(2.5)  # the killed processes' leases expire
    with sqltrack.connect(store_uri) as t:
        stale = {r.run_id: r for r in t.stale_runs()}
        killed = [r.info.run_id for r in _all_runs(t)]
        assert set(stale) == set(killed) and len(killed) == 3
        assert {t.get_run(r).info.state for r in killed} == {"CRASHED"}
        cli = [sys.executable, "-m", "sqltrack", "runs", "--uri", store_uri, "--format", "csv"]
        out = subprocess.run(cli, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        assert out.count(",CRASHED,") == 3
        ended = t.end_stale_runs()
        assert {r.run_id for r in ended} == set(killed)
        for run_id in killed:
            info = t.get_run(run_id).info
            assert info.status == info.state == "FAILED"
            assert abs(info.end_time - stale[run_id].heartbeat_at) < timedelta(milliseconds=1)
            assert "lease expired" in t.get_run(run_id).tags["sqltrack.end_reason"]
        assert t.stale_runs() == []


def _all_runs(t: Any) -> list[Any]:
    frame = t.search_runs(None)
    return [t.get_run(r) for r in frame["run_id"]]


def test_a_live_process_is_not_ended_as_stale(tracker: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SQLTRACK_LEASE", "60")  # renewed every 15 s: not during the test
    run = tracker.start_run()
    tracker.flush()
    with tracker.backend.transaction() as s:  # the lease lapses (say, a long outage)
        s.execute("UPDATE sqltrack.run_leases SET expires_at = heartbeat_at")
    assert tracker.get_run(run.info.run_id).info.state == "CRASHED"
    assert tracker.end_stale_runs() == []  # its process lives here: it renews the lease
    tracker.end_run()


@pytest.fixture
def proxied(pg_uri: str) -> Any:
    """A tracker that reaches PostgreSQL through a proxy the test can cut."""
    from tests.conftest import _reset_pg

    _reset_pg(pg_uri)
    p = parse_uri(pg_uri)
    proxy = TcpProxy(p.host or "127.0.0.1", p.port or 5432)
    uri = pg_uri.replace(f":{p.port or 5432}/", f":{proxy.port}/")
    tracker = sqltrack.connect(uri)
    yield tracker, proxy
    proxy.restore() if proxy._listener is None else None
    tracker.close()
    proxy.close()


def test_a_postgresql_outage_during_a_metric_loop_loses_nothing(proxied: Any) -> None:
    tracker, proxy = proxied
    run = tracker.start_run()
    for step in range(50):
        tracker.log_metric("x", float(step), step=step)
    tracker.flush()
    proxy.cut()
    for step in range(50, 150):  # the old path: TransientBackendError, the point lost
        tracker.log_metric("x", float(step), step=step)
    tracker.log_params({"during": "outage"})
    time.sleep(1.0)  # the flusher meets the outage and retries
    assert tracker._writer.journal.pending > 0
    assert tracker._writer.errors(), "the flusher never saw the outage"
    proxy.restore()
    tracker.end_run()
    assert _steps(tracker, run.info.run_id) == list(range(150))
    assert tracker.get_run(run.info.run_id).info.status == "FINISHED"
    assert tracker.get_run(run.info.run_id).params == {"during": "outage"}


def test_an_error_in_a_with_block_is_not_hidden_and_the_tracker_goes_on(
    proxied: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker, proxy = proxied
    monkeypatch.setenv("SQLTRACK_END_WAIT", "0.5")
    tracker.set_experiment("e")
    proxy.cut()
    with pytest.raises(ZeroDivisionError), pytest.warns(sqltrack.JournalWarning, match="sync"):
        with tracker.start_run() as failed:
            tracker.log_metric("x", 1.0)
            1 / 0  # noqa: B018
    proxy.restore()
    assert tracker.active_run() is None
    with tracker.start_run() as second:  # not "already active"
        tracker.log_metric("x", 2.0)
    assert tracker.get_run(failed.info.run_id).info.status == "FAILED"
    assert tracker.get_run(second.info.run_id).info.status == "FINISHED"
    assert [m.value for m in tracker.get_metric_history(failed.info.run_id, "x")] == [1.0]


@pytest.mark.parametrize("store_uri", ["duckdb"], indirect=True)
def test_end_run_with_the_store_held_warns_and_the_records_stay_journaled(
    tracker: Any, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQLTRACK_END_WAIT", "0.3")
    tracker.flush()
    tracker.backend.release()
    reader = _hold_duckdb(_duckdb_path(store_uri), 3)
    with pytest.warns(sqltrack.JournalWarning, match="sqltrack sync"):
        with tracker.start_run() as first:
            tracker.log_metric("x", 1.0)
    with pytest.warns(sqltrack.JournalWarning):
        with tracker.start_run() as second:  # the tracker is usable for the next run
            tracker.log_metric("x", 2.0)
    assert reader.poll() is None
    reader.wait(30)
    tracker.flush()
    for run, value in ((first, 1.0), (second, 2.0)):
        assert tracker.get_run(run.info.run_id).info.status == "FINISHED"
        assert [m.value for m in tracker.get_metric_history(run.info.run_id, "x")] == [value]


def test_what_only_the_store_knows_is_raised_at_the_next_call_and_recorded(
    store_uri: str,
) -> None:
    one, other = sqltrack.connect(store_uri), sqltrack.connect(store_uri)
    try:
        run = one.start_run()
        one.log_param("alpha", "1")
        one.flush()
        other.log_param("alpha", "2", run_id=run.info.run_id)  # only the store knows
        with pytest.raises(sqltrack.ConflictError, match="journal_rejections"):
            other.flush()
        other.log_metric("x", 1.0, run_id=run.info.run_id)  # raised once, then it goes on
        other.flush()
        columns, rows = one.sql("SELECT run_id, reason FROM sqltrack.journal_rejections")
        assert rows == [(run.info.run_id, rows[0][1])] and "'alpha'" in rows[0][1]
        other.log_param("beta", "1", run_id=run.info.run_id)
        other.flush()
        one.log_param("beta", "2")
        with pytest.raises(sqltrack.ConflictError, match="'beta'"):
            one.end_run()  # end_run raises what the store refused
    finally:
        one.close()
        other.close()


def test_a_record_the_store_cannot_write_is_refused_alone(tracker: Any) -> None:
    run = tracker.start_run()
    run_id = run.info.run_id
    bad = records.WriteOnce(run_id, "sqltrack.no_such_table", ("run_id",), "run_id",
                            ((run_id,),), (), "rows")  # fmt: skip
    tracker.log_metric("x", 0.0, step=0)
    tracker._writer.submit([bad])
    tracker.log_metric("x", 1.0, step=1)
    with pytest.raises(sqltrack.BackendError, match="no_such_table"):
        tracker.flush()
    tracker.end_run()
    assert _steps(tracker, run_id) == [0, 1]  # the records around it arrived
    _, rows = tracker.sql("SELECT seq, run_id FROM sqltrack.journal_rejections")
    assert len(rows) == 1 and rows[0][1] == run_id


def test_sync_delivers_a_dead_process_journal(store_uri: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_LOGGER), store_uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # it delivers nothing by itself (unless this machine stalls for an hour)
        env={**os.environ, "SQLTRACK_JOURNAL_INTERVAL": "3600", "SQLTRACK_JOURNAL_FSYNC": "3600"},
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    last = [int(proc.stdout.readline()) for _ in range(100)][-1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cli = [sys.executable, "-m", "sqltrack", "sync", "--uri", store_uri]
    out = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "delivered" in out.stdout and not out.stdout.startswith(f"{store_uri}: delivered 0 ")
    journals = Path(os.environ["SQLTRACK_JOURNAL_DIR"])
    assert not list(journals.rglob("*.jsonl"))  # delivered journals are removed
    with sqltrack.connect(store_uri) as t:
        assert _steps(t, run_id)[: last + 1] == list(range(last + 1))


def test_a_bulk_write_retries_through_a_short_outage(proxied: Any) -> None:
    import threading

    tracker, proxy = proxied
    run = tracker.start_run()
    tracker.flush()
    proxy.cut()
    threading.Timer(1.5, proxy.restore).start()  # back while log_text retries
    artifact = tracker.log_text("hello", "notes.txt")
    assert tracker.load_artifact(run.info.run_id, "notes.txt") == b"hello"
    assert artifact.size_bytes == 5
    tracker.end_run()


def test_a_bulk_write_that_gives_up_leaves_nothing_and_nothing_wedged(
    proxied: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker, proxy = proxied
    monkeypatch.setenv("SQLTRACK_RETRY", "0.5")
    run = tracker.start_run()
    tracker.flush()
    proxy.cut()
    with pytest.raises(sqltrack.TransientBackendError, match="SQLTRACK_RETRY"):
        tracker.log_text("x", "a.txt")
    proxy.restore()
    assert tracker.list_artifacts(run.info.run_id) == []
    tracker.end_run()  # the run can still be ended, the tracker goes on
    assert tracker.get_run(run.info.run_id).info.status == "FINISHED"
    with tracker.start_run():
        pass
