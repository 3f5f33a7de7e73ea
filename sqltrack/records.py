"""Run records and the one place that writes them into the store.

A *record* is one logging call's effect, validated and frozen: a run's start or
end, params, metric points, tags, or a run's write-once rows (pipeline stages,
feature chains). :func:`apply` writes a batch of records inside the caller's
transaction, in order, and returns the records the store refused (a param another
process set to a different value, a point for a run that has ended) with the error
each one would have raised. Nothing here knows the Tracker, the journal or the
process that made the records: the journal delivers batches through :func:`apply`,
and so would any other writer.

Records are plain tuples of JSON-able values so that the journal can write them as
one line each (:func:`encode` / :func:`decode`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqltrack import ledger
from sqltrack.backends import Session
from sqltrack.entities import RunStatus
from sqltrack.errors import ConflictError, NotFoundError, SqltrackError
from sqltrack.sqltext import Fragment, compose, ident, join, placeholders

__all__ = [
    "Metrics",
    "Params",
    "Record",
    "Rejection",
    "RunEnd",
    "RunStart",
    "Tags",
    "WriteOnce",
    "apply",
    "decode",
    "encode",
    "ensure_experiment",
]

RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "user_name",
    "start_time",
    "end_time",
    "parent_run_id",
    "host_name",
    "source_name",
    "source_type",
    "git_commit",
)
_EXPERIMENT_TAG_COLUMNS = ("experiment_id", "key", "value")
_PAIR_COLUMNS = ("run_id", "key", "value")  # params and tags
METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp", "ledger_entry")
# The Python types guaranteed here (str, str, float, int, aware datetime, int or None),
# so PostgreSQL can take a binary COPY.
METRIC_TYPES = ("text", "text", "float8", "int8", "timestamptz", "int8")


@dataclass(frozen=True)
class RunStart:
    run_id: str
    experiment_id: int | None  # None: resolve (or create) ``experiment_name`` on delivery
    experiment_name: str | None
    run_name: str
    user_name: str
    start_time: datetime
    parent_run_id: str | None
    host_name: str | None
    source_name: str | None
    source_type: str | None
    git_commit: str | None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunEnd:
    run_id: str
    status: str
    end_time: datetime


@dataclass(frozen=True)
class Params:
    run_id: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Metrics:
    run_id: str
    rows: tuple[tuple[str, float, int, datetime], ...]  # key, value, step, timestamp


@dataclass(frozen=True)
class Tags:
    run_id: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WriteOnce:
    """Rows a run records once (pipeline stages, feature chains) with their params:
    the same rows again are a no-op, other rows are a conflict."""

    run_id: str
    table: str
    columns: tuple[str, ...]
    order_by: str
    rows: tuple[tuple[Any, ...], ...]
    params: tuple[tuple[str, str], ...]
    what: str


Record = RunStart | RunEnd | Params | Metrics | Tags | WriteOnce


@dataclass(frozen=True)
class Rejection:
    """A record the store refused, with the error its call would have raised."""

    record: Record
    error: SqltrackError


# -- encoding (one JSON-able list per record) ----------------------------------------
def _ts(value: datetime) -> int:
    return round(value.timestamp() * 1_000_000)


def _dt(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, timezone.utc)


def encode(record: Record) -> list[Any]:
    """A record as a JSON-able list (timestamps as epoch microseconds)."""
    if isinstance(record, Metrics):
        return ["m", record.run_id, [[k, v, s, _ts(t)] for k, v, s, t in record.rows]]
    if isinstance(record, Params):
        return ["p", record.run_id, [list(i) for i in record.items]]
    if isinstance(record, Tags):
        return ["t", record.run_id, [list(i) for i in record.items]]
    if isinstance(record, RunEnd):
        return ["e", record.run_id, record.status, _ts(record.end_time)]
    if isinstance(record, RunStart):
        r = record
        return [
            "s",
            r.run_id,
            r.experiment_id,
            r.experiment_name,
            r.run_name,
            r.user_name,
            _ts(r.start_time),
            r.parent_run_id,
            r.host_name,
            r.source_name,
            r.source_type,
            r.git_commit,
            [list(i) for i in r.tags],
        ]
    w = record
    return ["w", w.run_id, w.table, list(w.columns), w.order_by, [list(r) for r in w.rows],
            [list(i) for i in w.params], w.what]  # fmt: skip


def _pairs(items: Iterable[Sequence[Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in items)


def decode(data: Sequence[Any]) -> Record:
    """The inverse of :func:`encode`."""
    kind, run_id = data[0], data[1]
    if kind == "m":
        return Metrics(run_id, tuple((k, float(v), int(s), _dt(t)) for k, v, s, t in data[2]))
    if kind == "p":
        return Params(run_id, _pairs(data[2]))
    if kind == "t":
        return Tags(run_id, _pairs(data[2]))
    if kind == "e":
        return RunEnd(run_id, data[2], _dt(data[3]))
    if kind == "s":
        return RunStart(run_id, data[2], data[3], data[4], data[5], _dt(data[6]), data[7],
                        data[8], data[9], data[10], data[11], _pairs(data[12]))  # fmt: skip
    if kind == "w":
        return WriteOnce(run_id, data[2], tuple(data[3]), data[4],
                         tuple(tuple(r) for r in data[5]), _pairs(data[6]), data[7])  # fmt: skip
    raise ValueError(f"unknown record kind {kind!r}")


# -- applying ------------------------------------------------------------------------
def _statuses(s: Session, run_ids: Sequence[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    marks = join(", ", [Fragment("?")] * len(run_ids))
    rows = s.query(
        compose("SELECT run_id, status FROM sqltrack.runs WHERE run_id IN ({marks})", marks=marks),
        list(run_ids),
    )
    return {r[0]: r[1] for r in rows}


def _stored_params(s: Session, run_ids: Sequence[str]) -> dict[tuple[str, str], str]:
    if not run_ids:
        return {}
    marks = join(", ", [Fragment("?")] * len(run_ids))
    rows = s.query(
        compose(
            "SELECT run_id, key, value FROM sqltrack.params WHERE run_id IN ({marks})",
            marks=marks,
        ),
        list(run_ids),
    )
    return {(r[0], r[1]): r[2] for r in rows}


def ensure_experiment(
    s: Session, name: str, user: str, tags: Sequence[tuple[str, str]] = ()
) -> int:
    """The id of experiment ``name``, created when missing; ``tags`` are set on it
    (in key order, so concurrent writers cannot deadlock). Both go into the
    experiment's ledger chain."""
    created = s.execute(
        "INSERT INTO sqltrack.experiments (name, created_by) VALUES (?, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (name, user),
    )
    rows = s.query("SELECT experiment_id FROM sqltrack.experiments WHERE name = ?", (name,))
    experiment_id = int(rows[0][0])
    book = ledger.Book(s)
    if created == 1:
        book.stored("experiments", experiment_id, (experiment_id,), "insert")
    for key, value in sorted(dict(tags).items()):
        s.execute(
            "INSERT INTO sqltrack.experiment_tags (experiment_id, key, value) "
            "VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET "
            "value = excluded.value",
            (experiment_id, key, value),
        )
        book.values(
            "experiment_tags", _EXPERIMENT_TAG_COLUMNS, [(experiment_id, key, value)], "set"
        )
    book.close()
    return experiment_id


