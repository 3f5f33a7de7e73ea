"""What the ledger's hash chain costs (issue 9, point 3: at most 15 % of batched
``log_metrics`` throughput), on DuckDB and PostgreSQL.

* ``log_metrics`` in batches of 1,000 points through the journal (the default path): a
  repeat logs 20 batches and then waits until they are in the store (``Tracker.flush``),
  so the figure is what the store takes in, not how fast calls return. The flusher
  delivers what has accumulated in one transaction, so one ledger entry covers several
  calls, as in a training loop.
* The same with ``SQLTRACK_JOURNAL=off``: each call is its own transaction, with its own
  ledger entry, compare-and-set of the chain's head and insert: the chain's largest share.
* On PostgreSQL, journaled batches from 4 writer processes on 4 runs at once, and how the
  throughput scales from 1 process to 4 (the chain must not serialise writers: one chain
  per run). The processes start, connect and warm up first; the figure is all points over
  the span from the first start to the last end.

Anchor for each: the same calls with ``SQLTRACK_LEDGER=off``, measured in the same run,
turn by turn.

The anchor without the chain is the same code with one switch, so the ratio is the
chain's cost and nothing else.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import interleaved_rates, pg_available, pg_database, pg_dsn, result

BATCHED = "log_metrics, batches of {batch:,} points, delivered ({path})"
WRITERS = "{n} writer processes x log_metrics batches of {batch:,} points, delivered"
SCALING = "scaling from 1 to {n} writer processes (throughput ratio)"
NO_CHAIN = "the same without the chain (SQLTRACK_LEDGER=off)"
TARGET = ">= 0.85x without the chain (cost <= 15%)"


@dataclass(frozen=True)
class Size:
    batch: int  # points per log_metrics call
    batches: int  # batches per repeat (in-process cases)
    writer_batches: int  # batches per writer process per repeat
    writers: int
    repeats: int = 7


SIZES = {
    "full": Size(1000, 50, 20, 4, repeats=9),
    "small": Size(1000, 10, 10, 4, repeats=5),
    "tiny": Size(50, 2, 2, 2, repeats=2),
}


def _log(message: str) -> None:
    print(f"  ledger: {message}", file=sys.stderr, flush=True)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextmanager
def _store(backend: str, args: Any) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{Path(args.workdir, 'ledger.duckdb')}"
    else:
        with pg_database(pg_dsn(args), "sqltrack_bench_ledger") as uri:
            yield uri


def _batches(tracker: Any, run_id: str, size: Size, ledger: str) -> Any:
    """A body logging ``n // batch`` batches with the chain on or off, then waiting until
    they are in the store."""
    points = {f"m{j:04d}": j / size.batch for j in range(size.batch)}
    steps = iter(range(10**12))

    def body(n: int) -> None:
        with _env("SQLTRACK_LEDGER", ledger):
            for _ in range(max(n // size.batch, 1)):
                tracker.log_metrics(points, step=next(steps), run_id=run_id)
            tracker.flush()

    return body


def in_process(backend: str, uri: str, size: Size) -> list[dict[str, Any]]:
    import sqltrack

    rows = []
    for path, journal in (("journaled", "on"), ("SQLTRACK_JOURNAL=off", "off")):
        with _env("SQLTRACK_JOURNAL", journal):
            tracker = sqltrack.connect(uri)
        try:
            tracker.set_experiment("ledger-bench")
            on = tracker.start_run(run_name=f"chain-{journal}").info.run_id
            off = tracker.start_run(run_name=f"no-chain-{journal}", nested=True).info.run_id
            tracker.flush()
            points = size.batch * size.batches
            rates = interleaved_rates(
                {
                    "none": (points, _batches(tracker, off, size, "off")),
                    "chain": (points, _batches(tracker, on, size, "on")),
                },
                size.repeats,
                warmup=size.batch,
            )
            _log(f"{backend} {path} (points/s): {rates}")
            for run_id in (off, on):
                tracker.end_run(run_id=run_id)
            report = tracker.verify(on)
            note = f"the chained run verifies: {report.ok} ({report.entries} ledger entries)"
        finally:
            tracker.close()
        rows.append(
            result(
                BATCHED.format(batch=size.batch, path=path),
                backend,
                rate=rates["chain"],
                unit="points/s",
                anchor=NO_CHAIN,
                anchor_figure=rates["none"],
                target=TARGET,
                met=rates["chain"] >= 0.85 * rates["none"],
                note=note,
            )
        )
    return rows


# -- writer processes (PostgreSQL) -----------------------------------------------------------
_WRITER = """
import os, sys, time
import sqltrack

