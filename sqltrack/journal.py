"""The journal: every run record is on disk before its call returns, and reaches the
store exactly once, in order, whenever the store can take it.

Each process that logs keeps its own append-only journal: numbered JSON lines
``[seq, record...]`` in ``<journal_id>.<segment>.jsonl`` files of one folder per store
(beside a DuckDB file as ``<file>.journal/``, else in the user's cache folder), and holds
an exclusive ``flock`` on ``<journal_id>.lock`` for as long as it lives. A call writes its
line with one ``write(2)``: from then on the record survives ``kill -9`` of the process
(the kernel holds it). A background thread, the *flusher*:

- reads the journal back in batches (memory is bounded by the batch, whatever waits on
  disk) and writes each batch through :func:`sqltrack.records.apply` in one transaction
  that also moves ``sqltrack.journal_progress.delivered_seq``; a batch replayed after a
  crash skips what that row says is delivered, so every record is written once;
- records what the store refuses in ``sqltrack.journal_rejections`` and hands the error to
  the tracker, which raises it at its next call;
- retries a busy or unreachable store with jittered back-off, for as long as it takes;
  on DuckDB it gives the file up after each batch, so readers and other writers get their
  turn;
- ``fsync``s the journal at least every ``SQLTRACK_JOURNAL_FSYNC`` seconds (0: on every
  call), which bounds what a machine crash can lose;
- refreshes the lease (heartbeat) of the runs its process has open.

A journal whose owner died (its lock is free) is delivered by the next process that opens
the store, or by ``sqltrack sync``, and then removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqltrack import config, records
from sqltrack.backends import Backend, Session
from sqltrack.errors import (
    BackendError,
    SqltrackError,
    TerminalBackendError,
    TransientBackendError,
)

__all__ = [
    "Journal",
    "JournalWarning",
    "deliver_orphans",
    "journal_folder",
    "orphans",
    "process_alive",
    "process_start",
]

_SEGMENT_BYTES = 64 * 1024 * 1024
_HOLD = 1.0  # seconds a DuckDB file is kept while a backlog drains


class JournalWarning(UserWarning):
    """Records are safe in the journal but could not be delivered yet."""

    __module__ = "sqltrack"


def journal_folder(backend: Backend) -> Path:
    """Where this store's journals live: ``SQLTRACK_JOURNAL_DIR`` or the backend's own
    place (beside a DuckDB file), else the user's cache folder, one sub-folder per store."""
    explicit = config.get("journal_dir")
    local = backend.journal_folder()
    if not explicit and local is not None:
        return Path(local)
    base = Path(explicit) if explicit else _cache_home() / "sqltrack" / "journal"
    key = hashlib.sha256(backend.uri.encode()).hexdigest()[:16]
    return base / key


