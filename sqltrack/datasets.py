"""Datasets: a run's training DataFrame stored as an ordinary SQL table.

A dataset is an immutable snapshot: ``sqltrack.datasets`` holds one catalog row
per (run, name) and the rows themselves live in ``sqltrack_data.ds_<run_id>_<name>``,
a plain table with readable column types that psql, the duckdb CLI or Spark's JDBC
reader can query. The bytes move through the Spark data source of the
``spark_datasource`` package (``format("sqltrack")``); this module holds what both
the tracker and that data source need and imports no Spark at module level:
naming and validation of dataset names, the write description handed to Spark's
processes (:class:`WriteSpec`), the catalog rows, verification and the read plan
and the read plan with its checks (exact loads). Staging areas, their writers, the
janitor and the retried write are :mod:`sqltrack.staging`; the Arrow conformance of
batches is :mod:`sqltrack._arrow`.

The engine-specific halves (how executors stage rows, how ``commit()`` publishes
them, how a fingerprint is computed) live in ``sqltrack.backends.<name>_datasets``
and are found through :func:`engine`.

The tracker registers the data source through the entry point group
``sqltrack.spark_datasource`` (declared in pyproject.toml), so this package never
imports ``spark_datasource``: the dependency points one way only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqltrack import _context, config, ledger, runs
from sqltrack.backends import Backend, Session, open_backend
from sqltrack.entities import Dataset
from sqltrack.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from sqltrack.sqltext import Fragment, compose, ident

if TYPE_CHECKING:
    import pyarrow as pa

    from sqltrack.tracking import Tracker

__all__ = [
    "DATA_SCHEMA",
    "ENTRY_POINT_GROUP",
    "FINGERPRINT_VERSION",
    "FORMAT",
    "ORDINAL_COLUMN",
    "STAGING_MAX_AGE",
    "Slice",
    "WriteSpec",
    "counted",
    "engine",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "log_dataset",
    "table_name",
    "validate_name",
]

FORMAT = "sqltrack"
ENTRY_POINT_GROUP = "sqltrack.spark_datasource"
DATA_SCHEMA = "sqltrack_data"
STAGING_PREFIX = "_stg_"
# Kept-order datasets carry this extra BIGINT column: partition << 40 | row index.
ORDINAL_COLUMN = "_sqltrack_ordinal"
ORDINAL_SHIFT = 40
# The fingerprint algorithm of new datasets (``sqltrack.datasets.fingerprint_version``):
# 1 (before migration 0008) hashed the multiset of rows and could not tell -0.0 from 0.0;
# 2 also hashes the sign of every float and, for kept-order datasets, each row's rank.
FINGERPRINT_VERSION = 2
# Staging without a writer row (made before migration 0009) older than this is taken as
# orphaned by the janitor (sqltrack.staging.gc); staging with one goes when its writer does.
STAGING_MAX_AGE = 24 * 3600.0
MAX_NAME_LENGTH = 128
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_STAGING_RE = re.compile(r"^_stg_(\d{10})_([0-9a-f]{16})$")
_COLUMNS = Fragment(
    "dataset_id, run_id, name, table_name, row_count, size_bytes, "
    "CAST(spark_schema AS TEXT), fingerprint, created_at, created_by, ordered, "
    "fingerprint_version"
)
MODES = ("append", "overwrite")


# -- names ------------------------------------------------------------------------
def validate_name(name: object) -> str:
    """A dataset name: letters, digits, ``_ - .``, starting with a letter or digit,
    at most 128 characters. Anything else is refused, never quoted into SQL."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"dataset name {name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"dataset name {name[:40]!r}... has {len(name)} characters; the limit is "
            f"{MAX_NAME_LENGTH}"
        )
    if not _NAME_RE.fullmatch(name):  # fullmatch: "$" also matches before a final "\n"
        raise InvalidInputError(
            f"dataset name {name!r} may hold only ASCII letters, digits and '_-.', "
            "starting with a letter or digit (e.g. 'training', 'test-2024')"
        )
    return name


