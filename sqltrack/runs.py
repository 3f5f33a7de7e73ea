"""Run state checks shared by every writer (params, metrics, artifacts, datasets, models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqltrack.backends import Session
from sqltrack.entities import RunStatus
from sqltrack.errors import ConflictError, NotFoundError

__all__ = ["StaleRun", "end_stale", "require_running", "stale_runs"]


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


@dataclass(frozen=True)
class StaleRun:
    """A RUNNING run whose process stopped renewing its lease (``run_liveness`` CRASHED)."""

    run_id: str
    host_name: str
    process_id: int
    heartbeat_at: datetime
    expires_at: datetime


def stale_runs(s: Session) -> list[StaleRun]:
    """Runs shown as CRASHED, except those whose process still lives on this host (a
    lease can lapse while the store is unreachable; the process renews it when back)."""
    from sqltrack.journal import process_alive

    rows = s.query(
        "SELECT l.run_id, l.host_name, l.process_id, l.heartbeat_at, l.expires_at, "
        "k.process_start FROM sqltrack.run_liveness l JOIN sqltrack.run_leases k "
        "ON k.run_id = l.run_id WHERE l.state = 'CRASHED' ORDER BY l.heartbeat_at, l.run_id"
    )
    return [
        StaleRun(r[0], r[1], int(r[2]), r[3], r[4])
        for r in rows
        if process_alive(r[1], int(r[2]), r[5]) is not True
    ]


def end_stale(s: Session, uri: str, *, dry_run: bool = False) -> list[StaleRun]:
    """End every stale run as FAILED at its last heartbeat, tagged with why; return them."""
    from sqltrack import records

    found = stale_runs(s)
    if dry_run or not found:
        return found
    batch: list[records.Record] = []
    for run in found:
        reason = (
            f"lease expired at {run.expires_at.isoformat()}: process {run.process_id} on "
            f"{run.host_name} stopped renewing it (last heartbeat {run.heartbeat_at.isoformat()})"
        )
        batch.append(records.Tags(run.run_id, (("sqltrack.end_reason", reason),)))
        batch.append(records.RunEnd(run.run_id, RunStatus.FAILED, run.heartbeat_at))
    records.apply(s, batch, uri)
    return found