def param_conflict(run_id: str, key: str, old: str, new: str) -> ConflictError:
    return ConflictError(
        f"param {key!r} of run {run_id} is already {old!r}; cannot change it to {new!r}. "
        "Params are immutable: log it under another key"
    )


def already_ended(run_id: str, status: str) -> ConflictError:
    return ConflictError(
        f"run {run_id} has already ended ({status}); end_run ends a RUNNING run once"
    )


def not_running(run_id: str, status: str | None, uri: str, what: str = "records") -> SqltrackError:
    if status is None:
        return NotFoundError(f"run {run_id} does not exist in {uri}")
    return ConflictError(
        f"run {run_id} is {status}, not RUNNING; {what} are only added to running runs "
        "(start a new run)"
    )


def _write_once_state(
    s: Session, w: WriteOnce, pending: dict[tuple[str, str], WriteOnce]
) -> SqltrackError | bool:
    """A conflict, True when the rows must be inserted, False when they already are
    (stored, or ``pending`` earlier in the same batch)."""
    earlier = pending.get((w.table, w.run_id))
    if earlier is not None:
        existing = [tuple(r) for r in earlier.rows]
    else:
        select = compose(
            "SELECT {cols} FROM {table} WHERE run_id = ? ORDER BY {order}",
            cols=join(", ", (ident(c) for c in w.columns)),
            table=ident(*w.table.split(".")),
            order=Fragment(w.order_by),
        )
        existing = [tuple(r) for r in s.query(select, (w.run_id,))]
    if not existing:
        return True
    if not same_rows(existing, w.rows):
        return write_once_conflict(w)
    return False