def table_name(run_id: str, name: str, max_length: int) -> str:
    """The data table (without schema) of a run's dataset: ``ds_<run_id>_<name>``.

    Names that are not already lower-case plain identifiers, or that would not fit
    the engine's identifier limit, get a slug plus 8 hex digits of their sha256, so
    two names never share a table.
    """
    slug = re.sub(r"[^a-z0-9_]", "_", name.lower())
    base = f"ds_{run_id}_{slug}"
    if slug == name and len(base) <= max_length:
        return base
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = max_length - len(f"ds_{run_id}__{digest}")
    return f"ds_{run_id}_{slug[: max(room, 0)]}_{digest}"


def qualified(table: str) -> str:
    return f"{DATA_SCHEMA}.{table}"


def staging_name(started: float, write_id: str) -> str:
    return f"{STAGING_PREFIX}{int(started):010d}_{write_id}"


def new_staging() -> str:
    """A fresh staging name: the time it was made and 16 random hex digits."""
    return staging_name(time.time(), uuid.uuid4().hex[:16])


def staging_age(name: str, now: float | None = None) -> float | None:
    """Seconds since a staging area named by :func:`staging_name` was made, else None."""
    m = _STAGING_RE.fullmatch(name)
    if not m:
        return None
    return (time.time() if now is None else now) - int(m.group(1))


# -- the write description shipped to Spark's processes ---------------------------
@dataclass(frozen=True)
class WriteSpec:
    """Everything executors and the commit process need; picklable, no connections."""

    uri: str
    run_id: str
    name: str
    table: str  # unqualified data table name in sqltrack_data
    staging: str  # staging table (PostgreSQL) or folder name (DuckDB)
    overwrite: bool
    ordered: bool
    spark_schema: str  # StructType JSON, field metadata included
    columns: tuple[str, ...]  # the DataFrame's column names, in order
    created_by: str
    write_id: str
    started: float
    arrow_schema: bytes  # the Arrow schema of the batches (IPC-serialised)
    writer: str  # the process that owns the write: host/pid/start (sqltrack.staging.Writer)
    retry: float  # seconds a step waits for a store that is away (SQLTRACK_BULK_RETRY)

    @property
    def arrow(self) -> pa.Schema:
        import pyarrow as pa

        return pa.ipc.read_schema(pa.py_buffer(self.arrow_schema))

    @staticmethod
    def new(
        uri: str,
        run_id: str,
        name: str,
        *,
        overwrite: bool,
        ordered: bool,
        spark_schema: str,
        arrow_schema: pa.Schema,
        created_by: str | None = None,
        staging: str | None = None,
        writer: str = "",
        retry: float | None = None,
    ) -> WriteSpec:
        backend = open_backend(uri)
        try:
            limit = backend.capabilities.max_identifier_length
        finally:
            backend.close()
        fields = json.loads(spark_schema)["fields"]
        columns = tuple(f["name"] for f in fields)
        check_columns(columns, limit)
        if staging is None:
            staging = new_staging()
        m = _STAGING_RE.match(staging)
        if not m:
            raise InvalidInputError(
                f"option staging={staging!r} is not a staging name (_stg_<10 digits>_<16 hex>); "
                "leave it out and the data source makes one"
            )
        started = float(m.group(1))
        write_id = m.group(2)
        return WriteSpec(
            uri=uri,
            run_id=run_id,
            name=validate_name(name),
            table=table_name(run_id, name, limit),
            staging=staging,
            overwrite=overwrite,
            ordered=ordered,
            spark_schema=spark_schema,
            columns=columns,
            created_by=created_by or _context.user_name(),
            write_id=write_id,
            started=started,
            arrow_schema=arrow_schema.serialize().to_pybytes(),
            writer=writer,
            retry=float(config.get("bulk_retry")) if retry is None else retry,
        )


