"""Run state checks shared by every writer (params, metrics, artifacts, datasets, models)."""

from __future__ import annotations

from sqltrack.backends import Session
from sqltrack.entities import RunStatus
from sqltrack.errors import ConflictError, NotFoundError

__all__ = ["require_running"]


def require_running(s: Session, run_id: str, uri: str, what: str = "records") -> None:
    """Raise NotFoundError for an unknown run, ConflictError for one that has ended."""
    rows = s.query("SELECT status FROM sqltrack.runs WHERE run_id = ?", (run_id,))
    if not rows:
        raise NotFoundError(f"run {run_id} does not exist in {uri}")
    if rows[0][0] != RunStatus.RUNNING:
        raise ConflictError(
            f"run {run_id} is {rows[0][0]}, not RUNNING; {what} are only added to running "
            "runs (start a new run)"
        )
