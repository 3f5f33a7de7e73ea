"""Appending to the chains: the entries one transaction writes, and their heads.

A :class:`Book` collects the entries of one transaction (a journal batch, an artifact,
a dataset's publication) and :meth:`Book.close` appends them to their chains in the same
transaction. Each chain has one row in ``sqltrack.ledger_heads``; appending moves it
with a compare-and-set ``UPDATE ... WHERE scope = ? AND seq = ? AND hash = ?``, which on
PostgreSQL also locks that one row until the transaction ends. Writers of different runs
never touch the same row, so they never wait for each other; two writers of one run
take turns on its head only. Chains are appended in scope order, so two transactions
that touch the same runs cannot deadlock.

Each process remembers the heads it wrote last (per store): when no other process
appended to the chain since, the compare-and-set is the only statement the head costs;
when one did, or a transaction rolled back, the set finds no row, the head is read
again and the entries re-linked. Row digests never depend on the head, only the links.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqltrack import config
from sqltrack.backends import Session
from sqltrack.errors import IntegrityError
from sqltrack.ledger import _encoding as enc
from sqltrack.ledger._tables import TableSpec, spec

__all__ = ["LEDGER_COLUMNS", "Book", "enabled", "new_entry_id", "record"]

LEDGER_COLUMNS = (
    "scope",
    "seq",
    "entry_id",
    "table_name",
    "operation",
    "row_key",
    "row_digest",
    "detail",
    "recorded_at",
    "prev_hash",
    "hash",
)
_LEDGER_TYPES = ("text", "int8", "int8", "text", "text", "text", "text", "text", "timestamptz",
                 "text", "text")  # fmt: skip
_INSERT_ONE = (
    "INSERT INTO sqltrack.ledger (scope, seq, entry_id, table_name, operation, row_key, "
    "row_digest, detail, recorded_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HEADS: dict[tuple[str, str], tuple[int, str]] = {}
_HEADS_LOCK = threading.Lock()
_HEADS_KEPT = 4096
_CAS_ATTEMPTS = 100


def enabled() -> bool:
    """``SQLTRACK_LEDGER`` (on by default). Off exists for the benchmark that measures
    the chain's cost: records written with it off are unknown to the ledger, and
    ``sqltrack verify`` reports them as written behind sqltrack's back."""
    return config.get("ledger").lower() not in ("off", "0", "false", "no")