uri, batch = sys.argv[1], int(sys.argv[2])
points = {f"m{j:04d}": j / batch for j in range(batch)}
step = 0
with sqltrack.connect(uri) as t:
    t.set_experiment("ledger-bench-writers")
    run_id = t.start_run(run_name=f"writer-{os.getpid()}").info.run_id
    t.log_metrics(points, step=step, run_id=run_id)
    t.flush()
    print("ready", flush=True)
    for line in sys.stdin:
        ledger, batches = line.split()
        os.environ["SQLTRACK_LEDGER"] = ledger
        start = time.time()
        for _ in range(int(batches)):
            step += 1
            t.log_metrics(points, step=step, run_id=run_id)
        t.flush()
        print(f"done {start} {time.time()} {int(batches) * batch}", flush=True)
    t.end_run(run_id=run_id)
"""


class _Writers:
    """``n`` long-lived writer processes, each logging to its own run on command."""

    def __init__(self, uri: str, n: int, batch: int) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(_WRITER), uri, str(batch)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        for p in self.procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"benchmark writer did not start: {line!r}")

    def rate(self, n: int, ledger: str, batches: int) -> float:
        """Points/s of the first ``n`` writers logging at once."""
        chosen = self.procs[:n]
        for p in chosen:
            assert p.stdin is not None
            p.stdin.write(f"{ledger} {batches}\n")
            p.stdin.flush()
        spans = []
        for p in chosen:
            assert p.stdout is not None
            _, start, end, points = p.stdout.readline().split()
            spans.append((float(start), float(end), int(points)))
        total = sum(s[2] for s in spans)
        return total / (max(s[1] for s in spans) - min(s[0] for s in spans))

    def close(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in self.procs:
            p.wait(timeout=120)


def writers(uri: str, size: Size) -> list[dict[str, Any]]:
    pool = _Writers(uri, size.writers, size.batch)
    try:
        cases = [(1, "on"), (1, "off"), (size.writers, "on"), (size.writers, "off")]
        times: dict[tuple[int, str], list[float]] = {c: [] for c in cases}
        for case in cases:  # warm-up
            pool.rate(*case, 1)
        for _ in range(size.repeats):
            for case in cases:
                times[case].append(pool.rate(*case, size.writer_batches))
    finally:
        pool.close()
    rate = {c: statistics.median(v) for c, v in times.items()}
    _log(f"postgres writer processes (points/s): {rate}")
    n = size.writers
    scale_on, scale_off = rate[(n, "on")] / rate[(1, "on")], rate[(n, "off")] / rate[(1, "off")]
    return [
        result(
            WRITERS.format(n=n, batch=size.batch),
            "postgres",
            rate=rate[(n, "on")],
            unit="points/s",
            anchor=NO_CHAIN,
            anchor_figure=rate[(n, "off")],
            target=TARGET,
            met=rate[(n, "on")] >= 0.85 * rate[(n, "off")],
            note=f"1 process: {rate[(1, 'on')]:,.0f} points/s with the chain, "
            f"{rate[(1, 'off')]:,.0f} without",
        ),
        result(
            SCALING.format(n=n),
            "postgres",
            rate=scale_on,
            unit=f"x ({n} processes / 1)",
            anchor="the same scaling without the chain",
            anchor_figure=scale_off,
            note="one chain per run: writers of different runs never wait for each other; "
            "the machine has 2 cores, so CPU caps the scaling either way",
        ),
    ]


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
            rows += in_process(backend, uri, size)
            if backend == "postgres":
                rows += writers(uri, size)
    return rows
