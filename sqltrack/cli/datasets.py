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
    "Remove dataset staging whose writer is gone (its process died on this host, or its "
    "heartbeat lease expired on another) and print what was removed and the bytes freed. "
    "A live writer's staging is never removed.",
    "sqltrack gc --dry-run",
)
def _gc(p: argparse.ArgumentParser) -> None:
    from sqltrack.datasets import STAGING_MAX_AGE

    p.add_argument(
        "--older-than",
        type=float,
        default=STAGING_MAX_AGE,
        help="staging with no writer recorded (made before migration 0009) goes past this "
        f"age in seconds (default {STAGING_MAX_AGE:g}); 0 removes all of it",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )


@_gc.runner
def _run_gc(args: argparse.Namespace) -> None:
    from sqltrack import staging
    from sqltrack.tracking import connect

    with connect(args.uri) as tracker:
        removed = staging.gc(tracker.backend, args.older_than, dry_run=args.dry_run)
    emit(
        ["staging", "run_id", "dataset", "writer", "reason", "bytes"],
        [(r.staging, r.run_id, r.dataset_name, r.writer, r.reason, r.size_bytes) for r in removed],
        args.format,
    )
    if args.format == "table":
        verb = "would free" if args.dry_run else "freed"
        print(f"{verb} {staging.total_bytes(removed):,} bytes in {len(removed)} staging area(s)")
