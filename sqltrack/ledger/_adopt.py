"""Adoption: bind the records of a store made before the ledger existed into the chains.

A store upgraded to migration 0006 (``sqltrack db upgrade``) holds runs and experiments
that no chain vouches for, and ``verify`` lists each of their rows as written behind
sqltrack's back. :func:`adopt` gives, in one transaction, each run and experiment that has
no chain yet a chain of ``adopt`` entries for its rows as they are (the run's row first,
as ``adopt-ended`` when the run had ended; metric points grouped per run, their
``ledger_entry`` set), so that from then on any change to them is detected. Rows added to
a run or experiment that already has a chain are never adopted: they stay reported. It
vouches for the rows as they are at that moment; the entries say ``adopt`` and when, and
``verify`` counts them, so an auditor can tell adopted history from recorded history.
"""

from __future__ import annotations

from typing import Any

from sqltrack.backends import Backend
from sqltrack.ledger._book import Book, new_entry_id
from sqltrack.ledger._tables import TABLES

__all__ = ["adopt"]


def adopt(backend: Backend) -> int:
    """Give every run and experiment without a chain one of ``adopt`` entries; return
    the number of entries appended."""
    with backend.transaction() as s:
        chained = {str(r[0]) for r in s.query("SELECT scope FROM sqltrack.ledger_heads")}
        book = Book(s)
        adopted = 0
        for table_spec in TABLES.values():  # runs first: a run's chain starts with its row
            scope_at = table_spec.columns.index(table_spec.scope_column)
            status_at = table_spec.columns.index("status") if table_spec.table == "runs" else -1
            for row in s.query(table_spec.select()):
                if table_spec.scope_of(row[scope_at]) in chained:
                    continue
                operation = "adopt"
                if table_spec.table == "runs" and row[status_at] != "RUNNING":
                    operation = "adopt-ended"  # later records of the run: a reopened run
                book.values(table_spec.table, table_spec.columns, [row], operation)
                adopted += 1
        orphans = s.query(
            "SELECT run_id, count(*) FROM sqltrack.metrics WHERE ledger_entry IS NULL "
            "GROUP BY run_id ORDER BY run_id"
        )
        for run_id, _ in orphans:
            if run_id in chained:
                continue
            entry = new_entry_id()
            s.execute(
                "UPDATE sqltrack.metrics SET ledger_entry = ? WHERE run_id = ? "
                "AND ledger_entry IS NULL",
                (entry, run_id),
            )
            points: list[tuple[Any, ...]] = [
                (run_id, *r, entry)
                for r in s.query(
                    'SELECT key, value, step, "timestamp" FROM sqltrack.metrics '
                    "WHERE run_id = ? AND ledger_entry = ?",
                    (run_id, entry),
                )
            ]
            book.metrics(points, operation="adopt")
            adopted += 1
        book.close()
    return adopted