def _cache_home() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), so that a
    reused process id is not mistaken for the process that recorded it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def process_alive(host: str, pid: int, start: str | None) -> bool | None:
    """Whether the process is alive: True or False on this host, None elsewhere."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or process_start(pid) in (None, start)


@dataclass
class _Cursor:
    """Where the flusher stands: the segment and byte offset of the next record."""

    segment: int = 0
    offset: int = 0


@dataclass
class _Batch:
    items: list[tuple[int, records.Record]] = field(default_factory=list)
    end: _Cursor = field(default_factory=_Cursor)
    bad_lines: int = 0


def _segments(folder: Path, journal_id: str) -> list[int]:
    found = []
    for p in folder.glob(f"{journal_id}.*.jsonl"):
        try:
            found.append(int(p.name[len(journal_id) + 1 : -len(".jsonl")]))
        except ValueError:
            continue
    return sorted(found)


def _segment_path(folder: Path, journal_id: str, n: int) -> Path:
    return folder / f"{journal_id}.{n:06d}.jsonl"


def _read(folder: Path, journal_id: str, start: _Cursor, limit: int, last: int | None) -> _Batch:
    """Up to ``limit`` complete records from ``start`` on (a torn last line is left for
    later, or skipped when its writer is gone)."""
    batch = _Batch(end=_Cursor(start.segment, start.offset))
    lines: list[bytes] = []
    segments = [n for n in _segments(folder, journal_id) if n >= start.segment]
    for n in segments:
        if batch.end.segment != n:
            batch.end = _Cursor(n, 0)
        path = _segment_path(folder, journal_id, n)
        with path.open("rb") as fh:
            fh.seek(batch.end.offset)
            while len(lines) < limit:
                line = fh.readline()
                if not line.endswith(b"\n"):
                    break
                batch.end.offset += len(line)
                lines.append(line)
        if len(lines) >= limit or (last is not None and n >= last):
            break
    try:  # one parse for the whole batch: the journal's lines are JSON arrays
        parsed = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
        batch.items = [(int(data[0]), records.decode(data[1:])) for data in parsed]
        return batch
    except (ValueError, TypeError, IndexError, KeyError):
        batch.items = []
    for line in lines:  # a line torn by a machine crash: skip it, keep the others
        try:
            data = json.loads(line)
            batch.items.append((int(data[0]), records.decode(data[1:])))
        except (ValueError, TypeError, IndexError, KeyError):
            batch.bad_lines += 1
    return batch


def _delivered_seq(s: Session, journal_id: str) -> int | None:
    rows = s.query(
        "SELECT delivered_seq FROM sqltrack.journal_progress WHERE journal_id = ?", (journal_id,)
    )
    return int(rows[0][0]) if rows else None


def _record_rejection(
    s: Session, journal_id: str, seq: int, record: records.Record, reason: str, now: datetime
) -> None:
    s.execute(
        "INSERT INTO sqltrack.journal_rejections (journal_id, seq, run_id, record, "
        "reason, rejected_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            journal_id,
            seq,
            record.run_id,
            json.dumps(records.encode(record), default=str),
            reason,
            now,
        ),
    )


def _set_progress(
    s: Session, journal_id: str, host: str, pid: int, last: int, known: bool, now: datetime
) -> None:
    if known:
        s.execute(
            "UPDATE sqltrack.journal_progress SET delivered_seq = ?, updated_at = ? "
            "WHERE journal_id = ?",
            (last, now, journal_id),
        )
    else:
        s.execute(
            "INSERT INTO sqltrack.journal_progress (journal_id, host_name, process_id, "
            "delivered_seq, updated_at) VALUES (?, ?, ?, ?, ?)",
            (journal_id, host, pid, last, now),
        )


def _deliver(
    s: Session,
    journal_id: str,
    host: str,
    pid: int,
    items: Sequence[tuple[int, records.Record]],
    uri: str,
) -> tuple[int, list[tuple[int, records.Rejection]]]:
    """Write one batch (inside ``s``'s transaction); return the new delivered seq and the
    rejections of records not delivered before."""
    now = datetime.now(timezone.utc)
    stored = _delivered_seq(s, journal_id)
    done = stored or 0
    fresh = [(seq, r) for seq, r in items if seq > done]
    if not fresh:
        return done, []
    rejected = records.apply(s, [r for _, r in fresh], uri)
    by_record = {id(r.record): r for r in rejected}
    out = []
    for seq, record in fresh:
        rejection = by_record.get(id(record))
        if rejection is None:
            continue
        out.append((seq, rejection))
        _record_rejection(s, journal_id, seq, record, str(rejection.error), now)
    last = fresh[-1][0]
    _set_progress(s, journal_id, host, pid, last, stored is not None, now)
    return last, out


def _refuse_failing(
    s: Session,
    journal_id: str,
    host: str,
    pid: int,
    seq: int,
    record: records.Record,
    exc: BaseException,
) -> records.Rejection:
    """A record whose own write fails with an error a retry cannot cure: record it as
    refused and move past it (the journal must not stop on one bad record)."""
    error = (
        exc
        if isinstance(exc, SqltrackError)
        else TerminalBackendError(
            f"the store could not write this record: {type(exc).__name__}: {exc}"
        )
    )
    now = datetime.now(timezone.utc)
    stored = _delivered_seq(s, journal_id)
    if stored is None or stored < seq:
        _record_rejection(s, journal_id, seq, record, str(error), now)
        _set_progress(s, journal_id, host, pid, seq, stored is not None, now)
    return records.Rejection(record, error)


def _deliver_isolated(
    backend: Backend,
    journal_id: str,
    host: str,
    pid: int,
    items: Sequence[tuple[int, records.Record]],
    lock_wait: float | None,
    refused: Callable[[list[tuple[int, records.Rejection]]], None],
) -> int:
    """After a batch failed with an error a retry may not cure: each record in its own
    transaction, so that a record the store cannot take is refused alone. A record is
    refused only when it fails again on a fresh connection while the store answers a
    probe; otherwise the store itself is unwell and the batch is retried later
    (TransientBackendError). Each refusal is handed to ``refused`` as soon as its
    transaction commits. Returns the last seq delivered or refused."""
    last = 0
    for seq, record in items:
        error: BaseException | None = None
        for _ in range(2):
            try:
                with backend.transaction(lock_wait=lock_wait) as s:
                    last, rejected = _deliver(s, journal_id, host, pid, [(seq, record)],
                                              backend.uri)  # fmt: skip
                refused(rejected)
                error = None
                break
            except TransientBackendError:
                raise
            except Exception as exc:  # the driver's, or a bug's
                error = exc
                backend.release()  # the next attempt opens a fresh connection
        if error is None:
            continue
        try:
            with backend.session(read_only=True, lock_wait=lock_wait) as s:
                s.query("SELECT count(*) FROM sqltrack.journal_progress")
        except Exception as probe:
            raise TransientBackendError(
                f"the store fails for more than one record ({error}); retrying later"
            ) from probe
        with backend.transaction(lock_wait=lock_wait) as s:
            rejection = _refuse_failing(s, journal_id, host, pid, seq, record, error)
        refused([(seq, rejection)])
        last = seq
    return last


def _parse_id(journal_id: str) -> tuple[str, int]:
    """``host-pid-random`` back into (host, pid)."""
    host, pid, _ = journal_id.rsplit("-", 2)
    return host, int(pid)


def _upsert_leases(
    s: Session, run_ids: Sequence[str], host: str, pid: int, start: str | None, beat: datetime
) -> None:
    lease = timedelta(seconds=float(config.get("lease")))
    for run_id in sorted(run_ids):
        s.execute(
            "INSERT INTO sqltrack.run_leases (run_id, host_name, process_id, process_start, "
            "heartbeat_at, expires_at) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
            "sqltrack.runs WHERE run_id = ?) ON CONFLICT (run_id) DO UPDATE SET "
            "host_name = excluded.host_name, process_id = excluded.process_id, "
            "process_start = excluded.process_start, heartbeat_at = excluded.heartbeat_at, "
            "expires_at = excluded.expires_at",
            (run_id, host, pid, start, beat, beat + lease, run_id),
        )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int | None]:
    """The journal's lock, taken without waiting: yields None when its owner lives."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def orphans(folder: Path) -> list[str]:
    """Journals in ``folder`` whose owning process is gone (their lock is free)."""
    if not folder.is_dir():
        return []
    found = []
    for lock in sorted(folder.glob("*.lock")):
        with _locked(lock) as fd:
            if fd is not None:
                found.append(lock.name[: -len(".lock")])
    return found


def deliver_orphans(backend: Backend, folder: Path, *, lock_wait: float | None = None) -> int:
    """Deliver the journals in ``folder`` whose processes are gone; return the number of
    records written (``sqltrack sync``). A journal is removed once fully delivered."""
    if not folder.is_dir():
        return 0
    written = 0
    for lock in sorted(folder.glob("*.lock")):
        journal_id = lock.name[: -len(".lock")]
        with _locked(lock) as fd:
            if fd is None:
                continue
            try:
                host, pid = _parse_id(journal_id)
            except ValueError:
                continue
            cursor = _Cursor()
            while True:
                batch = _read(folder, journal_id, cursor, 20_000, None)
                if not batch.items:
                    break
                with backend.session(read_only=True, lock_wait=lock_wait) as s:
                    done = _delivered_seq(s, journal_id) or 0
                fresh = [(seq, r) for seq, r in batch.items if seq > done]
                started = [r for _, r in fresh if isinstance(r, records.RunStart)]
                try:
                    with backend.transaction(lock_wait=lock_wait) as s:
                        _deliver(s, journal_id, host, pid, fresh, backend.uri)
                except TransientBackendError:
                    raise
                except Exception:  # one record the store cannot take: isolate it
                    backend.release()
                    _deliver_isolated(
                        backend, journal_id, host, pid, fresh, lock_wait, lambda _: None
                    )
                if started:
                    with backend.transaction(lock_wait=lock_wait) as s:
                        beat = max(r.start_time for r in started)
                        _upsert_leases(s, [r.run_id for r in started], host, pid, None, beat)
                written += len(fresh)
                cursor = batch.end
                backend.release()
            for n in _segments(folder, journal_id):
                _segment_path(folder, journal_id, n).unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
    return written


class Journal:
    """One process's journal for one store, with its flusher thread."""

    def __init__(self, backend: Backend, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.process_start = process_start(self.pid)
        self.journal_id = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:8]}"
        self._lock_path = folder / f"{self.journal_id}.lock"
        # Locked before it appears under its name: a scan for orphans never sees an
        # unlocked lock file of a live journal.
        pending = folder / f"{self.journal_id}.lock.new"
        self._lock_fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(pending, self._lock_path)
        self._write_lock = threading.Lock()
        self._segment = 0
        self._segment_size = 0
        self._fd = self._open_segment(0)
        self._seq = 0
        self._synced_seq = 0
        self._fsync_every = float(config.get("journal_fsync"))
        self._interval = float(config.get("journal_interval"))
        self._batch = int(config.get("journal_batch"))
        self._cursor = _Cursor()
        self._delivered = 0
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._stop = False
        self.rejections: list[tuple[int, records.Rejection]] = []
        self.last_error: SqltrackError | None = None
        self.live_runs: set[str] = set()
        self._lease_due = 0.0
        self._orphans_done = False
        self._held_since: float | None = None
        self.orphan_records = 0  # records of dead processes' journals this one delivered
        self._thread = threading.Thread(
            target=self._run, name=f"sqltrack-journal-{self.journal_id}", daemon=True
        )
        self._thread.start()
        if self._fsync_every > 0:  # its own thread: a slow delivery never delays an fsync
            threading.Thread(
                target=self._sync_loop, name=f"sqltrack-fsync-{self.journal_id}", daemon=True
            ).start()

    def __repr__(self) -> str:
        return f"<sqltrack.Journal {self.folder / self.journal_id}>"

    @property
    def where(self) -> str:
        return str(self.folder / f"{self.journal_id}.*.jsonl")

    def _open_segment(self, n: int) -> int:
        path = _segment_path(self.folder, self.journal_id, n)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    # -- writing (the caller's thread) -------------------------------------------------
    def append(self, batch: Sequence[records.Record]) -> int:
        """Write records to the journal; return the last one's sequence number. When this
        returns, the records survive the process being killed."""
        with self._write_lock:
            lines = []
            for record in batch:
                self._seq += 1
                lines.append(json.dumps([self._seq, *records.encode(record)]))
            data = ("\n".join(lines) + "\n").encode()
            if self._segment_size + len(data) > _SEGMENT_BYTES and self._segment_size:
                os.close(self._fd)
                self._segment += 1
                self._segment_size = 0
                self._fd = self._open_segment(self._segment)
            os.write(self._fd, data)
            self._segment_size += len(data)
            if self._fsync_every <= 0:
                os.fsync(self._fd)
                self._synced_seq = self._seq
            return self._seq

    @property
    def pending(self) -> int:
        """Records of this journal not yet in the store, plus one while journals that
        dead processes left behind are still being delivered."""
        return self._seq - self._delivered + (0 if self._orphans_done else 1)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every record written so far is delivered."""
        target = self._seq
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._done:
            while self._delivered < target or not self._orphans_done:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(min(left, 0.05))
                self._wake.set()
        return True

    def take_rejections(self) -> list[tuple[int, records.Rejection]]:
        with self._done:
            out, self.rejections = self.rejections, []
        return out

    def close(self, timeout: float) -> bool:
        """Deliver what is left within ``timeout``, stop the flusher, and remove the journal
        when everything is delivered; return whether it was."""
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        self._thread.join()  # quick: a stopping flusher makes one last attempt, no waits
        with self._write_lock:
            self._sync()
            os.close(self._fd)
            self._fd = -1
        drained = self.pending == 0
        if drained:
            for n in _segments(self.folder, self.journal_id):
                _segment_path(self.folder, self.journal_id, n).unlink(missing_ok=True)
            self._lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the flock: a journal left behind is an orphan now
        return drained

    def _sync_loop(self) -> None:
        while not self._stop:
            time.sleep(self._fsync_every)
            with self._write_lock:
                self._sync()

    def _sync(self) -> None:
        if self._fd >= 0 and self._synced_seq < self._seq:
            os.fsync(self._fd)
            self._synced_seq = self._seq

    # -- delivering (the flusher thread) ----------------------------------------------
    def _run(self) -> None:
        delay = 0.0
        while True:
            self._wake.wait(delay if delay else self._interval)
            self._wake.clear()
            heartbeat = bool(self.live_runs) and time.monotonic() >= self._lease_due
            if self.pending == 0 and not heartbeat and self._orphans_done:
                if self._stop:
                    return
                delay = 0.0
                continue
            try:
                self._deliver_once(heartbeat)
                delay = 0.0
                self.last_error = None
                if self._stop:
                    return  # closing: one last batch; what is left stays journaled
            except SqltrackError as exc:
                self.last_error = exc
                delay = min(max(delay * 2, 0.05), 2.0) * random.uniform(0.5, 1.0)
                if self._stop:
                    return
            except Exception as exc:  # never let the flusher die silently
                self.last_error = BackendError(f"journal delivery failed: {exc!r}")
                delay = 2.0
                if self._stop:
                    return

    def _deliver_once(self, heartbeat: bool) -> None:
        wait = 0.0  # a busy store is retried by the loop, never waited for here
        if not self._orphans_done:
            self.orphan_records += deliver_orphans(self.backend, self.folder, lock_wait=wait)
            self._orphans_done = True
        batch = _read(self.folder, self.journal_id, self._cursor, self._batch, self._segment)
        if not batch.items and not heartbeat:
            self._advance(batch)
            return
        runs = set(self.live_runs)
        runs.update(r.run_id for _, r in batch.items if isinstance(r, records.RunStart))
        last = self._delivered
        if batch.items:
            try:
                with self.backend.transaction(lock_wait=wait) as s:
                    last, rejected = _deliver(
                        s, self.journal_id, self.host, self.pid, batch.items, self.backend.uri
                    )
                self._refused(rejected)
            except TransientBackendError:
                self.backend.release()  # a broken connection is opened afresh next time
                raise
            except Exception:
                # Not a passing fault, as far as the driver tells: write the batch one
                # record at a time, so that only a record the store cannot take is refused.
                self.backend.release()
                last = _deliver_isolated(
                    self.backend, self.journal_id, self.host, self.pid, batch.items, wait,
                    self._refused,
                )  # fmt: skip
        with self._done:
            if batch.items:
                self._delivered = max(self._delivered, batch.items[-1][0], last)
            self._done.notify_all()
        self._advance(batch)
        if runs and (heartbeat or batch.items):
            try:  # best effort: a lease that cannot be renewed never holds records back
                with self.backend.transaction(lock_wait=wait) as s:
                    self._beat(s, runs)
                self._lease_due = time.monotonic() + float(config.get("lease")) / 4
            except Exception as exc:
                self.backend.release()
                self.last_error = BackendError(f"renewing the runs' lease failed: {exc}")
                self._lease_due = time.monotonic() + 1.0
        if not self.backend.capabilities.concurrent_writers:
            # DuckDB: let readers and other writers in after each batch; while a backlog
            # drains in full batches, keep the file up to _HOLD seconds (closing it costs
            # a checkpoint).
            now = time.monotonic()
            if self._held_since is None:
                self._held_since = now
            if len(batch.items) < self._batch or now - self._held_since >= _HOLD:
                self.backend.release()
                self._held_since = None

    def _refused(self, rejected: list[tuple[int, records.Rejection]]) -> None:
        """Records the store refused: raised by the tracker's next call."""
        if rejected:
            with self._done:
                self.rejections.extend(rejected)

    def _beat(self, s: Session, runs: set[str]) -> None:
        _upsert_leases(
            s, list(runs), self.host, self.pid, self.process_start, datetime.now(timezone.utc)
        )

    def _advance(self, batch: _Batch) -> None:
        """Move past delivered records and remove fully delivered older segments."""
        old = self._cursor.segment
        self._cursor = batch.end
        if batch.bad_lines:
            warnings.warn(
                f"journal {self.journal_id}: skipped {batch.bad_lines} unreadable line(s)",
                JournalWarning,
                stacklevel=2,
            )
        for n in range(old, self._cursor.segment):
            _segment_path(self.folder, self.journal_id, n).unlink(missing_ok=True)
        if (
            self._cursor.segment < self._segment
            and self._cursor.offset
            >= _segment_path(self.folder, self.journal_id, self._cursor.segment).stat().st_size
        ):
            _segment_path(self.folder, self.journal_id, self._cursor.segment).unlink()
            self._cursor = _Cursor(self._cursor.segment + 1, 0)

    @staticmethod
    def describe(records_pending: int, where: str, uri: str) -> str:
        return (
            f"{records_pending} record(s) are safe in the journal {where} but not yet in "
            f"{uri}; they are delivered when the store is back (by this process, the next "
            f"one that opens the store, or `sqltrack sync --uri {uri}`)"
        )