@dataclass
class _Points:
    """A run's metric points in this transaction: ``ledger_entry`` = base + position."""

    base: int
    count: int = 0
    chunks: list[Sequence[tuple[str, float, int, datetime]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    entry_id: int
    table: str
    operation: str
    key: str
    digest: str
    detail: str


def new_entry_id() -> int:
    """A random entry id (below 2**62, so that id + position fits a BIGINT): unique within
    a chain in practice."""
    return random.getrandbits(61) + 1


class Book:
    """The ledger entries of one transaction. ``store`` (the store's URI) lets this
    process reuse the heads it wrote last; without it every head is read first."""

    def __init__(self, s: Session, store: str | None = None) -> None:
        self._s = s
        self._store = store
        self.enabled = enabled()
        self._entries: dict[str, list[_Entry]] = {}
        self._points: dict[str, _Points] = {}
        self._recorded_at = datetime.now(timezone.utc)

    # -- collecting -------------------------------------------------------------------
    def _add(self, scope: str, entry: _Entry) -> None:
        self._entries.setdefault(scope, []).append(entry)

    def _row(self, table_spec: TableSpec, row: Sequence[Any], operation: str) -> None:
        """``row`` holds the spec's columns, in order."""
        encoded = [enc.encode_value(v) for v in row]
        columns = list(zip(table_spec.columns, encoded, strict=True))
        scope = table_spec.scope_of(row[table_spec.columns.index(table_spec.scope_column)])
        key = enc.row_key(row[i] for i in table_spec.index(table_spec.key))
        detail = enc.dumps({"columns": [[n, enc.short(e)] for n, e in columns]})
        digest = enc.row_digest(table_spec.table, columns)
        self._add(scope, _Entry(new_entry_id(), table_spec.table, operation, key, digest, detail))

    def values(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], operation: str
    ) -> None:
        """Record rows written with these values (``columns`` name them; they must
        include every column the table's spec covers)."""
        if not self.enabled:
            return
        table_spec = spec(table)
        where = [list(columns).index(c) for c in table_spec.columns]
        for row in rows:
            self._row(table_spec, [row[i] for i in where], operation)

    def stored(self, table: str, scope_id: Any, key: Sequence[Any], operation: str) -> None:
        """Record a row as the store now holds it (read back inside the transaction, so
        server defaults such as ``created_at`` are covered)."""
        if not self.enabled:
            return
        table_spec = spec(table)
        rows = self._s.query(table_spec.select(by_scope=True, by_key=True), (scope_id, *key))
        if len(rows) != 1:
            raise IntegrityError(
                f"ledger: {len(rows)} row(s) of sqltrack.{table_spec.table} match "
                f"{table_spec.scope_column}={scope_id!r} and key {list(key)!r}; expected one"
            )
        self._row(table_spec, rows[0], operation)

    def points(
        self, run_id: str, rows: Sequence[tuple[str, float, int, datetime]]
    ) -> list[tuple[Any, ...]]:
        """The metric rows ``(key, value, step, timestamp)`` of one record as
        ``(run_id, key, value, step, timestamp, ledger_entry)`` to insert: numbered after
        the points this transaction already has for the run (None with the ledger off).
        :meth:`metrics` then records them."""
        if not self.enabled:
            return [(run_id, k, v, st, ts, None) for k, v, st, ts in rows]
        pending = self._points.get(run_id)
        if pending is None:
            pending = self._points[run_id] = _Points(new_entry_id())
        first = pending.base + pending.count
        pending.chunks.append(rows)
        pending.count += len(rows)
        return [(run_id, k, v, st, ts, first + i) for i, (k, v, st, ts) in enumerate(rows)]

    def metrics(self, operation: str = "append") -> None:
        """Record the points numbered by :meth:`points` so far: one entry per run, whose
        digest covers all of that run's points, in order."""
        for run_id, pending in self._points.items():
            keys: list[str] = []
            values: list[float] = []
            steps: list[int] = []
            stamps: list[int] = []
            for rows in pending.chunks:
                k, v, st, ts = zip(*rows, strict=True)
                keys += k
                values += v
                steps += st
                first = ts[0]  # log_metrics: one timestamp per call (== is cheap, hash is not)
                if all(t == first for t in ts):
                    stamps += [enc.micros(first)] * len(ts)
                else:
                    stamps += [enc.micros(t) for t in ts]
            digest, detail = enc.metrics_digest(keys, values, steps, stamps)
            self._add(
                run_id,
                _Entry(pending.base, "metrics", operation, enc.row_key([pending.base]), digest,
                       enc.dumps(detail)),
            )  # fmt: skip
        self._points = {}

    # -- appending --------------------------------------------------------------------
    def close(self) -> None:
        """Append every entry to its chain (inside the caller's transaction)."""
        if not self._entries:
            return
        rows: list[tuple[Any, ...]] = []
        for scope in sorted(self._entries):
            rows += self._append(scope, self._entries[scope])
        self._entries = {}
        if len(rows) == 1:
            self._s.execute(_INSERT_ONE, rows[0])
        else:
            self._s.insert_rows("sqltrack.ledger", LEDGER_COLUMNS, rows, _LEDGER_TYPES)

    def _head(self, scope: str) -> tuple[int, str] | None:
        rows = self._s.query(
            "SELECT seq, hash FROM sqltrack.ledger_heads WHERE scope = ?", (scope,)
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def _append(self, scope: str, entries: list[_Entry]) -> list[tuple[Any, ...]]:
        cache_key = (self._store, scope) if self._store else None
        head = _HEADS.get(cache_key) if cache_key else None
        if head is None:
            head = self._head(scope)
        recorded = enc.micros(self._recorded_at)
        for _ in range(_CAS_ATTEMPTS):
            first, prev = head if head is not None else (0, enc.genesis(scope))
            rows = []
            link = prev
            for n, e in enumerate(entries, 1):
                h = enc.entry_hash(link, scope, first + n, e.entry_id, e.table, e.operation,
                                   e.key, e.digest, e.detail, recorded)  # fmt: skip
                rows.append((scope, first + n, e.entry_id, e.table, e.operation, e.key,
                             e.digest, e.detail, self._recorded_at, link, h))  # fmt: skip
                link = h
            last = first + len(entries)
            if head is None:
                moved = self._s.execute(
                    "INSERT INTO sqltrack.ledger_heads (scope, seq, hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope) DO NOTHING",
                    (scope, last, link),
                )
            else:
                moved = self._s.execute(
                    "UPDATE sqltrack.ledger_heads SET seq = ?, hash = ? "
                    "WHERE scope = ? AND seq = ? AND hash = ?",
                    (last, link, scope, first, prev),
                )
            if moved == 1:
                if cache_key:
                    with _HEADS_LOCK:
                        if len(_HEADS) >= _HEADS_KEPT:
                            _HEADS.clear()
                        _HEADS[cache_key] = (last, link)
                return rows
            head = self._head(scope)  # another writer (or a rolled-back one) moved it
        raise IntegrityError(
            f"ledger: could not append to the chain of {scope} after {_CAS_ATTEMPTS} attempts; "
            "its head in sqltrack.ledger_heads keeps changing"
        )


def record(s: Session, table: str, scope_id: Any, key: Sequence[Any], operation: str) -> None:
    """Record one row as the store now holds it, in the caller's transaction (artifacts,
    datasets, models, experiments; and the hook for registry or deployment events)."""
    book = Book(s)
    book.stored(table, scope_id, key, operation)
    book.close()
