"""Dataset staging and its writers: who made each staging area, whether that writer is
still there, and the janitor that removes what a dead writer left.

A dataset write stages its rows first (a table ``sqltrack_data._stg_<time>_<id>`` on
PostgreSQL, a folder ``<db>.staging/_stg_<time>_<id>/`` beside a DuckDB file) and
publishes them in one transaction. Before the staging area exists, its writer is recorded
in ``sqltrack.staging_writers`` (migration 0009): the host, process id and process start
of the process that owns the write (the tracker's process for ``log_dataset``, the Spark
driver's JVM for a direct ``df.write.format("sqltrack")``), and a heartbeat with a lease
(``SQLTRACK_LEASE``) refreshed while the write runs. The publishing transaction marks the
row ``published_at``; the area and its row are removed right after.

The janitor (:func:`gc`: before every dataset write, and ``sqltrack gc``) removes at once
the staging of a writer that is gone: on the same host, its process is no longer alive (a
reused pid is told apart by its start time); on another host, its lease expired. A live
writer's staging is never removed. Staging without a writer row (made by sqltrack before
0009) falls back to the age rule (``STAGING_MAX_AGE``, 24 h).

Bulk writes retry what a retry can cure (:class:`~sqltrack.TransientBackendError`: a
PostgreSQL outage, a DuckDB file held by another process) with bounded back-off: each
step waits at most ``SQLTRACK_BULK_RETRY`` seconds from its first failure
(:func:`retrying`), and a Spark job that lost the store midway runs again once it is
back, at most :data:`WRITE_ATTEMPTS` times (:func:`write`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqltrack import config, datasets
from sqltrack.backends import Backend, open_backend
from sqltrack.errors import InvalidInputError, SqltrackError, TransientBackendError
from sqltrack.journal import process_alive, process_start

__all__ = [
    "Removed",
    "Writer",
    "begin",
    "beating",
    "discard",
    "drop",
    "finish",
    "gc",
    "heartbeat",
    "published",
    "retrying",
    "survey",
    "write",
]

T = TypeVar("T")
_MAX_DELAY = 5.0
# A PostgreSQL staging table still locked (an executor's COPY that outlived its driver)
# is left for the next janitor instead of blocking this one.
DROP_LOCK_TIMEOUT = "5s"


# -- who owns a write ---------------------------------------------------------------------
@dataclass(frozen=True)
class Writer:
    """The process whose life is the write's: host, pid and the pid's start time."""

    host: str
    pid: int
    start: str | None

    @staticmethod
    def this_process() -> Writer:
        return Writer(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    @staticmethod
    def spark_driver() -> Writer:
        """From a Spark planner process: the nearest ancestor that is a JVM (the driver;
        the user's Python process, when it dies, takes the JVM with it), else the parent."""
        pid = os.getppid()
        for _ in range(8):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                break
            if comm == "java":
                return Writer(socket.gethostname(), pid, process_start(pid))
            parent = int(stat.rsplit(")", 1)[-1].split()[1])
            if parent <= 1:
                break
            pid = parent
        ppid = os.getppid()
        return Writer(socket.gethostname(), ppid, process_start(ppid))

    def text(self) -> str:
        """The form of the data source's ``writer`` option: ``host/pid/start``."""
        return f"{self.host}/{self.pid}/{self.start or ''}"

    @staticmethod
    def parse(text: str) -> Writer:
        parts = text.rsplit("/", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
            raise InvalidInputError(
                f"option writer={text!r} must be host/pid/start (set by the tracker; leave it "
                "out to make the Spark driver the writer)"
            )
        return Writer(parts[0], int(parts[1]), parts[2] or None)

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"


# -- bounded retries ------------------------------------------------------------------------
def retrying(what: str, fn: Callable[[], T], budget: float) -> T:
    """``fn()``, retried with jittered exponential back-off (0.2 s doubling to 5 s) while
    it raises TransientBackendError, for at most ``budget`` seconds after the first one."""
    delay = 0.2
    first: float | None = None
    while True:
        try:
            return fn()
        except TransientBackendError as exc:
            now = time.monotonic()
            first = now if first is None else first
            if now + delay > first + budget:
                if now - first < 0.5:
                    raise
                raise TransientBackendError(
                    f"{what}: gave up after retrying for {now - first:.0f} s "
                    f"(SQLTRACK_BULK_RETRY): {exc}"
                ) from exc
            time.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _MAX_DELAY)


# -- a write's staging ----------------------------------------------------------------------
def _lease() -> float:
    return float(config.get("lease"))


def begin(backend: Backend, spec: datasets.WriteSpec) -> None:
    """Record the writer, then create the staging area (both idempotent: a retry after a
    lost answer does the same again)."""
    now = datetime.now(timezone.utc)
    writer = Writer.parse(spec.writer)
    with backend.transaction() as s:
        s.execute(
            "INSERT INTO sqltrack.staging_writers (staging, run_id, dataset_name, host_name, "
            "process_id, process_start, started_at, heartbeat_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (staging) DO NOTHING",
            (
                spec.staging,
                spec.run_id,
                spec.name,
                writer.host,
                writer.pid,
                writer.start,
                now,
                now,
                now + timedelta(seconds=_lease()),
            ),
        )
    datasets.engine(backend).prepare(backend, spec)


def heartbeat(backend: Backend, staging: str, *, lock_wait: float | None = None) -> None:
    """The write is still running: push the lease of ``staging`` forward."""
    now = datetime.now(timezone.utc)
    with backend.session(lock_wait=lock_wait) as s:
        s.execute(
            "UPDATE sqltrack.staging_writers SET heartbeat_at = ?, expires_at = ? "
            "WHERE staging = ? AND published_at IS NULL",
            (now, now + timedelta(seconds=_lease()), staging),
        )


@contextmanager
def beating(uri: str, staging: str) -> Iterator[None]:
    """Refresh the heartbeat of ``staging`` every quarter lease while the block runs
    (a thread; a store that is busy or away skips a beat)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(_lease() / 4):
            backend = open_backend(uri)
            try:
                heartbeat(backend, staging, lock_wait=2.0)
            except SqltrackError:
                pass  # the next beat tries again; the lease covers several misses
            finally:
                backend.close()

    thread = threading.Thread(target=run, name="sqltrack-staging-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def mark_published(s: Any, staging: str) -> None:
    """Inside the publishing transaction: the staging area is no longer needed."""
    s.execute(
        "UPDATE sqltrack.staging_writers SET published_at = ? WHERE staging = ?",
        (datetime.now(timezone.utc), staging),
    )


def published(backend: Backend, staging: str) -> bool:
    """Whether the write of ``staging`` was published (its commit reached the store even
    when its answer did not)."""
    with backend.session(read_only=True) as s:
        rows = s.query(
            "SELECT published_at FROM sqltrack.staging_writers WHERE staging = ?", (staging,)
        )
    return bool(rows) and rows[0][0] is not None


def drop(backend: Backend, staging: str, *, keep_published_mark: bool = False) -> None:
    """Remove the staging area, then its writer row (unless it records a publication
    that the writer has not seen yet)."""
    datasets.engine(backend).drop_staging(backend, staging)
    sql = "DELETE FROM sqltrack.staging_writers WHERE staging = ?"
    if keep_published_mark:
        sql = "DELETE FROM sqltrack.staging_writers WHERE staging = ? AND published_at IS NULL"
    with backend.session() as s:
        s.execute(sql, (staging,))


def finish(backend: Backend, spec: datasets.WriteSpec) -> None:
    """After publishing: the staging area and its row go (retried; if that fails the
    janitor removes them at once, the row says published)."""
    retrying(f"removing staging {spec.staging}", lambda: drop(backend, spec.staging), spec.retry)


def discard(backend: Backend, spec: datasets.WriteSpec) -> None:
    """A failed write: remove what it staged, keeping a publication mark if its commit
    in fact went through."""
    retrying(
        f"removing staging {spec.staging}",
        lambda: drop(backend, spec.staging, keep_published_mark=True),
        spec.retry,
    )


# -- a write run from the tracker's process ------------------------------------------------
# Spark jobs a dataset write runs at most when the store goes away during them.
WRITE_ATTEMPTS = 3
# Staging of this process's failed writes that the store was too far away to remove.
_ABANDONED: dict[str, set[str]] = {}
_ABANDONED_LOCK = threading.Lock()


def write(
    backend: Backend,
    what: str,
    save: Callable[[str, str], None],
    budget: float,
    attempts: int = WRITE_ATTEMPTS,
) -> None:
    """Run ``save(staging, writer)`` (one Spark job writing into the fresh staging area
    ``staging``, owned by ``writer``: this process, which keeps its heartbeat meanwhile)
    until it succeeds. A job that fails because the store went away (TransientBackendError)
    runs again once the store answers (waiting at most ``budget`` seconds), at most
    ``attempts`` times in all; each failed attempt's staging is removed (or, while the
    store is away, at this process's next write)."""
    uri = backend.full_uri()
    _drop_abandoned(backend, uri)
    owner = Writer.this_process().text()
    for attempt in range(1, attempts + 1):
        area = datasets.new_staging()
        try:
            with beating(uri, area):
                save(area, owner)
            return
        except TransientBackendError as exc:
            outcome = _settle(backend, uri, area, budget)
            if outcome is True:
                return  # its COMMIT reached the store; only the answer was lost
            if outcome is None or attempt == attempts:
                why = "the store stayed away" if outcome is None else f"{attempt} attempts failed"
                raise TransientBackendError(
                    f"{what}: gave up after retrying ({why}; SQLTRACK_BULK_RETRY={budget:g} s); "
                    f"nothing was published: {exc}"
                ) from exc
            time.sleep(random.uniform(0.1, 0.5) * attempt)
        except BaseException:
            _settle(backend, uri, area, 0)
            raise


def _settle(backend: Backend, uri: str, area: str, budget: float) -> bool | None:
    """After a failed write: whether it was published after all (its staging goes either
    way); None when the store stayed away (the staging is removed at the next write)."""
    try:
        done = retrying(f"checking staging {area}", lambda: published(backend, area), budget)
        drop(backend, area)
        return done
    except SqltrackError:
        with _ABANDONED_LOCK:
            _ABANDONED.setdefault(uri, set()).add(area)
        return None


def _drop_abandoned(backend: Backend, uri: str) -> None:
    with _ABANDONED_LOCK:
        pending = sorted(_ABANDONED.get(uri, ()))
    for area in pending:
        try:
            drop(backend, area)
        except SqltrackError:
            continue
        with _ABANDONED_LOCK:
            _ABANDONED.get(uri, set()).discard(area)


# -- the janitor ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Area:
    """A staging area, its writer row, or both."""

    staging: str
    present: bool  # the table or folder exists
    recorded: bool  # a sqltrack.staging_writers row exists
    run_id: str | None = None
    dataset_name: str | None = None
    writer: Writer | None = None
    heartbeat_at: datetime | None = None
    expires_at: datetime | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Removed:
    """What :func:`gc` removed (or, with ``dry_run``, would remove), and why."""

    staging: str
    run_id: str | None
    dataset_name: str | None
    writer: str | None
    reason: str
    size_bytes: int


def survey(backend: Backend) -> list[Area]:
    """Every staging area and every writer row of the store."""
    eng = datasets.engine(backend)
    with backend.session(read_only=True) as s:
        rows = s.query(
            "SELECT staging, run_id, dataset_name, host_name, process_id, process_start, "
            "heartbeat_at, expires_at, published_at FROM sqltrack.staging_writers"
        )
    present = set(eng.staging_areas(backend))
    found = {
        r[0]: Area(
            staging=r[0],
            present=r[0] in present,
            recorded=True,
            run_id=r[1],
            dataset_name=r[2],
            writer=Writer(r[3], int(r[4]), r[5]),
            heartbeat_at=r[6],
            expires_at=r[7],
            published_at=r[8],
        )
        for r in rows
    }
    for name in present - set(found):
        found[name] = Area(staging=name, present=True, recorded=False)
    return [found[k] for k in sorted(found)]


def _reason(area: Area, now: datetime, older_than: float) -> str | None:
    """Why ``area`` can go, or None while its writer may still need it."""
    if not area.recorded or area.writer is None:
        age = datasets.staging_age(area.staging, now.timestamp())
        if age is not None and age >= older_than:
            return f"no writer recorded (made before 0009), {age:.0f} s old"
        return None
    if area.published_at is not None:
        return "published; the staged copy is no longer needed"
    w = area.writer
    alive = process_alive(w.host, w.pid, w.start)
    if alive is False:
        return f"writer {w.describe()} is gone"
    if alive is None and area.expires_at is not None and area.expires_at < now:
        return (
            f"writer {w.describe()} stopped its heartbeat at "
            f"{area.heartbeat_at:%Y-%m-%d %H:%M:%S %Z} (lease expired)"
        )
    return None


def gc(
    backend: Backend, older_than: float = datasets.STAGING_MAX_AGE, *, dry_run: bool = False
) -> list[Removed]:
    """Remove the staging of every writer that is gone (see the module docstring), and
    staging without a writer row older than ``older_than`` seconds; return what was
    removed with the bytes freed. A live writer's staging is never removed; a PostgreSQL
    staging table still locked by a running COPY is left for the next run."""
    eng = datasets.engine(backend)
    now = datetime.now(timezone.utc)
    removed = []
    for area in survey(backend):
        reason = _reason(area, now, older_than)
        if reason is None:
            continue
        size = eng.staging_bytes(backend, area.staging) if area.present else 0
        if not dry_run:
            try:
                drop(backend, area.staging)
            except TransientBackendError:
                continue  # busy (locked) or the store went away: the next janitor retries
        removed.append(
            Removed(
                area.staging,
                area.run_id,
                area.dataset_name,
                None if area.writer is None else area.writer.describe(),
                reason,
                size,
            )
        )
    return removed


def janitor(backend: Backend) -> list[Removed]:
    """:func:`gc` before a write: a failure never fails the write."""
    try:
        return gc(backend)
    except SqltrackError:
        return []


def total_bytes(removed: Sequence[Removed]) -> int:
    return sum(r.size_bytes for r in removed)