def same_rows(a: Iterable[Sequence[Any]], b: Iterable[Sequence[Any]]) -> bool:
    return sorted(tuple(r) for r in a) == sorted(tuple(r) for r in b)


def write_once_conflict(w: WriteOnce) -> ConflictError:
    return ConflictError(
        f"run {w.run_id} already has {w.what} from another pipeline; they are "
        "immutable records: log this pipeline in another run"
    )


def _insert_params(
    s: Session, rows: Sequence[tuple[tuple[str, str], str]]
) -> list[tuple[str, str, str]]:
    """Insert new params in (run, key) order, in one statement of three array values
    (any number of rows, three bound values). A param another writer inserted meanwhile
    (after this transaction read the stored ones) is skipped when it holds the same value
    and a ConflictError naming both values when it does not, never the driver's
    duplicate-key error; the order keeps concurrent writers from deadlocking. Returns the
    rows this call inserted."""
    inserted = {
        (r[0], r[1])
        for r in s.query(
            "INSERT INTO sqltrack.params (run_id, key, value) "
            "SELECT unnest(CAST(? AS TEXT[])), unnest(CAST(? AS TEXT[])), "
            "unnest(CAST(? AS TEXT[])) "
            "ON CONFLICT (run_id, key) DO NOTHING RETURNING run_id, key",
            (
                [rid for (rid, _), _ in rows],
                [key for (_, key), _ in rows],
                [value for _, value in rows],
            ),
        )
    }
    written = [(rid, key, value) for (rid, key), value in rows if (rid, key) in inserted]
    for (rid, key), value in rows:
        if (rid, key) in inserted:
            continue
        stored = s.query(
            "SELECT value FROM sqltrack.params WHERE run_id = ? AND key = ?", (rid, key)
        )
        if stored and stored[0][0] != value:
            raise param_conflict(rid, key, str(stored[0][0]), value)
    return written


