"""The Tracker: experiments, runs, params, metrics, tags and timers.

Every public write is one transaction (or one statement), so a failed call
leaves nothing half-written. Artifacts and search live in their own modules;
the Tracker delegates to them.
"""

from __future__ import annotations

import os
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from sqltrack import (
    _context,
    _values,
    artifacts,
    config,
    readsql,
    records,
    runs,
    schema,
    search,
)
from sqltrack.backends import Backend, Session, open_backend
from sqltrack.entities import (
    ActiveRun,
    Artifact,
    Dataset,
    Experiment,
    Metric,
    ModelVersion,
    Run,
    RunInfo,
    RunStatus,
)
from sqltrack.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SqltrackError,
    TransientBackendError,
)
from sqltrack.identifiers import shown, storable, validate_key, validate_name, validate_value
from sqltrack.journal import JournalWarning
from sqltrack.sqltext import Fragment, compose
from sqltrack.writer import Writer, conflict_on_end

_T = TypeVar("_T")

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from sqltrack.audit import Comparison, Lineage
    from sqltrack.deployments import Deployment
    from sqltrack.ledger import LedgerDigest, VerifyReport
    from sqltrack.registry import AliasEvent, RegisteredModel, RegisteredModelVersion

__all__ = ["Tracker", "connect"]

DEFAULT_EXPERIMENT = "Default"
_RUN_COLUMNS = Fragment(
    "run_id, experiment_id, run_name, status, user_name, start_time, end_time, "
    "parent_run_id, host_name, source_name, source_type, git_commit, "
    "(SELECT l.state FROM sqltrack.run_liveness l WHERE l.run_id = runs.run_id) AS state, "
    "db_user, end_db_user"
)
# Seconds start_run waits for a busy DuckDB file before it lets the journal's delivery
# resolve the run's experiment (the call itself must stay fast while the store is away).
_START_WAIT = 0.5
_ADJECTIVES = ("amber", "brisk", "calm", "deft", "eager", "fond", "glad", "keen", "lucid", "merry")
_NOUNS = ("otter", "heron", "lynx", "finch", "panda", "koala", "ibis", "gecko", "tapir", "wren")


def connect(uri: str | None = None, *, read_only: bool = False) -> Tracker:
    """Open a store: the argument, else ``SQLTRACK_URI``, else ``duckdb:///tracking.duckdb``.

    An empty database gets the schema; one on an older schema raises
    :class:`~sqltrack.SchemaOutOfDateError` naming ``sqltrack db upgrade URI``.
    ``read_only=True`` opens a reader's store: nothing is written or created, and a
    missing DuckDB file is a :class:`~sqltrack.NotFoundError` naming the path.
    """
    backend = open_backend(config.store_uri(uri), read_only=read_only)
    try:
        schema.ensure_schema(backend)
    except BaseException:
        backend.close()
        raise
    return Tracker(backend)


def _experiment_name(name: object) -> str:
    return validate_name(name, "experiment name")


def _run_id(run_id: object) -> str:
    if (
        not isinstance(run_id, str)
        or len(run_id) != 32
        or not all(c in "0123456789abcdef" for c in run_id)
    ):
        raise InvalidInputError(
            f"run id {shown(run_id)} is not a run id (32 lowercase hexadecimal characters)"
        )
    return run_id


def _pairs(
    items: Mapping[str, Any] | Iterable[tuple[str, Any]], what: str
) -> list[tuple[str, Any]]:
    if isinstance(items, Mapping):
        return list(items.items())
    try:
        pairs = [tuple(p) for p in items]
    except TypeError as exc:
        raise InvalidInputError(f"{what} must be a dict or a list of (key, value) pairs") from exc
    for p in pairs:
        if len(p) != 2:
            raise InvalidInputError(f"{what}: {p!r} is not a (key, value) pair")
    return pairs


def _path(value: object, what: str) -> Path:
    """A file or folder argument as a Path (str or os.PathLike), else InvalidInputError."""
    if isinstance(value, str | os.PathLike):
        try:
            return Path(value)
        except TypeError:
            pass
    raise InvalidInputError(f"{what} {shown(value)} must be a path (str or pathlib.Path)")


