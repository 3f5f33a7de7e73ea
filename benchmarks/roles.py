"""What the guards of migration 0007_roles cost the metric path (PostgreSQL only).

Every batch of metric points that a writer role delivers fires one statement-level
trigger that joins the batch with ``sqltrack.runs`` (points are only added to RUNNING
runs). Measured here, batches taking turns:

* ``log_metrics`` of 1,000 points followed by ``flush()`` (so the batch is in the store)
  as a writer role, guarded; and as the store's owner (the guard returns at once);
* the anchor: the same calls as a writer on a second fresh store whose metric guards are
  disabled (``ALTER TABLE sqltrack.metrics DISABLE TRIGGER ...``), i.e. the store before
  0007;
* the trigger alone: a psycopg binary COPY of the same batch into ``sqltrack.metrics``, one
  transaction per batch, as the writer on each of the two stores.

The writer role is created for the run and dropped afterwards.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._common import _admin, interleaved_rates, pg_available, pg_database, pg_dsn, result

BENCHMARK = "log_metrics + flush, batches of {batch:,} points"
COPY = "psycopg binary COPY, batches of {batch:,} points, as a writer role (guarded)"
BATCHES = {"full": (1000, 21), "small": (1000, 5), "tiny": (50, 2)}


def _log(message: str) -> None:
    print(f"  roles: {message}", file=sys.stderr, flush=True)


@contextmanager
def _role(dsn: str) -> Iterator[str]:
    from psycopg import sql

    name = f"sqltrack_bench_{uuid.uuid4().hex[:8]}"
    with _admin(dsn) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with _admin(dsn) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _as(uri: str, role: str) -> str:
    return f"postgresql://{role}@{uri.split('@', 1)[1]}"


def _store(uri: str, role: str, guarded: bool) -> None:
    import sqltrack
    from sqltrack import roles
    from sqltrack.backends import open_backend

    owner = sqltrack.connect(uri)
    owner.create_experiment("roles-bench")
    owner.close()
    backend = open_backend(uri)
    try:
        roles.grant(backend, role, roles.WRITER)
        if not guarded:
            with backend.session() as s:
                s.execute(
                    "ALTER TABLE sqltrack.metrics DISABLE TRIGGER metrics_running, "
                    "DISABLE TRIGGER metrics_guard"
                )
    finally:
        backend.close()


def _logger(uri: str) -> tuple[Any, Any]:
    """A tracker with a running run, and a body logging ``n`` points and delivering them."""
    import sqltrack

    tracker = sqltrack.connect(uri)
    tracker.set_experiment("roles-bench")
    run_id = tracker.start_run(run_name="bench").info.run_id
    steps = iter(range(10**12))
    points: dict[int, dict[str, float]] = {}

    def body(n: int) -> None:
        if n not in points:
            points[n] = {f"m{j:04d}": j / n for j in range(n)}
        tracker.log_metrics(points[n], step=next(steps), run_id=run_id)
        tracker.flush()

    return tracker, body


def _copier(uri: str) -> tuple[Any, Any]:
    """A connection and a body COPYing ``n`` points for a running run in one transaction."""
    from datetime import datetime, timezone

    from sqltrack.backends import parse_uri
    from sqltrack.backends.postgres import PostgresBackend

    tracker, _ = _logger(uri)
    tracker.flush()
    run_id = tracker.active_run().info.run_id
    conn = PostgresBackend(parse_uri(uri)).connect(autocommit=False)
    steps = iter(range(10**12))
    sql = 'COPY sqltrack.metrics (run_id, key, value, step, "timestamp") FROM STDIN (FORMAT BINARY)'

    def body(n: int) -> None:
        step, now = next(steps), datetime.now(timezone.utc)
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["text", "text", "float8", "int8", "timestamptz"])
            for j in range(n):
                copy.write_row((run_id, f"c{j:04d}", j / n, step, now))
        conn.commit()

    return (tracker, conn), body


def _drop_owned(uri: str, role: str) -> None:
    from psycopg import sql

    with _admin(uri) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))


def run(args: Any) -> list[dict[str, Any]]:
    if "postgres" not in tuple(getattr(args, "backends", ("postgres",))):
        return []
    dsn = pg_dsn(args)
    reason = pg_available(dsn)
    if reason:
        _log(f"PostgreSQL at {dsn} is unreachable ({reason}); skipping")
        return []
    batch, repeats = BATCHES[getattr(args, "size", "full")]
    with (
        _role(dsn) as role,
        pg_database(dsn, "sqltrack_bench_guarded") as guarded,
        pg_database(dsn, "sqltrack_bench_unguarded") as unguarded,
    ):
        _store(guarded, role, guarded=True)
        _store(unguarded, role, guarded=False)
        trackers, conns = [], []
        try:
            cases = {}
            for name, uri in (
                ("writer", _as(guarded, role)),
                ("owner", guarded),
                ("unguarded", _as(unguarded, role)),
            ):
                tracker, body = _logger(uri)
                trackers.append(tracker)
                cases[name] = (batch, body)
            for name, uri in (
                ("copy", _as(guarded, role)),
                ("copy_unguarded", _as(unguarded, role)),
            ):
                (tracker, conn), body = _copier(uri)
                trackers.append(tracker)
                conns.append(conn)
                cases[name] = (batch, body)
            rates = interleaved_rates(cases, repeats)
            _log(f"postgres log_metrics + flush (points/s): {rates}")
        finally:
            for conn in conns:
                conn.close()
            for tracker in trackers:
                tracker.end_run()
                tracker.close()
            _drop_owned(guarded, role)
            _drop_owned(unguarded, role)
    name = BENCHMARK.format(batch=batch)
    anchor = "the same as a writer, metric guards disabled (the store before 0007)"
    return [
        result(
            name + ", as a writer role (guarded)",
            "postgres",
            rate=rates["writer"],
            unit="points/s",
            anchor=anchor,
            anchor_figure=rates["unguarded"],
            note="one statement trigger per batch joins it with sqltrack.runs",
        ),
        result(
            name + ", as the owner (guard returns at once)",
            "postgres",
            rate=rates["owner"],
            unit="points/s",
            anchor=anchor,
            anchor_figure=rates["unguarded"],
        ),
        result(
            COPY.format(batch=batch),
            "postgres",
            rate=rates["copy"],
            unit="points/s",
            anchor="the same COPY as a writer, metric guards disabled",
            anchor_figure=rates["copy_unguarded"],
        ),
    ]