def check_columns(columns: Sequence[str], max_length: int) -> None:
    seen: dict[str, str] = {}
    for c in columns:
        if not c or "\x00" in c:
            raise InvalidInputError(f"column name {c!r} cannot be stored; rename the column")
        if len(c.encode()) > max_length:
            raise InvalidInputError(
                f"column name {c[:40]!r}... is {len(c.encode())} bytes; this store keeps "
                f"at most {max_length}. Rename it with withColumnRenamed()"
            )
        if c == ORDINAL_COLUMN:
            raise InvalidInputError(f"column name {c!r} is reserved by sqltrack; rename it")
        key = c.lower()
        if key in seen:
            raise InvalidInputError(
                f"columns {seen[key]!r} and {c!r} differ only in case (or are duplicates); "
                "SQL tables need distinct names. Rename one of them"
            )
        seen[key] = c


# -- the engine halves ----------------------------------------------------------------
class Engine(Protocol):
    """What ``sqltrack.backends.<name>_datasets`` provides."""

    def prepare(self, backend: Backend, spec: WriteSpec) -> None:
        """Driver side, before any task: create the staging area."""

    def stage(
        self, spec: WriteSpec, batches: Iterator[pa.RecordBatch], partition: int, attempt: int
    ) -> dict[str, Any]:
        """Executor side: stage one task attempt's rows; return the commit message."""

    def publish(self, backend: Backend, spec: WriteSpec, messages: list[dict[str, Any]]) -> None:
        """Commit side: publish exactly the attempts named in ``messages``, atomically."""

    def fingerprint(
        self, s: Session, table: str, columns: Sequence[str], *, ordered: bool, version: int
    ) -> tuple[str, int]:
        """Content hash of a data table's user columns with algorithm ``version`` (see
        :data:`FINGERPRINT_VERSION`), and the table's row count."""

    def read_plan(self, backend: Backend, dataset: Dataset, partitions: int) -> list[Slice]:
        """Disjoint slices of an unordered table that together cover every possible row
        (the first and last are open-ended), each with the rows it holds now (kept-order
        tables are planned by :func:`read_plan`)."""

    def read(
        self, uri: str, dataset: Dataset, part: Slice, target: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        """Executor side: one slice as record batches of exactly ``target``."""

    def staging_areas(self, backend: Backend) -> list[str]:
        """Names of every staging area present."""

    def staging_bytes(self, backend: Backend, staging: str) -> int:
        """Bytes a staging area takes (0 when it is gone)."""

    def drop_staging(self, backend: Backend, staging: str) -> None:
        """Remove a staging area if present (TransientBackendError while it is locked)."""


def engine(backend: Backend) -> Engine:
    module = importlib.import_module(f"sqltrack.backends.{backend.capabilities.name}_datasets")
    return module.ENGINE  # type: ignore[no-any-return]


class Slice(NamedTuple):
    """One read task: rows whose ``kind`` key (``rowid``, ``ctid`` page or ``ordinal``)
    is in ``[lo, hi)`` (``None``: unbounded), of which the plan counted ``rows``."""

    kind: str
    lo: int | None
    hi: int | None
    rows: int


def read_plan(backend: Backend, dataset: Dataset, partitions: int) -> list[Slice]:
    """The read slices of a dataset: one per original partition for a kept-order one
    (read in order), else the engine's. Together they cover every row the table could
    hold, and the rows they count must be the catalog's ``row_count`` (IntegrityError)."""
    if dataset.ordered:
        plan = _ordinal_plan(backend, dataset)
    else:
        plan = engine(backend).read_plan(backend, dataset, partitions)
    planned = sum(p.rows for p in plan)
    if planned != dataset.row_count:
        raise IntegrityError(
            f"{_describe(dataset)} holds {planned} rows but its catalog row says "
            f"{dataset.row_count}: rows were added or removed, or the catalog was edited, "
            "after logging. Log the dataset again from its source"
        )
    return plan


def _ordinal_plan(backend: Backend, dataset: Dataset) -> list[Slice]:
    schema, table = dataset.table_name.split(".", 1)
    with backend.session(read_only=True) as s:
        parts = s.query(
            compose(
                "SELECT {ord} >> ?, count(*) FROM {t} GROUP BY 1 ORDER BY 1",
                ord=ident(ORDINAL_COLUMN),
                t=ident(schema, table),
            ),
            (ORDINAL_SHIFT,),
        )
    if not parts:
        return [Slice("ordinal", None, None, 0)]
    plan = []
    for i, (p, n) in enumerate(parts):
        lo = None if i == 0 else int(p) << ORDINAL_SHIFT
        hi = None if i == len(parts) - 1 else int(parts[i + 1][0]) << ORDINAL_SHIFT
        plan.append(Slice("ordinal", lo, hi, int(n)))
    return plan


def counted(dataset: Dataset, part: Slice, batches: Iterable[pa.RecordBatch]) -> Iterator[Any]:
    """``batches`` as they come, then IntegrityError unless they held exactly the rows
    the plan counted for ``part``: every load reads the whole table, never part of it."""
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        yield batch
    if rows != part.rows:
        raise IntegrityError(
            f"reading {_describe(dataset)} gave {rows} rows for the slice {part.kind} "
            f"[{part.lo}, {part.hi}) where the plan counted {part.rows}: the table changed "
            "while it was read. Load it again; if it keeps changing, something else writes "
            "to the table"
        )


def drop_table(s: Session, table: str) -> None:
    """Drop a data table of ``sqltrack_data`` (inside the caller's transaction)."""
    s.execute(compose("DROP TABLE IF EXISTS {t}", t=ident(DATA_SCHEMA, table)))


# -- catalog ---------------------------------------------------------------------------
def _dataset(row: Sequence[Any]) -> Dataset:
    return Dataset(
        dataset_id=int(row[0]),
        run_id=row[1],
        name=row[2],
        table_name=row[3],
        row_count=int(row[4]),
        size_bytes=int(row[5]),
        spark_schema=row[6],
        fingerprint=row[7],
        created_at=row[8],
        created_by=row[9],
        ordered=bool(row[10]),
        fingerprint_version=1 if row[11] is None else int(row[11]),
    )


def get_dataset(
    backend: Backend,
    run_id: str | None = None,
    name: str | None = None,
    dataset_id: int | None = None,
) -> Dataset:
    """One dataset by (run_id, name) or by id; NotFoundError names what was asked."""
    with backend.session(read_only=True) as s:
        if dataset_id is not None:
            rows = s.query(
                compose("SELECT {c} FROM sqltrack.datasets WHERE dataset_id = ?", c=_COLUMNS),
                (int(dataset_id),),
            )
            what = f"dataset id {dataset_id}"
        else:
            rows = s.query(
                compose(
                    "SELECT {c} FROM sqltrack.datasets WHERE run_id = ? AND name = ?", c=_COLUMNS
                ),
                (run_id, name),
            )
            what = f"dataset {name!r} of run {run_id}"
    if not rows:
        raise NotFoundError(f"{what} does not exist in {backend.uri}; see `sqltrack datasets`")
    return _dataset(rows[0])


def list_datasets(tracker: Tracker, run_id: str | None) -> list[Dataset]:
    with tracker.backend.session(read_only=True) as s:
        if run_id is None:
            rows = s.query(
                compose("SELECT {c} FROM sqltrack.datasets ORDER BY dataset_id", c=_COLUMNS)
            )
        else:
            rows = s.query(
                compose(
                    "SELECT {c} FROM sqltrack.datasets WHERE run_id = ? ORDER BY dataset_id",
                    c=_COLUMNS,
                ),
                (run_id,),
            )
    return [_dataset(r) for r in rows]


def check_writable(s: Session, uri: str, run_id: str, name: str, overwrite: bool) -> int | None:
    """Raise unless the run is RUNNING and (for append) the name is free.
    Return the dataset_id being replaced on overwrite, else None."""
    runs.require_running(s, run_id, uri, "datasets")
    found = s.query(
        "SELECT dataset_id FROM sqltrack.datasets WHERE run_id = ? AND name = ?", (run_id, name)
    )
    if found and not overwrite:
        raise ConflictError(
            f"run {run_id} already has a dataset named {name!r}; a dataset is an immutable "
            "snapshot: log it under another name, or replace it with mode='overwrite'"
        )
    if found:
        models = s.query(
            "SELECT name FROM sqltrack.models WHERE dataset_id = ? ORDER BY name", (found[0][0],)
        )
        if models:
            raise ConflictError(
                f"dataset {name!r} of run {run_id} trained the stored model(s) "
                f"{', '.join(repr(m[0]) for m in models)}; replacing it would re-point them at "
                "data they were not trained on. Log the new data under another name"
            )
    return int(found[0][0]) if found else None


def record(
    s: Session,
    spec: WriteSpec,
    replaced: int | None,
    row_count: int,
    size_bytes: int,
    fingerprint: str,
) -> None:
    """Insert (or, on overwrite, update in place) the catalog row; inside publish's
    transaction, so the table and its row appear together."""
    values = (
        qualified(spec.table),
        row_count,
        size_bytes,
        spec.spark_schema,
        fingerprint,
        FINGERPRINT_VERSION,
        spec.ordered,
        spec.created_by,
    )
    if replaced is None:
        s.execute(
            "INSERT INTO sqltrack.datasets (table_name, row_count, size_bytes, spark_schema, "
            "fingerprint, fingerprint_version, ordered, created_by, run_id, name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, spec.run_id, spec.name),
        )
    else:
        s.execute(
            "UPDATE sqltrack.datasets SET table_name = ?, row_count = ?, size_bytes = ?, "
            "spark_schema = ?, fingerprint = ?, fingerprint_version = ?, ordered = ?, "
            "created_by = ?, created_at = current_timestamp WHERE dataset_id = ?",
            (*values, replaced),
        )
    ledger.record(
        s, "datasets", spec.run_id, (spec.name,), "insert" if replaced is None else "overwrite"
    )


def with_ordinal(batch: pa.RecordBatch, partition: int, start: int) -> pa.RecordBatch:
    """Append the kept-order column: partition << 40 | index of the row in its partition."""
    import numpy as np
    import pyarrow as pa

    base = (partition << ORDINAL_SHIFT) + start
    ordinal = pa.array(np.arange(base, base + batch.num_rows, dtype=np.int64))
    return batch.append_column(pa.field(ORDINAL_COLUMN, pa.int64(), nullable=False), ordinal)


def user_columns(spec_or_schema: WriteSpec | str) -> list[str]:
    text = spec_or_schema.spark_schema if isinstance(spec_or_schema, WriteSpec) else spec_or_schema
    return [f["name"] for f in json.loads(text)["fields"]]


def _describe(dataset: Dataset) -> str:
    return (
        f"dataset {dataset.name!r} of run {dataset.run_id} (id {dataset.dataset_id}, table "
        f"{dataset.table_name})"
    )


def verify(backend: Backend, dataset: Dataset) -> None:
    """Recompute the fingerprint of the stored table with the algorithm it was recorded
    with, and count its rows; IntegrityError when either differs from the catalog."""
    eng = engine(backend)
    with backend.session(read_only=True) as s:
        actual, rows = eng.fingerprint(
            s,
            dataset.table_name.split(".", 1)[1],
            user_columns(dataset.spark_schema),
            ordered=dataset.ordered,
            version=dataset.fingerprint_version,
        )
    if rows != dataset.row_count:
        raise IntegrityError(
            f"{_describe(dataset)} holds {rows} rows but its catalog row says "
            f"{dataset.row_count}: rows were added or removed, or the catalog was edited, "
            "after logging. Log the dataset again from its source"
        )
    if actual != dataset.fingerprint:
        order = " or their order" if dataset.ordered else ""
        raise IntegrityError(
            f"{_describe(dataset)} does not match its fingerprint: recorded "
            f"{dataset.fingerprint}, found {actual}. The stored rows{order} were changed "
            "after logging"
        )


# -- the tracker's side --------------------------------------------------------------------------
_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()


def ensure_registered(spark: Any) -> None:
    """Register ``format("sqltrack")`` with this SparkSession once, through the entry
    point that the ``spark_datasource`` package declares."""
    try:
        if spark in _REGISTERED:
            return
    except TypeError:
        pass
    from importlib.metadata import entry_points

    found = list(entry_points(group=ENTRY_POINT_GROUP))
    if not found:
        raise InvalidInputError(
            f"no Spark data source is installed for sqltrack (entry point group "
            f"{ENTRY_POINT_GROUP!r}); reinstall sqltrack (pip install sqltrack)"
        )
    from sqltrack._workers import datasource_interpreter

    with datasource_interpreter(spark):  # workers that can import it, or one clear error
        for ep in found:
            ep.load()(spark)
    try:
        _REGISTERED.add(spark)
    except TypeError:
        pass


def _check_mode(mode: str) -> bool:
    if mode not in MODES:
        raise InvalidInputError(
            f"mode {mode!r} is not supported for datasets; use 'append' (create the dataset; "
            "an error if the run already has one of this name) or 'overwrite' (replace it)"
        )
    return mode == "overwrite"


def log_dataset(
    tracker: Tracker,
    df: Any,
    name: str,
    run_id: str,
    *,
    mode: str = "append",
    keep_order: bool = False,
) -> Dataset:
    """Write ``df`` through ``format("sqltrack")`` and return its catalog row.

    This process is the write's recorded owner and keeps its heartbeat while Spark runs.
    A write that fails on an unreachable or busy store (TransientBackendError) is run
    again once the store is back (each wait bounded by ``SQLTRACK_BULK_RETRY``); each
    failed attempt's staging is removed (or, while the store is away, at the next write)."""
    from sqltrack import staging

    name = validate_name(name)
    overwrite = _check_mode(mode)
    backend = tracker.backend
    budget = float(config.get("bulk_retry"))

    def check() -> None:
        with backend.session(read_only=True) as s:
            check_writable(s, backend.uri, run_id, name, overwrite)

    staging.retrying(f"checking run {run_id}", check, budget)
    check_columns(df.columns, backend.capabilities.max_identifier_length)
    spark = df.sparkSession
    ensure_registered(spark)
    uri = backend.full_uri()

    def save(area: str, owner: str) -> None:
        backend.release()  # DuckDB: Spark's processes need the file
        writer = (
            df.write.format(FORMAT)
            .option("uri", uri)
            .option("run_id", run_id)
            .option("name", name)
            .option("keep_order", str(bool(keep_order)).lower())
            .option("created_by", _context.user_name())
            .option("staging", area)
            .option("writer", owner)
            .option("retry", repr(budget))
            .mode(mode)
        )
        with _sqltrack_errors():
            writer.save()

    staging.write(backend, f"logging dataset {name!r} of run {run_id}", save, budget)
    return staging.retrying(
        f"reading dataset {name!r}", lambda: get_dataset(backend, run_id, name), budget
    )


def load_dataset(tracker: Tracker, spark: Any, run_id: str, name: str) -> Any:
    """The dataset as a DataFrame equal to the one logged; the fingerprint is checked
    first (IntegrityError naming the dataset on a mismatch)."""
    backend = tracker.backend
    dataset = get_dataset(backend, run_id, validate_name(name))
    verify(backend, dataset)
    ensure_registered(spark)
    backend.release()
    reader = (
        spark.read.format(FORMAT)
        .option("uri", backend.full_uri())
        .option("dataset_id", str(dataset.dataset_id))
        .option("verify", "false")  # just verified above
    )
    with _sqltrack_errors():
        return reader.load()


_SPARK_WRAPPED = re.compile(r"sqltrack\.(\w+Error): ([^\n]+)")


@contextmanager
def _sqltrack_errors() -> Iterator[None]:
    """Spark wraps an error raised in its Python processes in its own exception; give the
    caller the sqltrack error (same class and message), chained to Spark's."""
    from sqltrack import errors

    try:
        yield
    except errors.SqltrackError:
        raise
    except Exception as exc:
        found = _SPARK_WRAPPED.search(str(exc))
        cls = getattr(errors, found.group(1), None) if found else None
        if found and isinstance(cls, type) and issubclass(cls, errors.SqltrackError):
            raise cls(found.group(2)) from exc
        raise


def parse_bool(value: object, what: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise InvalidInputError(f"option {what}={value!r} must be true or false")