def _sequence(value: object, what: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInputError(f"{what} {shown(value)} must be a list or a tuple")
    return value


class Tracker:
    """A connection to one store plus the caller's active experiment, runs and timers."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._writer = Writer(backend)
        self._experiment_id: int | None = None
        self._experiment_ids: dict[str, int] = {}
        self._active: list[str] = []
        self._timers: list[tuple[str, float]] = []

    @property
    def uri(self) -> str:
        return self.backend.uri

    def close(self) -> None:
        """Deliver what the journal holds (within ``SQLTRACK_END_WAIT``; what is left stays
        journaled, with a warning) and release the store."""
        try:
            self._writer.close()
        finally:
            self.backend.close()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record logged so far is in the store (``SQLTRACK_LOCK_TIMEOUT``
        by default); raise :class:`~sqltrack.TransientBackendError` if it is not, and any
        error the store reported for an earlier record."""
        self._writer.deliver(timeout)
        self._writer.raise_rejections()

    def sync(self) -> int:
        """Deliver the journals that dead processes left behind for this store (what
        ``sqltrack sync`` runs); return the number of records written."""
        from sqltrack.journal import deliver_orphans, journal_folder

        self.flush()
        journal = self._writer.journal
        already = journal.orphan_records if journal is not None else 0
        return already + deliver_orphans(self.backend, journal_folder(self.backend))

    def stale_runs(self) -> list[runs.StaleRun]:
        """RUNNING runs whose process is gone: their lease expired (shown as CRASHED)."""
        self._read()
        with self.backend.session(read_only=True) as s:
            return runs.stale_runs(s)

    def end_stale_runs(self, *, dry_run: bool = False) -> list[runs.StaleRun]:
        """End every run whose process is gone as FAILED, at its last heartbeat, with a
        ``sqltrack.end_reason`` tag; return them (``sqltrack runs end-stale``). MLflow
        leaves such runs RUNNING forever."""
        self._read()
        with self.backend.transaction() as s:
            return runs.end_stale(s, self.uri, dry_run=dry_run)

    def _read(self) -> None:
        """Before a read: the journal is delivered, so the read sees every call before it."""
        self.flush()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sqltrack.Tracker {self.uri}>"

    # -- experiments ----------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> int:
        """Create the experiment (or find it by name) and make it the active one."""
        name = _experiment_name(name)
        tag_pairs = [
            (validate_key(k, "tag key"), validate_value(v, f"tag {k!r}"))
            for k, v in _pairs(tags or {}, "tags")
        ]
        user = storable(_context.user_name())
        with self.backend.transaction() as s:
            experiment_id = records.ensure_experiment(s, name, user, tag_pairs)
        self._experiment_id = self._experiment_ids[name] = experiment_id
        return experiment_id

    def set_experiment(self, name: str) -> Experiment:
        """Make an experiment active, creating it when it does not exist (as MLflow does)."""
        self.create_experiment(name)
        return self.get_experiment_by_name(name)

    def _experiments(self, where: str, params: Sequence[Any]) -> list[Experiment]:
        self._read()
        with self.backend.session(read_only=True) as s:
            rows = s.query(
                compose(
                    "SELECT experiment_id, name, created_at, created_by "
                    "FROM sqltrack.experiments {where} ORDER BY experiment_id",
                    where=Fragment(where),
                ),
                params,
            )
            tags: dict[int, dict[str, str]] = {}
            for eid, key, value in s.query(
                "SELECT experiment_id, key, value FROM sqltrack.experiment_tags"
            ):
                tags.setdefault(eid, {})[key] = value
        return [Experiment(r[0], r[1], r[2], r[3], tags.get(r[0], {})) for r in rows]

    def get_experiment_by_name(self, name: str) -> Experiment:
        found = self._experiments("WHERE name = ?", (_experiment_name(name),))
        if not found:
            raise NotFoundError(
                f"no experiment named {name!r} in {self.uri}; create it with create_experiment()"
            )
        return found[0]

    def list_experiments(self) -> list[Experiment]:
        return self._experiments("", ())

    def _active_experiment_id(self, experiment: str | int | None) -> int:
        """The experiment a new run goes to. Bounded: a store that is busy or away raises
        TransientBackendError at once (start_run then lets delivery resolve the name)."""
        wait = _START_WAIT if self._writer.journaled else None
        if isinstance(experiment, str):
            name = _experiment_name(experiment)
            if name not in self._experiment_ids:
                with self.backend.session(read_only=True, lock_wait=wait) as s:
                    rows = s.query(
                        "SELECT experiment_id FROM sqltrack.experiments WHERE name = ?", (name,)
                    )
                if not rows:
                    raise NotFoundError(
                        f"no experiment named {name!r} in {self.uri}; create it with "
                        "set_experiment or create_experiment"
                    )
                self._experiment_ids[name] = int(rows[0][0])
            return self._experiment_ids[name]
        if isinstance(experiment, int) and not isinstance(experiment, bool):
            if not -(2**63) <= experiment < 2**63:
                raise NotFoundError(f"no experiment with id {shown(experiment)} in {self.uri}")
            with self.backend.session(read_only=True, lock_wait=wait) as s:
                if not s.query(
                    "SELECT 1 FROM sqltrack.experiments WHERE experiment_id = ?", (experiment,)
                ):
                    raise NotFoundError(f"no experiment with id {experiment} in {self.uri}")
            return experiment
        if experiment is not None:
            raise InvalidInputError(f"experiment {shown(experiment)} must be a name or an id")
        if self._experiment_id is None:
            with self.backend.transaction(lock_wait=wait) as s:
                found = records.ensure_experiment(
                    s, DEFAULT_EXPERIMENT, storable(_context.user_name())
                )
            self._experiment_id = self._experiment_ids[DEFAULT_EXPERIMENT] = found
        return self._experiment_id

    # -- runs -----------------------------------------------------------------
    def start_run(
        self,
        run_name: str | None = None,
        experiment: str | int | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        nested: bool = False,
    ) -> ActiveRun:
        """Start a run in ``experiment`` (default: the active one) and make it active.

        Use it as a context manager to end it FINISHED, or FAILED on an exception.
        While a run is active, a new one needs ``nested=True`` (its parent is then the
        active run) or an explicit ``parent_run_id``, as in MLflow.
        """
        if self._active and not nested and parent_run_id is None:
            raise ConflictError(
                f"run {self._active[-1]} is already active; end it with end_run() or start "
                "a child run with start_run(nested=True)"
            )
        if nested and parent_run_id is None and self._active:
            parent_run_id = self._active[-1]
        if parent_run_id is not None:
            _run_id(parent_run_id)
            if self._writer.status(parent_run_id) is None:
                pass  # the store is away: delivery checks that the parent exists
        experiment_name: str | None = None
        try:
            experiment_id: int | None = self._active_experiment_id(experiment)
        except TransientBackendError:
            if not self._writer.journaled or isinstance(experiment, int):
                raise
            # The store is away: the run names its experiment, which delivery finds or
            # creates (as set_experiment would).
            experiment_id, experiment_name = None, experiment or DEFAULT_EXPERIMENT
        run_id = uuid.uuid4().hex
        if run_name is None:
            run_name = f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{run_id[:4]}"
        run_name = validate_value(run_name, "run name")
        tag_pairs = [
            (validate_key(k, "tag key"), validate_value(v, f"tag {k!r}"))
            for k, v in _pairs(tags or {}, "tags")
        ]
        source_name, source_type = _context.source()
        commit = _context.git_commit(source_name)
        source_name = storable(source_name)  # a script path may hold undecodable bytes
        start = records.RunStart(
            run_id,
            experiment_id,
            experiment_name,
            run_name,
            storable(_context.user_name()),
            datetime.now(timezone.utc),
            parent_run_id,
            storable(_context.host_name()),
            source_name,
            source_type,
            commit,
            tuple(tag_pairs),
        )
        self._submit([start])
        self._active.append(run_id)
        info = RunInfo(
            run_id,
            -1 if experiment_id is None else experiment_id,
            run_name,
            RunStatus.RUNNING,
            start.user_name,
            start.start_time,
            None,
            parent_run_id,
            start.host_name,
            source_name,
            source_type,
            commit,
        )
        return ActiveRun(info, {}, {}, dict(tag_pairs), tracker=self)

    def active_run(self) -> Run | None:
        return self.get_run(self._active[-1]) if self._active else None

    def _current(self, run_id: str | None) -> str:
        if run_id is not None:
            return _run_id(run_id)
        if not self._active:
            raise ConflictError("no active run; start one with start_run() or pass run_id=")
        return self._active[-1]

    def end_run(self, status: str = RunStatus.FINISHED, run_id: str | None = None) -> None:
        """End the active run (or ``run_id``) with ``status``: FINISHED, FAILED or KILLED."""
        if status not in RunStatus.ENDED:
            raise InvalidInputError(
                f"end status {status!r} is not one of {', '.join(RunStatus.ENDED)}"
            )
        run_id = self._current(run_id)
        known = self._writer.status(run_id)
        if known is not None and known != RunStatus.RUNNING:
            if run_id in self._active:
                self._active.remove(run_id)
            raise conflict_on_end(run_id, known)
        try:
            self._submit([records.RunEnd(run_id, status, datetime.now(timezone.utc))])
        finally:
            if run_id in self._active:
                self._active.remove(run_id)
        self._writer.settle(f"ending run {run_id}")
        self._writer.raise_rejections()

    def _exit_run(self, run_id: str, status: str, failed: bool) -> None:
        """Context-manager exit: end the run unless the block already ended it. When the
        block raised, an error while ending is a warning: it never hides the original."""
        if run_id not in self._active:
            return
        if not failed:
            self.end_run(status, run_id=run_id)
            return
        try:
            self.end_run(status, run_id=run_id)
        except SqltrackError as exc:
            warnings.warn(
                f"ending run {run_id} as {status} after an error in its block also failed: {exc}",
                JournalWarning,
                stacklevel=3,
            )

    def _require_running(self, run_id: str) -> None:
        """Raise the right error for a write to a run that is not RUNNING (as known to
        this process, or as stored)."""
        self._writer.require_running(run_id)

    def _check_running(self, s: Session, run_id: str) -> None:
        """Inside a write's transaction: the run exists and is RUNNING."""
        runs.require_running(s, run_id, self.uri)

    def _submit(self, batch: Sequence[records.Record]) -> None:
        """Journal run records (see :mod:`sqltrack.writer`): checked against what this
        process knows, safe on disk when this returns, delivered in the background."""
        for run_id in {r.run_id for r in batch if not isinstance(r, records.RunStart)}:
            if any(isinstance(r, records.Tags) for r in batch):
                self._writer.status(run_id)  # tags: the run must exist, any state
            else:
                self._writer.require_running(run_id)
        for r in batch:
            if isinstance(r, records.WriteOnce):
                self._writer.check_once(r)
            if isinstance(r, records.Params | records.WriteOnce):
                self._writer.check_params(
                    r.run_id, r.items if isinstance(r, records.Params) else r.params
                )
        self._writer.submit(batch)

    def _bulk(self, run_id: str | None) -> str:
        """Bulk writes (artifacts, datasets, models) are synchronous: the run's records
        reach the store first, and the run must be RUNNING."""
        rid = self._current(run_id)
        self._writer.require_running(rid)
        self.flush()
        return rid

    def _retrying(self, what: str, write: Callable[[], _T]) -> _T:
        """A bulk write (all-or-nothing in one transaction) retried with jittered back-off
        while the store is busy or unreachable, for at most ``SQLTRACK_RETRY`` seconds."""
        bound = float(config.get("retry"))
        deadline = time.monotonic() + bound
        delay = 0.1
        while True:
            try:
                return write()
            except TransientBackendError as exc:
                if time.monotonic() + delay > deadline:
                    raise type(exc)(
                        f"{what}: {exc}; retried for {bound:g} s (SQLTRACK_RETRY), nothing "
                        "was written: call it again when the store is back"
                    ) from exc
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)

    def _reading(self, run_id: str) -> str:
        self._read()
        return run_id

    # -- params ---------------------------------------------------------------
    def log_param(self, key: str, value: Any, run_id: str | None = None) -> Any:
        """Log an immutable param: the same value again is a no-op, another raises."""
        key = validate_key(key, "param key")
        text = validate_value(value, f"param {key!r}")
        run_id = self._current(run_id)
        self._submit([records.Params(run_id, ((key, text),))])
        return value

    lp = log_param

    def log_params(
        self,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]],
        run_id: str | None = None,
    ) -> None:
        """Log several params in one transaction: all of them or none."""
        pairs = [
            (validate_key(k, "param key"), validate_value(v, f"param {k!r}"))
            for k, v in _pairs(params, "params")
        ]
        wanted: dict[str, str] = {}
        for key, text in pairs:
            if key in wanted and wanted[key] != text:
                raise ConflictError(
                    f"param {key!r} is given twice with different values "
                    f"({wanted[key]!r} and {text!r})"
                )
            wanted[key] = text
        run_id = self._current(run_id)
        self._submit([records.Params(run_id, tuple(wanted.items()))])

    # -- metrics --------------------------------------------------------------
    def log_metric(
        self,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | float | datetime | None = None,
        run_id: str | None = None,
    ) -> float:
        """Append one point to a metric's history (NaN and ±Infinity are kept as is)."""
        key = validate_key(key, "metric key")
        number = _values.metric_value(key, value)
        step_ = _values.step(key, step)
        ts = _values.timestamp(key, timestamp)
        run_id = self._current(run_id)
        self._submit([records.Metrics(run_id, ((key, number, step_, ts),))])
        return number

    lm = log_metric

    def log_metrics(
        self,
        metrics: Mapping[str, float] | Iterable[tuple[str, float]],
        step: int | None = None,
        timestamp: int | float | datetime | None = None,
        run_id: str | None = None,
    ) -> None:
        """Log several points in one bulk insert (COPY on PostgreSQL, an Arrow scan on DuckDB)."""
        ts = _values.timestamp("metrics", timestamp)
        rows = []
        run_id = self._current(run_id)
        step_: int | None = None
        for key, value in _pairs(metrics, "metrics"):
            key = validate_key(key, "metric key")
            number = _values.metric_value(key, value)
            if step_ is None:  # one step for the whole batch: check it once
                step_ = _values.step(key, step)
            rows.append((run_id, key, number, step_, ts))
        self._insert_metric_rows(run_id, rows)

    def log_metric_history(
        self,
        key: str,
        values: Sequence[float],
        steps: Sequence[int] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Log a whole series of one metric (step i by default) in one bulk insert."""
        key = validate_key(key, "metric key")
        values = _sequence(values, f"metric {key!r}: values")
        if steps is not None:
            steps = _sequence(steps, f"metric {key!r}: steps")
        run_id = self._current(run_id)
        if steps is not None and len(steps) != len(values):
            raise InvalidInputError(f"metric {key!r}: {len(values)} values but {len(steps)} steps")
        ts = datetime.now(timezone.utc)
        rows = [
            (
                run_id,
                key,
                _values.metric_value(key, v),
                _values.step(key, steps[i] if steps else i),
                ts,
            )
            for i, v in enumerate(values)
        ]
        self._insert_metric_rows(run_id, rows)

    def _insert_metric_rows(self, run_id: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._submit([records.Metrics(run_id, tuple(r[1:] for r in rows))])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        run_id = _run_id(run_id)
        key = validate_key(key, "metric key")
        self._read()
        with self.backend.session(read_only=True) as s:
            rows = s.query(
                'SELECT key, value, step, "timestamp" FROM sqltrack.metrics '
                'WHERE run_id = ? AND key = ? ORDER BY step, "timestamp"',
                (run_id, key),
            )
            if not rows and not s.query("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (run_id,)):
                raise NotFoundError(f"run {run_id} does not exist in {self.uri}")
        return [Metric(k, float(v), int(st), ts) for k, v, st, ts in rows]

    # -- tags -----------------------------------------------------------------
    def set_tag(self, key: str, value: Any, run_id: str | None = None) -> None:
        """Set a mutable tag (the last value wins). Tags may be set on ended runs too,
        e.g. a reviewer's verdict, as MLflow's client allows."""
        self.set_tags({key: value}, run_id=run_id)

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        pairs = [
            (validate_key(k, "tag key"), validate_value(v, f"tag {k!r}"))
            for k, v in _pairs(tags, "tags")
        ]
        run_id = self._current(run_id)
        self._submit([records.Tags(run_id, tuple(pairs))])

    # -- timers ---------------------------------------------------------------
    def start_timer(self, name: str) -> None:
        """Start a named timer; :meth:`stop_and_log_timer` logs its seconds as a metric."""
        self._timers.append((validate_key(name, "timer name"), time.perf_counter()))

    def stop_and_log_timer(self, name: str | None = None, run_id: str | None = None) -> float:
        """Stop the latest timer (or the one called ``name``) and log its elapsed seconds."""
        if not self._timers:
            raise ConflictError("no timer is running; start one with start_timer(name)")
        index = len(self._timers) - 1
        if name is not None:
            names = [t[0] for t in self._timers]
            if name not in names:
                raise NotFoundError(f"no running timer named {name!r}; running: {names}")
            index = len(names) - 1 - names[::-1].index(name)
        timer, started = self._timers[index]
        seconds = time.perf_counter() - started
        self.log_metric(timer, seconds, run_id=run_id)
        del self._timers[index]
        return seconds

    # -- reading --------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        run_id = _run_id(run_id)
        self._read()
        with self.backend.session(read_only=True) as s:
            rows = s.query(
                compose("SELECT {cols} FROM sqltrack.runs WHERE run_id = ?", cols=_RUN_COLUMNS),
                (run_id,),
            )
            if not rows:
                raise NotFoundError(f"run {run_id} does not exist in {self.uri}")
            params = dict(
                s.query("SELECT key, value FROM sqltrack.params WHERE run_id = ?", (run_id,))
            )
            metrics = {
                k: float(v)
                for k, v in s.query(
                    "SELECT key, value FROM sqltrack.latest_metrics WHERE run_id = ?", (run_id,)
                )
            }
            tags = dict(s.query("SELECT key, value FROM sqltrack.tags WHERE run_id = ?", (run_id,)))
        return Run(RunInfo(*rows[0]), params, metrics, tags)

    def search_runs(
        self,
        experiment_names: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> pd.DataFrame:
        """Runs as a pandas DataFrame with MLflow's columns (``params.<k>``,
        ``metrics.<k>`` holding the latest value, ``tags.<k>``)."""
        self._read()
        return search.search_runs(
            self.backend, experiment_names, filter_string, order_by, max_results
        )

    @overload
    def sql(
        self, query: str, params: Sequence[Any] = (), *, output: Literal["rows"] = "rows"
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...
    @overload
    def sql(
        self, query: str, params: Sequence[Any] = (), *, output: Literal["arrow"]
    ) -> pa.Table: ...
    @overload
    def sql(
        self, query: str, params: Sequence[Any] = (), *, output: Literal["pandas"]
    ) -> pd.DataFrame: ...
    def sql(
        self, query: str, params: Sequence[Any] = (), *, output: readsql.Output = "rows"
    ) -> tuple[list[str], list[tuple[Any, ...]]] | pa.Table | pd.DataFrame:
        """Run one read-only SELECT against the store, with ``?`` placeholders bound to
        ``params``; return ``(column names, rows)``, an Arrow table (``output="arrow"``)
        or a pandas DataFrame (``output="pandas"``). Anything but one SELECT is refused
        (see :mod:`sqltrack.readsql`); every record logged before the call is visible."""
        params = _sequence(params, "sql parameters")
        self._read()
        return readsql.run(self.backend, query, params, output=output)

    # -- artifacts ------------------------------------------------------------
    def log_artifact(
        self, local_path: str | Path, name: str | None = None, run_id: str | None = None
    ) -> Artifact:
        path = _path(local_path, "log_artifact: local_path")
        run_id = self._bulk(run_id)
        return self._retrying(
            "log_artifact", lambda: artifacts.log_file(self.backend, run_id, path, name)
        )

    def log_artifacts(
        self, paths: str | Path | Iterable[str | Path], run_id: str | None = None
    ) -> list[Artifact]:
        if not isinstance(paths, str | os.PathLike):
            if not isinstance(paths, Iterable):
                raise InvalidInputError(
                    f"log_artifacts: {shown(paths)} must be a folder or a list of paths"
                )
            paths = [_path(p, "log_artifacts: path") for p in paths]
        run_id = self._bulk(run_id)
        return self._retrying(
            "log_artifacts", lambda: artifacts.log_files(self.backend, run_id, paths)
        )

    def log_text(self, text: str, name: str, run_id: str | None = None) -> Artifact:
        if not isinstance(text, str):
            raise InvalidInputError(f"log_text needs a str, not {type(text).__name__}")
        try:
            data = text.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"log_text({name!r}): the text has a lone surrogate at position {exc.start}, "
                "which is not UTF-8; decode bytes with errors='replace' first"
            ) from None
        run_id = self._bulk(run_id)
        return self._retrying(
            "log_text", lambda: artifacts.log_bytes(self.backend, run_id, data, name)
        )

    def log_dict(self, obj: Any, name: str, run_id: str | None = None) -> Artifact:
        run_id = self._bulk(run_id)
        data = artifacts.dump_json(obj, name)
        return self._retrying(
            "log_dict",
            lambda: artifacts.log_bytes(
                self.backend, run_id, data, name, media_type="application/json"
            ),
        )

    def log_figure(self, figure: Any, name: str, run_id: str | None = None) -> Artifact:
        run_id = self._bulk(run_id)
        png = artifacts.figure_png(figure, name)
        return self._retrying(
            "log_figure",
            lambda: artifacts.log_bytes(self.backend, run_id, png, name, media_type="image/png"),
        )

    def list_artifacts(self, run_id: str | None = None) -> list[Artifact]:
        return artifacts.list_artifacts(self.backend, self._reading(self._current(run_id)))

    def load_artifact(self, run_id: str, name: str) -> bytes:
        return artifacts.load(self.backend, self._reading(_run_id(run_id)), name)

    def download_artifact(self, run_id: str, name: str, dst: str | Path) -> Path:
        return artifacts.download(self.backend, self._reading(_run_id(run_id)), name, Path(dst))

    # -- datasets (sqltrack.datasets; Spark is imported there, never here) ------
    def log_dataset(
        self,
        df: Any,
        name: str = "training",
        run_id: str | None = None,
        *,
        mode: str = "append",
        keep_order: bool = False,
    ) -> Dataset:
        """Store a Spark DataFrame as an immutable SQL table of the run (issue: datasets)."""
        from sqltrack import datasets

        return datasets.log_dataset(
            self, df, name, self._bulk(run_id), mode=mode, keep_order=keep_order
        )

    def load_dataset(self, spark: Any, run_id: str, name: str = "training") -> Any:
        """Reload a run's dataset as a DataFrame equal to the one logged."""
        from sqltrack import datasets

        return datasets.load_dataset(self, spark, self._reading(_run_id(run_id)), name)

    def list_datasets(self, run_id: str | None = None) -> list[Dataset]:
        from sqltrack import datasets

        return datasets.list_datasets(
            self, None if run_id is None else self._reading(_run_id(run_id))
        )

    # -- Spark ML governance (sqltrack.governance, sqltrack.models) -------------
    def log_pipeline_stages(self, pipeline: Any, run_id: str | None = None) -> Any:
        from sqltrack import governance

        return governance.log_pipeline_stages(self, pipeline, self._current(run_id))

    def log_feature_transformations(self, pipeline: Any, run_id: str | None = None) -> Any:
        from sqltrack import governance

        return governance.log_feature_transformations(self, pipeline, self._current(run_id))

    def log_model_params(self, model: Any, run_id: str | None = None) -> Any:
        from sqltrack import governance

        return governance.log_model_params(self, model, self._current(run_id))

    def log_evaluator_metrics(
        self,
        predictions: Any,
        label_col: str = "label",
        kind: str = "binary",
        prediction_col: str = "prediction",
        probability_col: str = "probability",
        run_id: str | None = None,
    ) -> dict[str, float]:
        from sqltrack import evaluation

        return evaluation.log_evaluator_metrics(
            self,
            predictions,
            self._current(run_id),
            label_col=label_col,
            kind=kind,
            prediction_col=prediction_col,
            probability_col=probability_col,
        )

    def log_spark_model(
        self,
        model: Any,
        name: str = "model",
        run_id: str | None = None,
        dataset: str | None = None,
    ) -> ModelVersion:
        from sqltrack import models

        rid = self._bulk(run_id)
        return self._retrying(
            "log_spark_model",
            lambda: models.log_spark_model(self, model, name, rid, dataset=dataset),
        )

    def load_spark_model(self, run_id: str, name: str = "model") -> Any:
        """Reload a stored model by run id and name, or by a model URI (``runs:/RUN_ID/NAME``,
        ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``) in place of the run id."""
        from sqltrack import models

        ref = run_id if isinstance(run_id, str) and ":/" in run_id else None
        self._read()
        return models.load_spark_model(self, ref or _run_id(run_id), name)

    # -- model registry and deployments (sqltrack.registry, sqltrack.deployments) ---------
    def _registry_write(self, what: str, write: Callable[[], _T]) -> _T:
        self._read()  # the run's end must be in the store before governance reads it
        return self._retrying(what, write)

    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        """Create a registered model (``register_model`` also creates it on first use)."""
        from sqltrack import registry

        return self._registry_write(
            "create_registered_model",
            lambda: registry.create_registered_model(self.backend, name, description, tags),
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its latest version, aliases and tags."""
        from sqltrack import registry

        self._read()
        return registry.get_registered_model(self.backend, name)

    def search_registered_models(self, filter_string: str = "") -> list[RegisteredModel]:
        """Registered models by name; ``filter_string`` such as ``name LIKE 'churn%'``."""
        from sqltrack import registry

        self._read()
        return registry.search_registered_models(self.backend, filter_string)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        from sqltrack import registry

        self._registry_write(
            "set_registered_model_tag",
            lambda: registry.set_registered_model_tag(self.backend, name, key, value),
        )

    def register_model(
        self, model_uri: str, name: str, description: str | None = None
    ) -> RegisteredModelVersion:
        """Register the stored model ``model_uri`` names (``runs:/RUN_ID/model``) as the
        next version of ``name``; refused unless its run is FINISHED and its training data
        matches its fingerprint."""
        from sqltrack import registry

        return self._registry_write(
            "register_model",
            lambda: registry.register_model(self.backend, model_uri, name, description),
        )

    def get_model_version(self, name: str, version: int | str) -> RegisteredModelVersion:
        from sqltrack import registry

        self._read()
        return registry.get_model_version(self.backend, name, version)

    def get_model_version_by_alias(self, name: str, alias: str) -> RegisteredModelVersion:
        from sqltrack import registry

        self._read()
        return registry.get_model_version_by_alias(self.backend, name, alias)

    def search_model_versions(
        self, filter_string: str = "", max_results: int = 1000
    ) -> list[RegisteredModelVersion]:
        """Versions, newest first, aliases filled in; ``filter_string`` such as
        ``name = 'churn' AND run_id = '...'``."""
        from sqltrack import registry

        self._read()
        return registry.search_model_versions(self.backend, filter_string, max_results)

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, reason: str | None = None
    ) -> RegisteredModelVersion:
        """Set or move an alias; the change is kept in the alias history."""
        from sqltrack import registry

        return self._registry_write(
            "set_registered_model_alias",
            lambda: registry.set_registered_model_alias(self.backend, name, alias, version, reason),
        )

    def delete_registered_model_alias(
        self, name: str, alias: str, reason: str | None = None
    ) -> None:
        from sqltrack import registry

        self._registry_write(
            "delete_registered_model_alias",
            lambda: registry.delete_registered_model_alias(self.backend, name, alias, reason),
        )

    def get_model_alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every change of a registered model's aliases (or of one), oldest first."""
        from sqltrack import registry

        self._read()
        return registry.alias_history(self.backend, name, alias)

    def deploy(
        self,
        model_uri: str,
        target: str,
        kind: str,
        config: Mapping[str, Any] | None = None,
        *,
        replace: bool = False,
        reason: str | None = None,
    ) -> Deployment:
        """Record the deployment of a registered version (``models:/NAME@ALIAS``) to a
        target: ``sql_view``, ``mlflow_dir``, or an external platform (``sagemaker``,
        ``azureml``, ... with ``endpoint`` and ``region`` in ``config``)."""
        from sqltrack import deployments

        return self._registry_write(
            "deploy",
            lambda: deployments.deploy(
                self.backend, model_uri, target, kind, config, replace=replace, reason=reason
            ),
        )

    def undeploy(self, target: str, reason: str | None = None) -> Deployment:
        """Take down what is live on ``target``; return that deployment, now ended."""
        from sqltrack import deployments

        return self._registry_write(
            "undeploy", lambda: deployments.undeploy(self.backend, target, reason)
        )

    def export_model(
        self,
        model_uri: str,
        path: str | Path,
        format: str = "mlflow",
        *,
        target: str | None = None,
        replace: bool = False,
        reason: str | None = None,
    ) -> Deployment:
        """Write a registered version (``models:/NAME@ALIAS``) into the new directory
        ``path`` in MLflow's model format (spark and python_function flavors, signature,
        requirements), recorded as a deployment of kind ``mlflow_dir``."""
        from sqltrack import export

        return self._registry_write(
            "export_model",
            lambda: export.export_model(
                self.backend, model_uri, path, format, target=target, replace=replace,
                reason=reason,
            ),
        )  # fmt: skip

    def get_deployment_at(self, target: str, when: datetime) -> Deployment | None:
        """What was live on ``target`` at ``when`` (None: nothing), with the run and the
        exact data that trained it: the documented query of docs/schema.md."""
        from sqltrack import deployments

        self._read()
        return deployments.deployment_at(self.backend, target, when)

    def list_deployments(
        self, target: str | None = None, *, include_ended: bool = False
    ) -> list[Deployment]:
        """What is live per target (or every deployment ever, with ``include_ended``)."""
        from sqltrack import deployments

        self._read()
        return deployments.list_deployments(self.backend, target, include_ended=include_ended)

    # -- tamper evidence (sqltrack.ledger) ---------------------------------------
    def verify(self, run_id: str | None = None, *, against: str | None = None) -> VerifyReport:
        """Recompute the ledger's hash chains and every record (of one run, or of the
        store) and report each mismatch; ``against`` a digest kept outside the store
        (:meth:`ledger_digest`) also proves the history up to it unchanged."""
        from sqltrack import ledger

        self._read()
        return ledger.verify(
            self.backend, None if run_id is None else _run_id(run_id), against=against
        )

    def ledger_digest(self) -> LedgerDigest:
        """The store's digest (a hash over every chain's head), recorded in
        ``sqltrack.ledger_digests``: keep it outside the database to later prove, with
        ``verify(against=digest)``, that nothing before it was changed."""
        from sqltrack import ledger

        self._read()
        return ledger.take_digest(self.backend, _context.user_name())

    # -- audit and report (sqltrack.audit, sqltrack.report) ----------------------
    def compare_runs(self, run_ids: Sequence[str]) -> Comparison:
        """Params and latest metrics of two or more runs side by side, differences marked
        (a :class:`sqltrack.audit.Comparison`)."""
        from sqltrack import audit

        self._read()
        return audit.compare_runs(self, run_ids)

    def lineage(self, run_id: str) -> Lineage:
        """Who ran what code on which data, and the models it stored
        (a :class:`sqltrack.audit.Lineage`, read from ``sqltrack.run_lineage``)."""
        from sqltrack import audit

        return audit.lineage(self, self._reading(_run_id(run_id)))

    def write_report(
        self,
        out_dir: str | Path,
        experiment: str | None = None,
        *,
        metric: str | None = None,
        progress: Any = None,
    ) -> Path:
        """Write the self-contained HTML report into ``out_dir``; return its ``index.html``."""
        from sqltrack import report

        folder = _path(out_dir, "write_report: out_dir")
        self._read()
        return report.write_report(self, folder, experiment, metric=metric, progress=progress)
