"""Commands over datasets: list them, and the staging janitor."""

from __future__ import annotations

import argparse

from sqltrack.cli import command, emit


@command(
    "datasets",
    "List logged datasets (all, or one run's): table, rows, size, fingerprint.",
    "sqltrack datasets 0123456789abcdef0123456789abcdef --format json",
)
def _datasets(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", nargs="?", help="only this run's datasets")


@_datasets.runner
def _run_datasets(args: argparse.Namespace) -> None:
    from sqltrack.tracking import connect

    with connect(args.uri, read_only=True) as tracker:
        found = tracker.list_datasets(args.run_id)
    emit(
        [
            "dataset_id",
            "run_id",
            "name",
            "table_name",
            "row_count",
            "size_bytes",
            "fingerprint",
            "created_at",
            "created_by",
        ],
        [
            (
                d.dataset_id,
                d.run_id,
                d.name,
                d.table_name,
                d.row_count,
                d.size_bytes,
                d.fingerprint,
                d.created_at,
                d.created_by,
            )
            for d in found
        ],
        args.format,
    )


@command(
    "gc",
    "Remove dataset staging left by dead Spark drivers (older than --older-than seconds).",
    "sqltrack gc --older-than 3600",
)
def _gc(p: argparse.ArgumentParser) -> None:
    from sqltrack.datasets import STAGING_MAX_AGE

    p.add_argument(
        "--older-than",
        type=float,
        default=STAGING_MAX_AGE,
        help=f"age in seconds past which staging is orphaned (default {STAGING_MAX_AGE:g}); "
        "0 removes all staging: only when no write is running",
    )


@_gc.runner
def _run_gc(args: argparse.Namespace) -> None:
    from sqltrack import datasets
    from sqltrack.tracking import connect

    with connect(args.uri) as tracker:
        removed = datasets.gc(tracker.backend, args.older_than)
    emit(["removed"], [(name,) for name in removed], args.format)
