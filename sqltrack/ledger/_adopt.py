"""Adoption: bind the records of a store made before the ledger existed into the chains.

A store upgraded to migration 0006 (``sqltrack db upgrade``) holds runs and experiments
that no chain vouches for, and ``verify`` lists each of their rows as written behind
sqltrack's back. :func:`adopt` gives, in one transaction, each run and experiment that has
no chain yet a chain of ``adopt`` entries for its rows as they are (the run's row first,
as ``adopt-ended`` when the run had ended; metric points in one entry per run, numbered
in ``ledger_entry``), so that from then on any change to them is detected. Rows added to
a run or experiment that already has a chain are never adopted: they stay reported. It
vouches for the rows as they are at that moment; the entries say ``adopt`` and when, and
``verify`` counts them, so an auditor can tell adopted history from recorded history.
"""

from __future__ import annotations

from sqltrack.backends import Backend
from sqltrack.ledger._book import Book
from sqltrack.ledger._tables import TABLES

__all__ = ["adopt"]

_METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp", "ledger_entry")


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
            "SELECT DISTINCT run_id FROM sqltrack.metrics WHERE ledger_entry IS NULL "
            "ORDER BY run_id"
        )
        for (run_id,) in orphans:
            if run_id in chained:
                continue
            points = s.query(
                'SELECT key, value, step, "timestamp" FROM sqltrack.metrics WHERE run_id = ? '
                'AND ledger_entry IS NULL ORDER BY key, step, "timestamp", value',
                (run_id,),
            )
            # number the points: write them again, in one order, with their ledger_entry
            s.execute(
                "DELETE FROM sqltrack.metrics WHERE run_id = ? AND ledger_entry IS NULL",
                (run_id,),
            )
            s.insert_rows("sqltrack.metrics", _METRIC_COLUMNS, book.points(run_id, points))
            adopted += 1
        book.metrics("adopt")
        book.close()
    return adopted
