"""Helpers shared by the benchmark modules: result rows, medians, scratch databases.

A result row is a plain dict with these keys (``python -m benchmarks`` prints them
as one table and writes them to ``benchmarks/results/``):

``benchmark``      what was measured, e.g. ``log_metric, one call at a time``
``backend``        ``duckdb`` or ``postgres``
``rate``/``unit``  a throughput (higher is better), e.g. 2500.0 ``points/s``; or
``seconds``        a latency (lower is better); a row has one of the two
``anchor``         what the figure is compared with, measured in the same run
``anchor_figure``  the anchor's rate or seconds (None when the anchor was skipped)
``ratio``          how many times better the figure is than the anchor: rate / anchor
                   rate, or anchor seconds / seconds (None without an anchor)
``target``         the issue's target, in words (optional)
``met``            whether the target is met (optional; None when not checkable)
``note``           anything a reader needs to interpret the figure (optional)
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_PG_DSN = "postgresql://root@127.0.0.1:5432/test"
KEYS = ("benchmark", "backend", "anchor", "anchor_figure", "ratio")


def result(
    benchmark: str,
    backend: str,
    *,
    anchor: str,
    anchor_figure: float | None,
    rate: float | None = None,
    seconds: float | None = None,
    unit: str = "",
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One result row; the ratio is computed here so every module computes it alike."""
    if (rate is None) == (seconds is None):
        raise ValueError("a result has either a rate or seconds")
    row: dict[str, Any] = {"benchmark": benchmark, "backend": backend}
    if rate is not None:
        row |= {"rate": rate, "unit": unit or "/s"}
        ratio = rate / anchor_figure if anchor_figure else None
    else:
        assert seconds is not None
        row |= {"seconds": seconds, "unit": "s"}
        ratio = anchor_figure / seconds if anchor_figure and seconds else None
    row |= {"anchor": anchor, "anchor_figure": anchor_figure, "ratio": ratio}
    if target:
        row |= {"target": target, "met": met}
    if note:
        row["note"] = note
    return row


def median_rate(items: int, repeats: int, body: Callable[[int], None]) -> float:
    """Call ``body(items)`` ``repeats`` times; return items/s of the median repeat."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body(items)
        times.append(time.perf_counter() - start)
    return items / statistics.median(times)


def interleaved_rates(
    cases: dict[str, tuple[int, Callable[[int], None]]], repeats: int, warmup: int = 5
) -> dict[str, float]:
    """items/s of each case's median repeat, the cases taking turns repeat by repeat so
    that a figure and its anchors see the same load on a shared machine.

    ``cases`` maps a name to ``(items, body)``; ``body(items)`` does ``items`` units.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for items, body in cases.values():
        body(min(items, warmup))
    for _ in range(repeats):
        for name, (items, body) in cases.items():
            start = time.perf_counter()
            body(items)
            times[name].append(time.perf_counter() - start)
    return {name: cases[name][0] / statistics.median(t) for name, t in times.items()}


def median_seconds(repeats: int, body: Callable[[], object], warmup: int = 1) -> float:
    """The median wall time of ``repeats`` calls of ``body`` after ``warmup`` calls."""
    for _ in range(warmup):
        body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pg_dsn(args: Any) -> str:
    return getattr(args, "pg_dsn", None) or os.environ.get("SQLTRACK_TEST_PG_DSN", DEFAULT_PG_DSN)


def _admin(dsn: str) -> Any:
    """An autocommit connection through sqltrack's own PostgreSQL backend."""
    from sqltrack.backends import parse_uri
    from sqltrack.backends.postgres import PostgresBackend

    return PostgresBackend(parse_uri(dsn)).connect()


def pg_available(dsn: str) -> str | None:
    """None when PostgreSQL at ``dsn`` answers, else the reason it does not."""
    try:
        _admin(dsn).close()
    except Exception as exc:  # reported, not raised: the PostgreSQL rows are skipped
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    return None


@contextmanager
def pg_database(dsn: str, prefix: str) -> Iterator[str]:
    """A fresh database on the server of ``dsn``, dropped on exit; yields its URI."""
    from sqltrack.backends import parse_uri

    p = parse_uri(dsn)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"  # built here, never user input
    with _admin(dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    user = f"{p.user}@" if p.user else ""
    try:
        yield f"postgresql://{user}{p.host or '127.0.0.1'}:{p.port or 5432}/{name}"
    finally:
        with _admin(dsn) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
