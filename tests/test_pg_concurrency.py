"""Eight processes writing tags, params and experiment tags on one PostgreSQL run at once,
each in its own key order (issue 8, point 6). Measured before records.apply wrote rows in
key order: 148 of 160 set_tags batches failed with "deadlock detected".

Every call must succeed, every row must be stored, and PostgreSQL's own deadlock counter
for the database must not move.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sqltrack
from tests.conftest import _pg_connect, _reset_pg

ROOT = Path(__file__).resolve().parent.parent
WRITERS = 8
# 8 x 20 batches: the measured case. With the journal the calls are delivered in fewer,
# larger transactions, so 10 batches each already overlap.
BATCHES = {"off": 20, "on": 10}
KEYS = 12

_WORKER = textwrap.dedent("""
    import os, random, sys, time
    import sqltrack

    uri, run_id, worker, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    batches, nkeys = int(sys.argv[5]), int(sys.argv[6])
    rng = random.Random(worker)
    keys = [f"k{i:02d}" for i in range(nkeys)]
    failures = []
    t = sqltrack.connect(uri)
    t.get_run(run_id)  # connected and warm before the start signal
    while not os.path.exists(go):
        time.sleep(0.005)
    for b in range(batches):
        rng.shuffle(keys)
        calls = (
            ("set_tags", lambda: t.set_tags({k: f"w{worker}-b{b}" for k in keys}, run_id=run_id)),
            # the same value from every writer is a no-op, never a conflict
            ("log_params", lambda: t.log_params(
                {**{k: "shared" for k in keys}, f"own-{worker}-{b}": b}, run_id=run_id)),
            ("create_experiment", lambda: t.create_experiment(
                "shared", tags={k: f"w{worker}-b{b}" for k in keys})),
        )
        for name, call in calls:
            try:
                call()
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
    try:
        t.close()
    except Exception as exc:
        failures.append(f"close: {type(exc).__name__}: {exc}")
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)
""")


def _deadlocks(uri: str) -> int:
    with _pg_connect(uri) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0])


def _wait_for_backends_to_exit(uri: str) -> None:
    """The writers' server processes report their statistics when they exit."""
    with _pg_connect(uri) as conn:
        for _ in range(500):
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            if left == 0:
                return
            time.sleep(0.02)


@pytest.mark.parametrize("journal", ["off", "on"])
def test_eight_writers_on_one_run_never_deadlock(pg_uri: str, tmp_path: Path, journal: str):
    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as t:
        run_id = t.start_run(run_name="shared").info.run_id
        t.flush()
    go = tmp_path / "go"
    env = {
        **os.environ,
        "SQLTRACK_JOURNAL": journal,
        "SQLTRACK_JOURNAL_DIR": str(tmp_path / "journals"),
        # deliver often, so that the writers' transactions overlap
        "SQLTRACK_JOURNAL_INTERVAL": "0.01",
    }
    _wait_for_backends_to_exit(pg_uri)
    before = _deadlocks(pg_uri)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                pg_uri,
                run_id,
                str(w),
                str(go),
                str(BATCHES[journal]),
                str(KEYS),
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for w in range(WRITERS)
    ]
    time.sleep(0.5)  # let the writers start; they spin until the file exists
    go.touch()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    failed = {w: out for w, (p, out) in enumerate(zip(procs, outputs, strict=True)) if p.returncode}
    assert not failed, "\n".join(f"writer {w}:\n{out[-3000:]}" for w, out in failed.items())
    _wait_for_backends_to_exit(pg_uri)
    assert _deadlocks(pg_uri) == before
    with sqltrack.connect(pg_uri) as t:
        run = t.get_run(run_id)
        experiment = t.get_experiment_by_name("shared")
    keys = {f"k{i:02d}" for i in range(KEYS)}
    batches = BATCHES[journal]
    last = {f"w{w}-b{batches - 1}" for w in range(WRITERS)}
    assert {k for k in run.tags if k.startswith("k")} == keys
    assert all(run.tags[k] in last for k in keys)  # each key ends as some writer's last value
    own = {f"own-{w}-{b}": str(b) for w in range(WRITERS) for b in range(batches)}
    assert run.params == {**{k: "shared" for k in keys}, **own}
    assert set(experiment.tags) == keys
    assert all(experiment.tags[k] in last for k in keys)


_ONE_PARAM = textwrap.dedent("""
    import sys
    import sqltrack

    uri, run_id, value = sys.argv[1:4]
    with sqltrack.connect(uri) as t:
        try:
            t.log_param("shared", value, run_id=run_id)
            t.flush()  # journaled: what the store refuses is raised here, at the next call
        except sqltrack.SqltrackError as exc:
            print(f"{type(exc).__name__}: {exc}")
            sys.exit(1)
""")


def _blocked_on_a_lock(conn: object, pid: int) -> bool:
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
    ).fetchone()
    return bool(row[0])


@pytest.mark.parametrize("journal", ["off", "on"])
@pytest.mark.parametrize(("theirs", "ok"), [("same", True), ("other", False)])
def test_a_param_another_process_is_inserting_is_a_no_op_or_a_clear_conflict(
    pg_uri: str, tmp_path: Path, theirs: str, ok: bool, journal: str
) -> None:
    """The race the tests above cannot force: another writer inserts the same param
    while this one's transaction runs. On main the loser failed with the driver's
    "duplicate key value violates unique constraint" even for the same value."""
    _reset_pg(pg_uri)
    with sqltrack.connect(pg_uri) as t:
        run_id = t.start_run().info.run_id
        t.flush()
    holder = _pg_connect(pg_uri)
    holder.autocommit = False
    holder.execute(
        "INSERT INTO sqltrack.params (run_id, key, value) VALUES (%s, 'shared', %s)",
        (run_id, theirs),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _ONE_PARAM, pg_uri, run_id, "same"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "SQLTRACK_JOURNAL": journal,
            "SQLTRACK_JOURNAL_DIR": str(tmp_path / "journals"),
        },
    )
    with _pg_connect(pg_uri) as watcher:
        for _ in range(3000):  # until the writer waits for the holder's row
            pids = [
                r[0]
                for r in watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'sqltrack' AND wait_event_type = 'Lock'"
                ).fetchall()
            ]
            if pids or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert pids, proc.communicate()[0]
    holder.commit()
    holder.close()
    out = proc.communicate(timeout=60)[0]
    if ok:
        assert proc.returncode == 0, out
    else:
        assert proc.returncode == 1
        assert out.startswith("ConflictError: param 'shared'"), out
        assert "'other'" in out and "'same'" in out and "duplicate key" not in out
    with sqltrack.connect(pg_uri) as t:
        assert t.get_run(run_id).params == {"shared": theirs}
