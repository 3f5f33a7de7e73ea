"""The write path of one tracker: what the process already knows, the journal, and the
errors the store reported later.

Validation that needs no store happens at the call: keys, values and types (in the
Tracker), the state of runs this process started or has already looked up, and params
this process already logged. The record then goes to the process's
:class:`~sqltrack.journal.Journal` (or, with ``SQLTRACK_JOURNAL=off`` and for an
in-memory store, straight into the store). What only the store can know, such as a
param another process set to another value, is refused on delivery, recorded in
``sqltrack.journal_rejections``, and raised by the tracker's next call.

Reads and bulk writes (artifacts, datasets, models) first wait, within a bound, until
the journal has reached the store, so that they see every record logged before them.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
import weakref
from collections.abc import Iterable, Sequence

from sqltrack import config, records
from sqltrack.backends import Backend
from sqltrack.entities import RunStatus
from sqltrack.errors import (
    ConflictError,
    NotFoundError,
    SqltrackError,
    StoreBusyError,
    TransientBackendError,
)
from sqltrack.journal import Journal, JournalWarning, journal_folder, orphans

__all__ = ["Writer"]

_OPEN: weakref.WeakSet[Writer] = weakref.WeakSet()
# Seconds a journaled call waits for a busy DuckDB file to look up a run it does not know
# (then the record is journaled and delivery checks the run).
_LOOKUP_WAIT = 0.5


@atexit.register
def _close_all() -> None:
    """At interpreter exit, deliver what is left (bounded); the rest stays journaled."""
    for writer in list(_OPEN):
        try:
            writer.close()
        except Exception:  # exit must go on; the journal keeps the records
            pass


class Writer:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._journal: Journal | None = None
        self._status: dict[str, str] = {}  # run id -> status as this process knows it
        self._params: dict[str, dict[str, str]] = {}
        self._once: dict[tuple[str, str], tuple[tuple[object, ...], ...]] = {}
        self.journaled = (
            config.get("journal").lower() not in ("off", "0", "false", "no")
            and not backend.read_only
            and not backend.uri.endswith(":memory:")
        )
        if self.journaled and orphans(journal_folder(backend)):
            self._open_journal()  # its flusher delivers what dead processes left behind

    def _open_journal(self) -> Journal:
        with self._lock:
            if self._journal is not None and self._journal.pid != os.getpid():
                # A forked child: the parent's journal and its flusher belong to the
                # parent; this process gets its own.
                self._journal = None
            if self._journal is None:
                self._journal = Journal(self.backend, journal_folder(self.backend))
                _OPEN.add(self)
            return self._journal

    @property
    def journal(self) -> Journal | None:
        return self._journal

    # -- what this process knows ------------------------------------------------------
    def status(self, run_id: str) -> str | None:
        """The run's status as known here, asking the store once for runs started
        elsewhere; None when the store cannot be reached (delivery will check)."""
        known = self._status.get(run_id)
        if known is not None:
            return known
        try:
            wait = _LOOKUP_WAIT if self.journaled else None
            with self.backend.session(read_only=True, lock_wait=wait) as s:
                rows = s.query("SELECT status FROM sqltrack.runs WHERE run_id = ?", (run_id,))
        except TransientBackendError:
            if self.journaled:
                return None
            raise
        if not rows:
            raise NotFoundError(f"run {run_id} does not exist in {self.backend.uri}")
        status = str(rows[0][0])
        self._status[run_id] = status
        return status

    def require_running(self, run_id: str, what: str = "records") -> None:
        status = self.status(run_id)
        if status is not None and status != RunStatus.RUNNING:
            raise records.not_running(run_id, status, self.backend.uri, what)

    def check_params(self, run_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Raise for a param this process already logged with another value."""
        known = self._params.get(run_id, {})
        for key, value in items:
            if key in known and known[key] != value:
                raise records.param_conflict(run_id, key, known[key], value)

    def check_once(self, record: records.WriteOnce) -> None:
        """Raise for write-once rows this process already logged differently."""
        known = self._once.get((record.run_id, record.table))
        if known is not None and not records.same_rows(known, record.rows):
            raise records.write_once_conflict(record)

    def _learn(self, batch: Sequence[records.Record]) -> None:
        for record in batch:
            if isinstance(record, records.RunStart):
                self._status[record.run_id] = RunStatus.RUNNING
            elif isinstance(record, records.RunEnd):
                self._status[record.run_id] = record.status
            if isinstance(record, records.WriteOnce):
                self._once.setdefault((record.run_id, record.table), record.rows)
            if isinstance(record, records.Params | records.WriteOnce):
                items = record.items if isinstance(record, records.Params) else record.params
                self._params.setdefault(record.run_id, {}).update(items)
        journal = self._journal
        if journal is not None:
            journal.live_runs = {r for r, st in self._status.items() if st == RunStatus.RUNNING}

    # -- writing ----------------------------------------------------------------------
    def submit(self, batch: Sequence[records.Record]) -> None:
        """Journal ``batch`` (or write it at once); raise an error the store reported
        for an earlier record first."""
        self.raise_rejections()
        if not self.journaled:
            with self.backend.transaction() as s:
                rejected = records.apply(s, batch, self.backend.uri)
                if rejected:
                    raise rejected[0].error
            self._learn(batch)
            return
        self._open_journal().append(batch)
        self._learn(batch)

    def raise_rejections(self) -> None:
        journal = self._journal
        if journal is None:
            return
        taken = journal.take_rejections()
        if not taken:
            return
        for _, rejection in taken:  # the store's word wins over what this process assumed
            run_id = rejection.record.run_id
            if isinstance(rejection.record, records.RunStart):
                self._status.pop(run_id, None)
        seq, first = taken[0]
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise type(first.error)(
            f"{first.error} (journal record {seq}{more} refused by the store on delivery; "
            "recorded in sqltrack.journal_rejections)"
        ) from first.error

    def deliver(self, timeout: float | None = None) -> None:
        """Wait until everything journaled so far is in the store (reads, bulk writes)."""
        journal = self._journal
        if journal is None or journal.pending == 0:
            return
        wait = float(config.get("lock_timeout")) if timeout is None else timeout
        if not journal.flush(wait):
            error = journal.last_error
            detail = f" (last error: {error})" if error is not None else ""
            cls = StoreBusyError if isinstance(error, StoreBusyError) else TransientBackendError
            raise cls(
                Journal.describe(journal.pending, journal.where, self.backend.uri)
                + f"; waited {wait:g} s{detail}"
            )

    def settle(self, what: str) -> None:
        """After a run ends or before the tracker closes: deliver within
        ``SQLTRACK_END_WAIT``; warn (never raise) when the store cannot take it yet."""
        journal = self._journal
        if journal is None or journal.pending == 0:
            return
        if not journal.flush(float(config.get("end_wait"))):
            warnings.warn(
                f"{what}: " + Journal.describe(journal.pending, journal.where, self.backend.uri),
                JournalWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        journal = self._journal
        if journal is None:
            return
        self._journal = None
        _OPEN.discard(self)
        if journal.pid != os.getpid():
            return  # inherited by fork: the parent delivers and closes its journal
        if not journal.close(float(config.get("end_wait"))):
            warnings.warn(
                "closing the tracker: "
                + Journal.describe(journal.pending, journal.where, self.backend.uri),
                JournalWarning,
                stacklevel=3,
            )

    def errors(self) -> list[SqltrackError]:
        """Errors the flusher met (for messages); empty when delivery is healthy."""
        journal = self._journal
        return [journal.last_error] if journal is not None and journal.last_error else []


def conflict_on_end(run_id: str, status: str) -> ConflictError:
    return records.already_ended(run_id, status)