def apply(s: Session, records: Sequence[Record], uri: str) -> list[Rejection]:
    """Write ``records`` in order inside the caller's transaction.

    A record that the store refuses is left out and returned with its error; the
    others are written. Run starts go first and run ends last within the batch, but
    each record is checked against the run's state *at its place in the batch*, so the
    outcome is the same as applying the records one by one. Tags are written in
    (run, key) order, so concurrent writers on PostgreSQL cannot deadlock. Every row
    written is bound into its run's ledger chain in the same transaction.
    """
    book = ledger.Book(s, uri)
    run_ids = sorted({r.run_id for r in records})
    status = _statuses(s, run_ids)
    params_of = _stored_params(s, [r for r in run_ids if r in status])
    rejected: list[Rejection] = []
    starts: list[RunStart] = []
    ends: dict[str, RunEnd] = {}
    params: dict[tuple[str, str], str] = {}
    tags: dict[tuple[str, str], str] = {}
    metric_rows: list[tuple[Any, ...]] = []
    once: list[WriteOnce] = []

    def refuse(record: Record, error: SqltrackError) -> None:
        rejected.append(Rejection(record, error))

    for record in records:
        rid = record.run_id
        if isinstance(record, RunStart):
            if rid in status:
                if rid not in {x.run_id for x in starts}:
                    continue  # delivered before (a replayed journal): exactly once
                refuse(record, ConflictError(f"run {rid} already exists in {uri}"))
                continue
            if record.parent_run_id is not None and record.parent_run_id not in status:
                parent = _statuses(s, [record.parent_run_id])
                if not parent:
                    refuse(record, NotFoundError(
                        f"parent run {record.parent_run_id} does not exist in {uri}"))  # fmt: skip
                    continue
            starts.append(record)
            status[rid] = RunStatus.RUNNING
            for key, value in record.tags:
                tags[(rid, key)] = value
            continue
        if isinstance(record, Tags):
            if rid not in status:
                refuse(record, NotFoundError(f"run {rid} does not exist in {uri}"))
                continue
            for key, value in record.items:  # tags may be set on ended runs too
                tags[(rid, key)] = value
            continue
        if status.get(rid) != RunStatus.RUNNING:
            if isinstance(record, RunEnd) and rid in ends:
                continue  # the same run ended twice in one batch: the first end counts
            if isinstance(record, RunEnd) and rid in status:
                refuse(record, already_ended(rid, status[rid]))  # ended by another process
                continue
            refuse(record, not_running(rid, status.get(rid), uri))
            continue
        if isinstance(record, RunEnd):
            ends[rid] = record
            status[rid] = record.status
        elif isinstance(record, Params):
            known = {k: params_of.get((rid, k), params.get((rid, k))) for k, _ in record.items}
            clash = [(k, known[k], v) for k, v in record.items if known[k] not in (None, v)]
            if clash:
                key, old, new = clash[0]
                refuse(record, param_conflict(rid, key, str(old), new))
                continue
            for key, value in record.items:
                if (rid, key) not in params_of:
                    params[(rid, key)] = value
        elif isinstance(record, Metrics):
            metric_rows.extend(book.points(rid, record.rows))
        else:
            state = _write_once_state(s, record, {(w.table, w.run_id): w for w in once})
            if isinstance(state, SqltrackError):
                refuse(record, state)
                continue
            known = {k: params_of.get((rid, k), params.get((rid, k))) for k, _ in record.params}
            clash = [(k, known[k], v) for k, v in record.params if known[k] not in (None, v)]
            if clash:
                key, old, new = clash[0]
                refuse(record, param_conflict(rid, key, str(old), new))
                continue
            if state:
                once.append(record)
            for key, value in record.params:
                if (rid, key) not in params_of:
                    params[(rid, key)] = value

    for start in starts:
        experiment_id = start.experiment_id
        if experiment_id is None:
            assert start.experiment_name is not None
            experiment_id = ensure_experiment(s, start.experiment_name, start.user_name)
        row = (
            start.run_id,
            experiment_id,
            start.run_name,
            RunStatus.RUNNING,
            start.user_name,
            start.start_time,
            None,  # end_time
            start.parent_run_id,
            start.host_name,
            start.source_name,
            start.source_type,
            start.git_commit,
        )
        s.execute(
            compose(
                "INSERT INTO sqltrack.runs ({cols}) VALUES ({marks})",
                cols=join(", ", (ident(c) for c in RUN_COLUMNS)),
                marks=placeholders(len(RUN_COLUMNS)),
            ),
            row,
        )
        book.values("runs", RUN_COLUMNS, [row], "start")
    if params:
        param_rows = _insert_params(s, sorted(params.items()))
        book.values("params", _PAIR_COLUMNS, param_rows, "insert")
    for (rid, key), value in sorted(tags.items()):
        s.execute(
            "INSERT INTO sqltrack.tags (run_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            (rid, key, value),
        )
        book.values("tags", _PAIR_COLUMNS, [(rid, key, value)], "set")
    if metric_rows:
        s.insert_rows("sqltrack.metrics", METRIC_COLUMNS, metric_rows, METRIC_TYPES)
        book.metrics()
    for w in once:
        s.insert_rows(w.table, w.columns, w.rows)
        book.values(w.table, w.columns, w.rows, "insert")
    for end in ends.values():
        s.execute(
            "UPDATE sqltrack.runs SET status = ?, end_time = ? WHERE run_id = ? "
            "AND status = 'RUNNING'",
            (end.status, end.end_time, end.run_id),
        )
        book.stored("runs", end.run_id, (end.run_id,), "end")
    book.close()
    return rejected
